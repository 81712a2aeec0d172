// One backend of a load balancer: its address, its connection pool, and the state the picker reads
// (requests in flight, health from the active checks, ejection from passive outlier detection).
import { Pool } from 'undici';
import { TrafficError, TrafficErrorCode } from '../errors.ts';

/** A backend as a source describes it (a flag, a file, later a discovery source). */
export interface BackendEndpoint {
  /** `http(s)://host:port`; a path or query is refused (the client's path is forwarded as is). */
  url: string;
  /** Share of traffic under the `weighted` and `consistent-hash` policies, 1..1000. Default 1. */
  weight?: number;
}

/** Connection settings of each backend's pool. */
export interface BackendPoolOptions {
  /** Connections per backend. Default: unlimited (one per concurrent request). */
  connections?: number;
  /** Connect timeout, ms. */
  connectTimeoutMs: number;
  /** Idle keep-alive connection lifetime, ms. */
  keepAliveTimeoutMs?: number;
  /** TLS to https backends: trust these CAs instead of the system's. */
  ca?: string | Buffer | Array<string | Buffer>;
  /** Verify https backends' certificates. Default true. */
  rejectUnauthorized?: boolean;
}

/** Active health of a backend: `unknown` until its first check ends. */
export type BackendHealth = 'unknown' | 'healthy' | 'unhealthy';

/** Parse and check an endpoint; the origin (`http://127.0.0.1:9001`) is the backend's identity. */
export function backendOrigin(endpoint: BackendEndpoint): string {
  let url: URL;
  try {
    url = new URL(endpoint.url);
  } catch (err) {
    throw new TrafficError(TrafficErrorCode.invalid, `backend ${JSON.stringify(endpoint.url)} is not a URL`, {
      cause: err,
    });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new TrafficError(TrafficErrorCode.invalid, `backend ${endpoint.url} must be http:// or https://`);
  }
  if ((url.pathname !== '/' && url.pathname !== '') || url.search || url.hash || url.username) {
    throw new TrafficError(
      TrafficErrorCode.invalid,
      `backend ${endpoint.url} must be a bare origin (no path, query or credentials)`,
    );
  }
  const weight = endpoint.weight ?? 1;
  if (!Number.isInteger(weight) || weight < 1 || weight > 1000) {
    throw new TrafficError(
      TrafficErrorCode.invalid,
      `backend ${endpoint.url}: weight must be an integer 1..1000, got ${weight}`,
    );
  }
  return url.origin;
}

/** A backend: address, pool and live state. Created and owned by a {@link BackendSet}. */
export class Backend {
  /** The origin, `http://127.0.0.1:9001`: unique in a set, the `backend` label of metrics. */
  readonly id: string;
  readonly pool: Pool;
  weight: number;
  /** Requests sent and not yet answered in full (what least-request compares). */
  inflight = 0;
  health: BackendHealth = 'unknown';
  /** Ejected by outlier detection until this time (ms since epoch); 0 when not ejected. */
  ejectedUntil = 0;
  /** Ejections so far (the next one lasts this many times the base ejection time, up to the cap). */
  ejections = 0;
  /** When the last ejection ended (ms since epoch), for forgetting old ejections. */
  lastRestoredAt = 0;
  /** Failures in a row, by kind, for outlier detection; a success resets both. */
  consecutive5xx = 0;
  consecutiveGatewayErrors = 0;

  constructor(endpoint: BackendEndpoint, pool: BackendPoolOptions) {
    this.id = backendOrigin(endpoint);
    this.weight = endpoint.weight ?? 1;
    this.pool = new Pool(this.id, {
      connect: {
        timeout: pool.connectTimeoutMs,
        ...(pool.ca !== undefined ? { ca: pool.ca } : {}),
        ...(pool.rejectUnauthorized !== undefined ? { rejectUnauthorized: pool.rejectUnauthorized } : {}),
      },
      ...(pool.connections !== undefined ? { connections: pool.connections } : {}),
      ...(pool.keepAliveTimeoutMs !== undefined ? { keepAliveTimeout: pool.keepAliveTimeoutMs } : {}),
    });
  }

  /** Not ejected at `now`. */
  isEjected(now: number): boolean {
    return this.ejectedUntil > now;
  }
}
