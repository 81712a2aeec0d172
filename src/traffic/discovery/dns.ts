// DNS as a discovery source: A/AAAA records of a name (with a port of the caller's), or SRV records (port
// and weight from DNS, e.g. a Kubernetes headless service's `_http._tcp.api.ns.svc.cluster.local`),
// through node:dns with a resolver of our own (servers, timeout, tries). Re-resolved when the shortest TTL
// runs out, within [minRefreshMs, maxRefreshMs]: node:dns reports TTLs of A/AAAA answers but not of SRV
// answers, so SRV sets are re-read at least every maxRefreshMs.
import { Resolver } from 'node:dns/promises';
import { isIP } from 'node:net';
import { type BackoffOptions, sleep } from '../../runtime/index.ts';
import { TrafficError, TrafficErrorCode } from '../errors.ts';
import { clampWeight, type EndpointInput, normalizeEndpoints } from './endpoint.ts';
import { type DiscoveryEvent, type DiscoverySource, runRounds } from './source.ts';

/** Record types of {@link dnsSource}: `A`, `AAAA`, both (`A+AAAA`), or `SRV`. */
export type DnsRecordType = 'A' | 'AAAA' | 'A+AAAA' | 'SRV';

/** Options of {@link dnsSource}. */
export interface DnsSourceOptions {
  /** The name to resolve (`api.example.com`, `_http._tcp.api.example.com`). */
  name: string;
  /** Default `A`. */
  type?: DnsRecordType;
  /** The port of every address (A/AAAA; SRV records carry their own). */
  port?: number;
  /** DNS servers, `ip` or `ip:port` (`[v6]:port`). Default the system's (resolv.conf). */
  servers?: readonly string[];
  /** Address families of SRV targets that are names. Default `A` (IPv4). */
  targetType?: 'A' | 'AAAA' | 'A+AAAA';
  /** Time for one query to answer, ms (c-ares doubles it per try). Default 2 000. */
  timeoutMs?: number;
  /** Tries per query. Default 2. */
  tries?: number;
  /** Never re-resolve sooner than this, whatever the TTL (a TTL of 0 must not become a busy loop), ms. Default 1 000. */
  minRefreshMs?: number;
  /** Re-resolve at least this often, whatever the TTL (and for SRV, whose TTL node:dns hides), ms. Default 30 000. */
  maxRefreshMs?: number;
  /** Retry backoff after a failed resolution. */
  backoff?: BackoffOptions;
}

interface Resolved {
  endpoints: EndpointInput[];
  /** Shortest TTL seen, s; undefined when no answer carried one. */
  ttl: number | undefined;
}

function checkMs(name: string, value: number, min: number): void {
  if (!Number.isInteger(value) || value < min || value > 2_147_483_647) {
    throw new TrafficError(
      TrafficErrorCode.invalid,
      `${name} must be a whole number of ms >= ${min}, got ${value}`,
    );
  }
}

/** Codes of "the name exists but has no such record" (an empty set, not a failure). */
const NO_DATA = new Set(['ENODATA']);

/**
 * Endpoints from DNS. A name that exists without records of the type (NODATA) is an empty set; a name that
 * does not exist (NXDOMAIN), a timeout or a server failure is an error, and the last good set stays. For SRV,
 * only the records of the lowest priority are used (RFC 2782: the others are for when those fail), weights
 * are clamped to 1..1000, and a target name that does not resolve is left out.
 */
export function dnsSource(options: DnsSourceOptions): DiscoverySource {
  const type = options.type ?? 'A';
  const name = options.name.replace(/\.$/, '');
  if (!name) throw new TrafficError(TrafficErrorCode.invalid, 'dns source: no name');
  if (!['A', 'AAAA', 'A+AAAA', 'SRV'].includes(type)) {
    throw new TrafficError(
      TrafficErrorCode.invalid,
      `dns source: unknown record type ${JSON.stringify(type)}`,
    );
  }
  if (type !== 'SRV' && (!Number.isInteger(options.port) || options.port! < 1 || options.port! > 65535)) {
    throw new TrafficError(TrafficErrorCode.invalid, `dns source: ${type} records need a port 1..65535`);
  }
  const timeoutMs = options.timeoutMs ?? 2_000;
  const tries = options.tries ?? 2;
  const minRefreshMs = options.minRefreshMs ?? 1_000;
  const maxRefreshMs = options.maxRefreshMs ?? 30_000;
  checkMs('timeoutMs', timeoutMs, 1);
  checkMs('minRefreshMs', minRefreshMs, 0);
  checkMs('maxRefreshMs', maxRefreshMs, Math.max(1, minRefreshMs));
  if (!Number.isInteger(tries) || tries < 1 || tries > 10) {
    throw new TrafficError(TrafficErrorCode.invalid, `tries must be 1..10, got ${tries}`);
  }
  // Fail here, not at the first query, on a bad server address.
  if (options.servers) new Resolver().setServers([...options.servers]);
  const description = `dns ${type} ${name}${options.servers ? ` @${options.servers.join(',')}` : ''}`;

  return {
    description,
    watch({ signal } = {}): AsyncIterable<DiscoveryEvent> {
      const stop = signal ?? new AbortController().signal;
      const resolver = new Resolver({ timeout: timeoutMs, tries });
      if (options.servers) resolver.setServers([...options.servers]);
      let ttl: number | undefined;
      const onAbort = () => resolver.cancel();
      stop.addEventListener('abort', onAbort, { once: true });
      const rounds = runRounds({
        what: description,
        signal: stop,
        ...(options.backoff ? { backoff: options.backoff } : {}),
        round: async () => {
          const r =
            type === 'SRV'
              ? await resolveSrv(resolver, name, options.targetType ?? 'A')
              : await resolveAddresses(resolver, name, type, options.port!);
          ttl = r.ttl;
          return normalizeEndpoints(r.endpoints, description);
        },
        pause: (s) => {
          const ttlMs = ttl === undefined ? maxRefreshMs : ttl * 1000;
          return sleep(Math.min(maxRefreshMs, Math.max(minRefreshMs, ttlMs)), s);
        },
      });
      return (async function* () {
        try {
          yield* rounds;
        } finally {
          stop.removeEventListener('abort', onAbort);
        }
      })();
    },
  };
}

function minTtl(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return Math.min(a, b);
}

async function lookup(
  resolver: Resolver,
  name: string,
  family: 4 | 6,
): Promise<{ addresses: string[]; ttl: number | undefined }> {
  try {
    const records =
      family === 4
        ? await resolver.resolve4(name, { ttl: true })
        : await resolver.resolve6(name, { ttl: true });
    let ttl: number | undefined;
    for (const r of records) ttl = minTtl(ttl, r.ttl);
    return { addresses: records.map((r) => r.address), ttl };
  } catch (err) {
    if (NO_DATA.has((err as { code?: string }).code ?? '')) return { addresses: [], ttl: undefined };
    throw err;
  }
}

async function resolveAddresses(
  resolver: Resolver,
  name: string,
  type: 'A' | 'AAAA' | 'A+AAAA',
  port: number,
): Promise<Resolved> {
  const families: Array<4 | 6> = type === 'A' ? [4] : type === 'AAAA' ? [6] : [4, 6];
  const found = await Promise.all(families.map((f) => lookup(resolver, name, f)));
  let ttl: number | undefined;
  const endpoints: EndpointInput[] = [];
  for (const f of found) {
    ttl = minTtl(ttl, f.ttl);
    for (const address of f.addresses) endpoints.push({ address, port, metadata: { 'dns.name': name } });
  }
  return { endpoints, ttl };
}

async function resolveSrv(
  resolver: Resolver,
  name: string,
  targetType: 'A' | 'AAAA' | 'A+AAAA',
): Promise<Resolved> {
  let records: Awaited<ReturnType<Resolver['resolveSrv']>>;
  try {
    records = await resolver.resolveSrv(name);
  } catch (err) {
    if (NO_DATA.has((err as { code?: string }).code ?? '')) return { endpoints: [], ttl: undefined };
    throw err;
  }
  if (records.length === 0) return { endpoints: [], ttl: undefined };
  const best = Math.min(...records.map((r) => r.priority));
  // "." as the only target: the service is decidedly not available here (RFC 2782).
  const chosen = records.filter((r) => r.priority === best && r.name !== '' && r.name !== '.');
  const families: Array<4 | 6> = targetType === 'A' ? [4] : targetType === 'AAAA' ? [6] : [4, 6];
  let ttl: number | undefined;
  const endpoints: EndpointInput[] = [];
  await Promise.all(
    chosen.map(async (r) => {
      const target = r.name.replace(/\.$/, '');
      let addresses: string[];
      if (isIP(target)) addresses = [target];
      else {
        addresses = [];
        for (const family of families) {
          try {
            const found = await lookup(resolver, target, family);
            ttl = minTtl(ttl, found.ttl);
            addresses.push(...found.addresses);
          } catch (err) {
            // A target that does not exist (a pod gone since the SRV answer) is left out; a failing
            // server fails the round, so the last good set stays.
            if ((err as { code?: string }).code !== 'ENOTFOUND') throw err;
          }
        }
      }
      for (const address of addresses) {
        endpoints.push({
          address,
          port: r.port,
          weight: clampWeight(r.weight),
          metadata: {
            'dns.target': target,
            'dns.priority': String(r.priority),
            'dns.weight': String(r.weight),
          },
        });
      }
    }),
  );
  return { endpoints, ttl };
}
