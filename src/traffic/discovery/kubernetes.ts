// Kubernetes EndpointSlices as a discovery source: the slices of one Service (label
// `kubernetes.io/service-name`), followed by capstan/kube's watcher into a reflector store, so reconnects,
// 410 relists and stalls are handled there; a snapshot is taken from the store after each change, and never
// from a half-done relist. Endpoint conditions map to health: ready → healthy, serving and terminating →
// draining (used only when nothing is ready, as kube-proxy does), anything else → unhealthy.
import {
  EndpointSlice,
  type KubeClient,
  reflector,
  Store,
  stripManagedFields,
  type WatcherNotice,
  type WatcherOptions,
  watcher,
} from '../../kube/index.ts';
import { Backoff, type BackoffOptions, sleep } from '../../runtime/index.ts';
import { TrafficError, TrafficErrorCode } from '../errors.ts';
import {
  type Endpoint,
  type EndpointHealth,
  type EndpointInput,
  normalizeEndpoints,
  sameEndpoints,
} from './endpoint.ts';
import {
  DEFAULT_DISCOVERY_BACKOFF,
  type DiscoveryEvent,
  type DiscoverySource,
  discoveryError,
} from './source.ts';

/** Options of {@link endpointSliceSource}. */
export interface EndpointSliceSourceOptions {
  /** A client of the cluster (not closed by the source). */
  client: KubeClient;
  namespace: string;
  /** The Service whose EndpointSlices to follow. */
  service: string;
  /**
   * Which of the Service's ports: its name, or its number (the port endpoints listen on, as in the slice).
   * Default: the slice's only port, or its first when it has several.
   */
  port?: string | number;
  /** Watch tuning (stall timeout, backoff...) passed to capstan/kube's watcher. */
  watch?: Pick<
    WatcherOptions<EndpointSlice>,
    'stallTimeoutMs' | 'watchTimeoutSeconds' | 'backoff' | 'pageSize'
  >;
  /** Backoff before restarting a watch that ended on an error no reconnect fixes (403 until RBAC allows it). */
  backoff?: BackoffOptions;
}

const SERVICE_LABEL = 'kubernetes.io/service-name';

function healthOf(
  c: { ready?: boolean; serving?: boolean; terminating?: boolean } | undefined,
): EndpointHealth {
  // The API: a nil `ready` means unknown and is to be taken as ready; a nil `serving` means what `ready` says.
  const ready = c?.ready ?? true;
  const serving = c?.serving ?? ready;
  if (ready && !c?.terminating) return 'healthy';
  if (serving && c?.terminating) return 'draining';
  return 'unhealthy';
}

/** The endpoints of one slice at the chosen port. */
export function endpointsOfSlice(slice: EndpointSlice, port: string | number | undefined): EndpointInput[] {
  const ports = slice.ports ?? [];
  const chosen =
    port === undefined
      ? ports[0]
      : ports.find((p) => (typeof port === 'number' ? p.port === port : (p.name ?? '') === port));
  if (chosen?.port === undefined || chosen.port === null) return [];
  const out: EndpointInput[] = [];
  for (const e of slice.endpoints ?? []) {
    const health = healthOf(e.conditions);
    const metadata: Record<string, string> = { 'k8s.slice': slice.metadata?.name ?? '' };
    if (e.nodeName) metadata['k8s.node'] = e.nodeName;
    if (e.zone) metadata['k8s.zone'] = e.zone;
    if (e.hostname) metadata['k8s.hostname'] = e.hostname;
    if (e.targetRef?.name) metadata[`k8s.${(e.targetRef.kind ?? 'target').toLowerCase()}`] = e.targetRef.name;
    for (const address of e.addresses ?? []) {
      out.push({ address, port: chosen.port, health, tags: e.zone ? [`zone=${e.zone}`] : [], metadata });
    }
  }
  return out;
}

/** Endpoints of a Kubernetes Service from its EndpointSlices, watched. */
export function endpointSliceSource(options: EndpointSliceSourceOptions): DiscoverySource {
  const { namespace, service } = options;
  const name = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
  if (!name.test(namespace ?? '') || !name.test(service ?? '')) {
    throw new TrafficError(
      TrafficErrorCode.invalid,
      `endpointslice source: ${JSON.stringify(namespace)}/${JSON.stringify(service)} is not a namespace/service name`,
    );
  }
  if (options.port !== undefined && typeof options.port !== 'string' && !Number.isInteger(options.port)) {
    throw new TrafficError(TrafficErrorCode.invalid, 'endpointslice source: port is a name or a number');
  }
  const description = `endpointslices ${namespace}/${service}${options.port !== undefined ? `:${options.port}` : ''}`;
  return {
    description,
    watch({ signal } = {}) {
      return watchSlices(options, description, signal ?? new AbortController().signal);
    },
  };
}

async function* watchSlices(
  options: EndpointSliceSourceOptions,
  what: string,
  outer: AbortSignal,
): AsyncGenerator<DiscoveryEvent> {
  // Our own controller too: a consumer that stops iterating (return()) must stop the watch as well.
  const own = new AbortController();
  const signal = AbortSignal.any([outer, own.signal]);
  // The watcher's events and its notices (which come while no event does) meet in one queue.
  const queue: DiscoveryEvent[] = [];
  let wake: (() => void) | undefined;
  let ended = false;
  let last: readonly Endpoint[] | undefined;
  const push = (e: DiscoveryEvent) => {
    queue.push(e);
    wake?.();
  };
  const snapshot = (store: Store<EndpointSlice>) => {
    const inputs = store.list().flatMap((s) => endpointsOfSlice(s, options.port));
    let endpoints: Endpoint[];
    try {
      endpoints = normalizeEndpoints(inputs, what);
    } catch (err) {
      push({ type: 'error', error: discoveryError(what, err), lastGood: last, retryInMs: 0 });
      return;
    }
    if (last !== undefined && sameEndpoints(last, endpoints)) return;
    last = endpoints;
    push({ type: 'snapshot', endpoints });
  };
  const onNotice = (n: WatcherNotice) => {
    if (n.type === 'reconnecting') {
      push({ type: 'error', error: discoveryError(what, n.error), lastGood: last, retryInMs: n.delayMs });
    }
  };
  const run = async () => {
    const backoff = new Backoff({ ...DEFAULT_DISCOVERY_BACKOFF, ...options.backoff });
    while (!signal.aborted) {
      const store = new Store<EndpointSlice>();
      try {
        const events = watcher(options.client.resource(EndpointSlice, options.namespace), {
          ...options.watch,
          labelSelector: `${SERVICE_LABEL}=${options.service}`,
          transform: stripManagedFields,
          onNotice,
          signal,
        });
        for await (const event of reflector(store, events)) {
          backoff.reset();
          // Mid-relist the store still shows the old state; the swap comes at initDone.
          if (event.type === 'init' || event.type === 'initApply') continue;
          snapshot(store);
        }
      } catch (err) {
        if (signal.aborted) break;
        const retryInMs = backoff.next();
        push({ type: 'error', error: discoveryError(what, err), lastGood: last, retryInMs });
        await sleep(retryInMs, signal);
        continue;
      }
      // The watcher ends cleanly only on abort or a closed client: nothing more will come.
      break;
    }
  };
  const done = run().finally(() => {
    ended = true;
    wake?.();
  });
  try {
    while (true) {
      if (queue.length > 0) {
        yield queue.shift()!;
        continue;
      }
      if (ended || signal.aborted) break;
      await new Promise<void>((resolve) => {
        const onAbort = () => resolve();
        wake = () => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        };
        signal.addEventListener('abort', onAbort, { once: true });
      });
      wake = undefined;
    }
  } finally {
    own.abort();
    await done.catch(() => {});
  }
}
