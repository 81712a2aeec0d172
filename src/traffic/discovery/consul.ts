// Consul as a discovery source: the instances of one service from the health API (only the passing ones by
// default) or the catalog, followed with blocking queries done as Consul's docs ask: `index` from
// X-Consul-Index, `wait` (Consul adds up to wait/16 of its own jitter, so our timeout allows for it), the
// index reset to 0 when it goes backwards (a restarted agent, a new leader with a different raft log), an
// index below 1 taken as 1 (an index of 0 makes every query return at once), and a token bucket between
// rounds: a service that changes all the time costs at most `rateLimit.perSecond` queries, never a busy loop
// (consul#3890). On the runtime's HTTP transport.
import {
  type BackoffOptions,
  createHttpTransport,
  type HttpTlsOptions,
  httpRequest,
  sleep,
} from '../../runtime/index.ts';
import { TrafficError, TrafficErrorCode } from '../errors.ts';
import { clampWeight, type EndpointHealth, type EndpointInput, normalizeEndpoints } from './endpoint.ts';
import { type DiscoveryEvent, type DiscoverySource, runRounds } from './source.ts';

/** Options of {@link consulSource}. */
export interface ConsulSourceOptions {
  /** The agent's HTTP API. Default `http://127.0.0.1:8500`. */
  url?: string;
  /** The service name. */
  service: string;
  /** `health` (instances with their checks; default) or `catalog` (registrations only, no health). */
  api?: 'health' | 'catalog';
  /** Health API: only instances whose every check passes (`?passing`, filtered by Consul). Default true. */
  onlyPassing?: boolean;
  /** Datacenter; default the agent's. */
  datacenter?: string;
  /** Only instances with every one of these tags. */
  tags?: readonly string[];
  /** A Consul filter expression (`Service.Meta.version == "2"`). */
  filter?: string;
  /**
   * `default` (the leader answers), `stale` (any server answers: scales reads, may lag a little) or
   * `consistent` (the leader checks it still leads: one more round trip). Default `default`.
   */
  consistency?: 'default' | 'stale' | 'consistent';
  /** How long one blocking query may wait for a change, ms (1 000..600 000). Default 60 000. */
  waitMs?: number;
  /** Queries per second, on average, and the burst allowed. Default 1/s, burst 5. */
  rateLimit?: { perSecond: number; burst: number };
  /** ACL token (sent as X-Consul-Token). */
  token?: string;
  tls?: HttpTlsOptions;
  /** Retry backoff after a failed query. */
  backoff?: BackoffOptions;
  /** Index resets and other things worth a log line. */
  onNotice?: (notice: ConsulNotice) => void;
}

/** What a Consul source reports besides its events. */
export type ConsulNotice =
  /** X-Consul-Index went backwards (`from` → `to`): the next query starts over from index 0. */
  | { type: 'index-reset'; from: number; to: number }
  /** X-Consul-Index was below 1: taken as 1 so the next query blocks. */
  | { type: 'index-below-one'; index: number }
  /** A query answered (what it cost): `index` the new index, `changed` whether it moved. */
  | { type: 'round'; index: number; changed: boolean };

interface HealthEntry {
  Node?: { Node?: string; Address?: string; Datacenter?: string };
  Service?: {
    ID?: string;
    Service?: string;
    Tags?: string[] | null;
    Address?: string;
    Port?: number;
    Meta?: Record<string, string> | null;
    Weights?: { Passing?: number; Warning?: number } | null;
  };
  Checks?: Array<{ Status?: string }> | null;
}

interface CatalogEntry {
  Node?: string;
  Address?: string;
  Datacenter?: string;
  ServiceID?: string;
  ServiceAddress?: string;
  ServicePort?: number;
  ServiceTags?: string[] | null;
  ServiceMeta?: Record<string, string> | null;
  ServiceWeights?: { Passing?: number; Warning?: number } | null;
}

/** The worst status of an instance's checks (node checks included, as Consul's `passing` filter counts them). */
function aggregateStatus(checks: HealthEntry['Checks']): 'passing' | 'warning' | 'critical' {
  let worst: 'passing' | 'warning' | 'critical' = 'passing';
  for (const c of checks ?? []) {
    if (c.Status === 'critical' || c.Status === 'maintenance') return 'critical';
    if (c.Status === 'warning') worst = 'warning';
  }
  return worst;
}

function healthEndpoint(e: HealthEntry): EndpointInput {
  const s = e.Service ?? {};
  const status = aggregateStatus(e.Checks);
  const health: EndpointHealth = status === 'critical' ? 'unhealthy' : 'healthy';
  const weight = status === 'warning' ? (s.Weights?.Warning ?? 1) : (s.Weights?.Passing ?? 1);
  return {
    address: s.Address || e.Node?.Address || '',
    port: s.Port ?? 0,
    weight: clampWeight(weight),
    health,
    tags: s.Tags ?? [],
    metadata: {
      ...(s.Meta ?? {}),
      'consul.node': e.Node?.Node ?? '',
      'consul.service_id': s.ID ?? '',
      'consul.status': status,
    },
  };
}

function catalogEndpoint(e: CatalogEntry): EndpointInput {
  return {
    address: e.ServiceAddress || e.Address || '',
    port: e.ServicePort ?? 0,
    weight: clampWeight(e.ServiceWeights?.Passing ?? 1),
    tags: e.ServiceTags ?? [],
    metadata: {
      ...(e.ServiceMeta ?? {}),
      'consul.node': e.Node ?? '',
      'consul.service_id': e.ServiceID ?? '',
    },
  };
}

/**
 * Minimal token bucket (kube's work queue has another, but traffic must not lean on kube for Consul):
 * `reserve()` takes a token and says how long to wait until it is really there.
 */
class TokenBucket {
  readonly #perMs: number;
  readonly #burst: number;
  #tokens: number;
  #last = Date.now();
  constructor(perSecond: number, burst: number) {
    this.#perMs = perSecond / 1000;
    this.#burst = burst;
    this.#tokens = burst;
  }
  reserve(): number {
    const now = Date.now();
    this.#tokens = Math.min(this.#burst, this.#tokens + (now - this.#last) * this.#perMs);
    this.#last = now;
    this.#tokens -= 1;
    return this.#tokens >= 0 ? 0 : -this.#tokens / this.#perMs;
  }
}

/** Endpoints of a Consul service, followed by blocking queries. */
export function consulSource(options: ConsulSourceOptions): DiscoverySource {
  const url = options.url ?? 'http://127.0.0.1:8500';
  let origin: string;
  try {
    origin = new URL(url).origin;
  } catch (err) {
    throw new TrafficError(TrafficErrorCode.invalid, `consul url ${JSON.stringify(url)} is not a URL`, {
      cause: err,
    });
  }
  if (!/^[A-Za-z0-9_.-]+$/.test(options.service ?? '')) {
    throw new TrafficError(
      TrafficErrorCode.invalid,
      `consul service name ${JSON.stringify(options.service)} is not valid`,
    );
  }
  const api = options.api ?? 'health';
  if (api !== 'health' && api !== 'catalog') {
    throw new TrafficError(
      TrafficErrorCode.invalid,
      `consul api must be health or catalog, got ${JSON.stringify(api)}`,
    );
  }
  const consistency = options.consistency ?? 'default';
  if (!['default', 'stale', 'consistent'].includes(consistency)) {
    throw new TrafficError(
      TrafficErrorCode.invalid,
      `consul consistency must be default, stale or consistent`,
    );
  }
  const waitMs = options.waitMs ?? 60_000;
  if (!Number.isInteger(waitMs) || waitMs < 1_000 || waitMs > 600_000) {
    throw new TrafficError(
      TrafficErrorCode.invalid,
      `consul waitMs must be 1000..600000 (Consul's cap is 10 min), got ${waitMs}`,
    );
  }
  const rate = options.rateLimit ?? { perSecond: 1, burst: 5 };
  if (!(rate.perSecond > 0) || !Number.isFinite(rate.perSecond) || !(rate.burst >= 1)) {
    throw new TrafficError(TrafficErrorCode.invalid, `consul rateLimit wants perSecond > 0 and burst >= 1`);
  }
  const onlyPassing = api === 'health' && (options.onlyPassing ?? true);
  const notify = options.onNotice ?? (() => {});
  const description = `consul ${options.service}${options.datacenter ? `@${options.datacenter}` : ''} (${origin})`;
  const path = `/v1/${api}/service/${encodeURIComponent(options.service)}`;

  return {
    description,
    watch({ signal } = {}): AsyncIterable<DiscoveryEvent> {
      const stop = signal ?? new AbortController().signal;
      const transport = createHttpTransport({
        origin,
        retry: false,
        connections: 1,
        ...(options.tls ? { tls: options.tls } : {}),
      });
      const bucket = new TokenBucket(rate.perSecond, rate.burst);
      let index = 0;
      // After a failure the next query does not block: an agent that restarted (dev mode, or a new leader)
      // would hold a query with an index above its own for the whole `wait` before the reset could be seen.
      let fresh = false;
      const query = async (s: AbortSignal): Promise<EndpointInput[] | undefined> => {
        const params = new URLSearchParams();
        if (onlyPassing) params.set('passing', 'true');
        if (options.datacenter) params.set('dc', options.datacenter);
        for (const tag of options.tags ?? []) params.append('tag', tag);
        if (options.filter) params.set('filter', options.filter);
        if (consistency !== 'default') params.set(consistency, '');
        if (index > 0 && !fresh) {
          params.set('index', String(index));
          params.set('wait', `${Math.round(waitMs / 1000)}s`);
        }
        const res = await httpRequest(transport, {
          path: `${path}?${params.toString().replace(/=(&|$)/g, '$1')}`,
          signal: s,
          headers: {
            accept: 'application/json',
            ...(options.token ? { 'x-consul-token': options.token } : {}),
          },
          // Consul answers after up to wait + wait/16 (its jitter): leave room for that and a slow network.
          timeouts: { headersMs: waitMs + Math.ceil(waitMs / 16) + 10_000, bodyMs: 30_000 },
        });
        const text = await res.body.text();
        if (res.status !== 200) {
          throw new TrafficError(
            TrafficErrorCode.discovery,
            `${description}: ${res.status} ${text.trim().slice(0, 200)}`,
          );
        }
        const raw = res.headers['x-consul-index'];
        const next = Number(Array.isArray(raw) ? raw[0] : raw);
        if (raw === undefined || !Number.isSafeInteger(next) || next < 0) {
          throw new TrafficError(
            TrafficErrorCode.discovery,
            `${description}: no valid X-Consul-Index (${String(raw)})`,
          );
        }
        const previous = index;
        if (next < previous) {
          // Backwards: this answer is the current state, but the index means nothing next to ours; start
          // over so the next query returns at once with an index we can block on.
          index = 0;
          notify({ type: 'index-reset', from: previous, to: next });
        } else if (next < 1) {
          index = 1;
          notify({ type: 'index-below-one', index: next });
        } else {
          index = next;
        }
        notify({ type: 'round', index: next, changed: next !== previous });
        // A blocking query that timed out returns the same index and the same data.
        if (previous > 0 && next === previous) return undefined;
        let entries: unknown;
        try {
          entries = JSON.parse(text);
        } catch (err) {
          throw new TrafficError(TrafficErrorCode.discovery, `${description}: answer is not JSON`, {
            cause: err,
          });
        }
        if (!Array.isArray(entries)) {
          throw new TrafficError(TrafficErrorCode.discovery, `${description}: answer is not a list`);
        }
        return api === 'health'
          ? (entries as HealthEntry[]).map(healthEndpoint)
          : (entries as CatalogEntry[]).map(catalogEndpoint);
      };
      const rounds = runRounds({
        what: description,
        signal: stop,
        ...(options.backoff ? { backoff: options.backoff } : {}),
        round: async (s) => {
          let inputs: EndpointInput[] | undefined;
          try {
            inputs = await query(s);
            fresh = false;
          } catch (err) {
            fresh = true;
            throw err;
          }
          return inputs === undefined ? undefined : normalizeEndpoints(inputs, description);
        },
        pause: (s) => sleep(bucket.reserve(), s),
      });
      return (async function* () {
        try {
          yield* rounds;
        } finally {
          await transport.destroy();
        }
      })();
    },
  };
}
