import { HttpError } from '../../http/errors.ts';
import { createHttpTransport, type HttpTransport, httpRequest } from '../../http/transport.ts';
import { redactUrl } from '../../redact.ts';
import { HealthError } from '../errors.ts';
import type { CheckFunction } from '../types.ts';

/** Options of {@link httpCheck}. */
export interface HttpCheckOptions {
  /** Default `GET`. */
  method?: 'GET' | 'HEAD' | 'POST' | 'OPTIONS';
  headers?: Record<string, string>;
  /**
   * Which status codes pass: `[min, max]` inclusive, or a predicate. Default `[200, 399]`
   * (redirects are not followed: a 3xx shows the endpoint answers).
   */
  expectStatus?: readonly [number, number] | ((status: number) => boolean);
}

// One transport for every HTTP check: connections are pooled per origin, as undici's global dispatcher
// did. No retries: a probe reports what it saw, and the registry's timeout bounds it.
let checkTransport: HttpTransport | undefined;

/** A check that passes when an HTTP request to `url` answers with an expected status. */
export function httpCheck(url: string | URL, options: HttpCheckOptions = {}): CheckFunction {
  let target: URL;
  try {
    target = new URL(url);
  } catch {
    throw new HealthError('CAP_ERR_RUNTIME_HEALTH_INVALID', 'httpCheck: invalid URL');
  }
  if (target.protocol !== 'http:' && target.protocol !== 'https:') {
    throw new HealthError(
      'CAP_ERR_RUNTIME_HEALTH_INVALID',
      `httpCheck: unsupported scheme ${target.protocol}`,
    );
  }
  const expect = options.expectStatus ?? [200, 399];
  if (
    typeof expect !== 'function' &&
    !(Array.isArray(expect) && expect.length === 2 && expect[0] <= expect[1])
  ) {
    throw new HealthError(
      'CAP_ERR_RUNTIME_HEALTH_INVALID',
      'httpCheck: expectStatus must be [min, max] or a function',
    );
  }
  const passes = typeof expect === 'function' ? expect : (s: number) => s >= expect[0] && s <= expect[1];
  const shown = redactUrl(target);
  return async (signal) => {
    let status: number;
    try {
      checkTransport ??= createHttpTransport({ retry: false });
      const res = await httpRequest(checkTransport, {
        origin: target.origin,
        path: `${target.pathname}${target.search}`,
        method: options.method ?? 'GET',
        ...(options.headers ? { headers: options.headers } : {}),
        signal,
      });
      status = res.status;
      // Drain so the connection goes back to the pool instead of lingering half-read.
      await res.body.dump();
    } catch (err) {
      if (signal.aborted) throw err;
      // The socket's own code (ECONNREFUSED, ...) says more than the transport's wrapper.
      const e = (
        err instanceof HttpError && err.cause !== undefined ? err.cause : err
      ) as NodeJS.ErrnoException;
      throw new HealthError('CAP_ERR_RUNTIME_HEALTH_HTTP', `http ${shown}: ${e.code ?? e.message}`, {
        cause: err,
      });
    }
    if (!passes(status)) {
      throw new HealthError('CAP_ERR_RUNTIME_HEALTH_HTTP', `http ${shown}: unexpected status ${status}`);
    }
    return { detail: `status ${status}` };
  };
}
