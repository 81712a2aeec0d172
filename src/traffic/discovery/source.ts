// The discovery interface: a source yields full snapshots of a service's endpoints as an async stream,
// reports each failure as an event carrying the last good set (a consumer never loses its endpoints to an
// outage of the registry), and ends when its signal aborts.
import { Backoff, type BackoffOptions, sleep } from '../../runtime/index.ts';
import { TrafficError, TrafficErrorCode } from '../errors.ts';
import { type Endpoint, sameEndpoints } from './endpoint.ts';

/** What a {@link DiscoverySource} yields. */
export type DiscoveryEvent =
  /** The complete current set (never a delta); only yielded when it differs from the previous one. */
  | { type: 'snapshot'; endpoints: readonly Endpoint[] }
  /**
   * Reading failed; the source retries after `retryInMs`. `lastGood` is the last snapshot (undefined
   * before the first): keep using it.
   */
  | { type: 'error'; error: TrafficError; lastGood: readonly Endpoint[] | undefined; retryInMs: number };

/** A source of endpoints: a file, DNS, Consul, Kubernetes EndpointSlices, or your own. */
export interface DiscoverySource {
  /** What it watches, for logs (`consul web@dc1`, `dns SRV _http._tcp.api.example`). */
  readonly description: string;
  /**
   * Watch the endpoints: the first event comes after the first read (a snapshot or an error), then one per
   * change or failure. The iteration ends (without throwing) when `signal` aborts; failures never end it.
   * Each call is an independent watch.
   */
  watch(options?: { signal?: AbortSignal }): AsyncIterable<DiscoveryEvent>;
}

/** Wrap anything thrown while reading into a {@link TrafficErrorCode.discovery} error. */
export function discoveryError(what: string, err: unknown): TrafficError {
  if (err instanceof TrafficError && err.code === TrafficErrorCode.discovery) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new TrafficError(TrafficErrorCode.discovery, `${what}: ${message}`, { cause: err });
}

/** The reconnect backoff of every source unless told otherwise: 500 ms doubling to 30 s, full jitter. */
export const DEFAULT_DISCOVERY_BACKOFF: BackoffOptions = Object.freeze({
  initialMs: 500,
  maxMs: 30_000,
  jitter: 'full',
});

/** Options of {@link runRounds}. */
export interface RoundsOptions {
  what: string;
  signal: AbortSignal;
  backoff?: BackoffOptions;
  /** One read: the current set, or undefined when nothing new is known (a blocking query that timed out). */
  round(signal: AbortSignal): Promise<readonly Endpoint[] | undefined>;
  /** The wait after a successful read (TTL, rate limit, a file change); resolves early on abort. */
  pause(signal: AbortSignal): Promise<unknown>;
}

/**
 * The loop most sources are: read, yield the set if it changed, pause, again; on a failure yield an error
 * with the last good set and retry after a backoff (reset by the next success).
 */
export async function* runRounds(options: RoundsOptions): AsyncGenerator<DiscoveryEvent> {
  const { signal, what } = options;
  const backoff = new Backoff({ ...DEFAULT_DISCOVERY_BACKOFF, ...options.backoff });
  let last: readonly Endpoint[] | undefined;
  while (!signal.aborted) {
    let endpoints: readonly Endpoint[] | undefined;
    try {
      endpoints = await options.round(signal);
    } catch (err) {
      if (signal.aborted) return;
      const retryInMs = backoff.next();
      yield { type: 'error', error: discoveryError(what, err), lastGood: last, retryInMs };
      await sleep(retryInMs, signal);
      continue;
    }
    backoff.reset();
    if (signal.aborted) return;
    if (endpoints !== undefined && (last === undefined || !sameEndpoints(last, endpoints))) {
      last = endpoints;
      yield { type: 'snapshot', endpoints };
    }
    await options.pause(signal);
  }
}

/** A running {@link followSource}. */
export interface Following {
  /** The last snapshot, or undefined before the first. */
  readonly endpoints: readonly Endpoint[] | undefined;
  /** Resolves at the first snapshot; rejects if the watch stops before one (abort). */
  readonly ready: Promise<void>;
  /** Stop watching; resolves when the source's iteration has ended. */
  stop(): Promise<void>;
}

/**
 * Consume a source in the background: `onSnapshot` gets each new set (awaited before the next event is
 * read, so updates never overlap), `onError` each failure (the last set stays).
 */
export function followSource(
  source: DiscoverySource,
  onSnapshot: (endpoints: readonly Endpoint[]) => void | Promise<void>,
  options: { signal?: AbortSignal; onError?: (event: DiscoveryEvent & { type: 'error' }) => void } = {},
): Following {
  const stop = new AbortController();
  const signal = options.signal ? AbortSignal.any([options.signal, stop.signal]) : stop.signal;
  let current: readonly Endpoint[] | undefined;
  let markReady!: () => void;
  let failReady!: (err: unknown) => void;
  const ready = new Promise<void>((resolve, reject) => {
    markReady = resolve;
    failReady = reject;
  });
  ready.catch(() => {});
  const done = (async () => {
    for await (const event of source.watch({ signal })) {
      if (event.type === 'snapshot') {
        current = event.endpoints;
        try {
          await onSnapshot(event.endpoints);
        } catch (err) {
          options.onError?.({
            type: 'error',
            error: discoveryError(source.description, err),
            lastGood: current,
            retryInMs: 0,
          });
        }
        markReady();
      } else {
        options.onError?.(event);
      }
    }
  })().finally(() =>
    failReady(new TrafficError(TrafficErrorCode.closed, `stopped watching ${source.description}`)),
  );
  done.catch(() => {});
  return {
    get endpoints() {
      return current;
    },
    ready,
    async stop() {
      stop.abort();
      await done.catch(() => {});
    },
  };
}
