import type { LookupAddress } from 'node:dns';
import { lookup } from 'node:dns/promises';
import { raceAbort } from '../../abort.ts';
import { healthAbortError } from '../aborted.ts';
import { HealthError } from '../errors.ts';
import type { CheckFunction } from '../types.ts';

/** Options of {@link dnsCheck}. */
export interface DnsCheckOptions {
  /** Only accept addresses of this family. Default any. */
  family?: 4 | 6;
}

/**
 * A check that resolves `hostname` the way the process's own connections do (getaddrinfo, so
 * /etc/hosts and the system resolver configuration apply). getaddrinfo cannot be cancelled; the
 * registry stops waiting at the check's timeout.
 */
export function dnsCheck(hostname: string, options: DnsCheckOptions = {}): CheckFunction {
  if (typeof hostname !== 'string' || hostname === '') {
    throw new HealthError('CAP_ERR_RUNTIME_HEALTH_INVALID', 'dnsCheck: hostname must be a non-empty string');
  }
  return async (signal) => {
    let addresses: LookupAddress[];
    try {
      addresses = await raceAbort(
        lookup(hostname, { all: true, ...(options.family ? { family: options.family } : {}) }),
        signal,
        healthAbortError,
      );
    } catch (err) {
      if (signal.aborted) throw err;
      const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      throw new HealthError('CAP_ERR_RUNTIME_HEALTH_DNS', `dns ${hostname}: ${code}`, { cause: err });
    }
    if (addresses.length === 0)
      throw new HealthError('CAP_ERR_RUNTIME_HEALTH_DNS', `dns ${hostname}: ENODATA`);
    return { detail: addresses.map((a) => a.address).join(', ') };
  };
}
