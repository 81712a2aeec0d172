// A load balancer whose backends come from a discovery source: each snapshot's routable endpoints become
// the backend set (kept backends keep their connections and health; new ones get their first check before
// traffic), the last set stays through source failures, and the feed stops when the load balancer does.
import type { Logger } from '../../runtime/index.ts';
import type { LoadBalancer } from '../lb/load-balancer.ts';
import { type BackendMapping, toBackendEndpoints } from './endpoint.ts';
import type { DiscoveryEvent, DiscoverySource, Following } from './source.ts';
import { followSource } from './source.ts';

/** Options of {@link feedLoadBalancer}. */
export interface FeedOptions extends BackendMapping {
  signal?: AbortSignal;
  /** Where source failures are logged. Default the load balancer's logger. */
  logger?: Logger;
  /** Each event of the source (snapshots and failures). */
  onDiscoveryEvent?: (event: DiscoveryEvent) => void;
}

/**
 * Feed `lb`'s backends from `source`. Returns the running feed: `ready` resolves once the first snapshot
 * is in the load balancer (its new backends checked once); `stop()` ends it (the load balancer's shutdown
 * does too). Start the load balancer with `backends: []` and await `ready` before `start()` to listen with
 * backends in place.
 */
export function feedLoadBalancer(
  lb: LoadBalancer,
  source: DiscoverySource,
  options: FeedOptions = {},
): Following {
  const log = (options.logger ?? lb.service.logger).child({
    component: 'discovery',
    source: source.description,
  });
  const mapping = options.scheme ? { scheme: options.scheme } : {};
  const following = followSource(
    source,
    async (endpoints) => {
      options.onDiscoveryEvent?.({ type: 'snapshot', endpoints });
      await lb.setBackends(toBackendEndpoints(endpoints, mapping));
    },
    {
      ...(options.signal ? { signal: options.signal } : {}),
      onError: (event) => {
        options.onDiscoveryEvent?.(event);
        log.warn(
          { err: event.error, retryInMs: event.retryInMs, kept: event.lastGood?.length ?? 0 },
          'discovery failed; keeping the last backends',
        );
      },
    },
  );
  lb.service.lifecycle.onShutdown(`discovery ${source.description}`, () => following.stop());
  return following;
}
