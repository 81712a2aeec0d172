// gRPC clients on a discovery source: a grpc-js name resolver for `capstan-discovery:///<name>` targets.
// grpc-js balances inside the channel (a subchannel per address, its own pickers and connectivity
// tracking), so the clean seam is the resolver: it hands the source's routable endpoints to the channel
// and asks for `round_robin` (or `pick_first`) in the service config. The load balancer's pickers do not
// apply here, and neither do static weights: grpc-js's `weighted_round_robin` weighs by the load servers
// report (ORCA), not by a weight from the registry.
import { experimental, type ServiceConfig, status } from '@grpc/grpc-js';
import { TrafficError, TrafficErrorCode } from '../errors.ts';
import { type Endpoint, routableEndpoints } from './endpoint.ts';
import { type DiscoveryEvent, type DiscoverySource, type Following, followSource } from './source.ts';

/** The target scheme: `capstan-discovery:///web`. */
export const GRPC_DISCOVERY_SCHEME = 'capstan-discovery';

/** Options of {@link registerGrpcDiscovery}. */
export interface GrpcDiscoveryOptions {
  /** The channel's balancing policy. Default `round_robin`. */
  policy?: 'round_robin' | 'pick_first';
  /** Each event of the source, for logs and tests. */
  onDiscoveryEvent?: (event: DiscoveryEvent) => void;
}

interface Registered {
  source: DiscoverySource;
  options: GrpcDiscoveryOptions;
}

const registry = new Map<string, Registered>();
let schemeRegistered = false;

function nameOf(target: experimental.GrpcUri): string {
  return target.path.replace(/^\/+/, '');
}

/** A resolver per channel: follows the source while the channel wants resolution. */
class DiscoveryResolver implements experimental.Resolver {
  readonly #name: string;
  readonly #listener: experimental.ResolverListener;
  #following: Following | undefined;
  #last: readonly Endpoint[] | undefined;

  constructor(target: experimental.GrpcUri, listener: experimental.ResolverListener) {
    this.#name = nameOf(target);
    this.#listener = listener;
  }

  static getDefaultAuthority(target: experimental.GrpcUri): string {
    return nameOf(target);
  }

  #deliver(endpoints: readonly Endpoint[]): void {
    const entry = registry.get(this.#name);
    const policy = entry?.options.policy ?? 'round_robin';
    const config: ServiceConfig = { loadBalancingConfig: [{ [policy]: {} }], methodConfig: [] };
    this.#listener(
      experimental.statusOrFromValue(
        routableEndpoints(endpoints).map((e) => ({ addresses: [{ host: e.address, port: e.port }] })),
      ),
      {},
      experimental.statusOrFromValue(config),
      '',
    );
  }

  #fail(details: string): void {
    this.#listener(
      experimental.statusOrFromError({ code: status.UNAVAILABLE, details, metadata: undefined as never }),
      {},
      null,
      details,
    );
  }

  updateResolution(): void {
    if (this.#following) {
      // The channel asks again (after a connection failure): hand it what we have; changes come anyway.
      const last = this.#last;
      if (last) setImmediate(() => this.#deliver(last));
      return;
    }
    const entry = registry.get(this.#name);
    if (!entry) {
      setImmediate(() =>
        this.#fail(`${GRPC_DISCOVERY_SCHEME}:///${this.#name}: no source registered under this name`),
      );
      return;
    }
    this.#following = followSource(
      entry.source,
      (endpoints) => {
        this.#last = endpoints;
        entry.options.onDiscoveryEvent?.({ type: 'snapshot', endpoints });
        this.#deliver(endpoints);
      },
      {
        onError: (event) => {
          entry.options.onDiscoveryEvent?.(event);
          // Before the first set the channel learns why its calls wait; after it, the last set stays.
          if (this.#last === undefined) this.#fail(event.error.message);
        },
      },
    );
  }

  destroy(): void {
    void this.#following?.stop();
    this.#following = undefined;
    this.#last = undefined;
  }
}

/**
 * Make `capstan-discovery:///<name>` resolve through `source` for every gRPC client created after this.
 * Returns the target string and a function that removes the name again (channels already resolving keep
 * their source until they close).
 *
 * ```ts
 * const { target } = registerGrpcDiscovery('echo', consulSource({ service: 'echo' }));
 * const client = new EchoClient(target, credentials.createInsecure());
 * ```
 */
export function registerGrpcDiscovery(
  name: string,
  source: DiscoverySource,
  options: GrpcDiscoveryOptions = {},
): { target: string; unregister: () => void } {
  if (!/^[A-Za-z0-9._-]+$/.test(name)) {
    throw new TrafficError(
      TrafficErrorCode.invalid,
      `gRPC discovery name ${JSON.stringify(name)}: letters, digits, . _ -`,
    );
  }
  if (options.policy !== undefined && options.policy !== 'round_robin' && options.policy !== 'pick_first') {
    throw new TrafficError(
      TrafficErrorCode.invalid,
      `gRPC discovery policy must be round_robin or pick_first`,
    );
  }
  if (!schemeRegistered) {
    experimental.registerResolver(GRPC_DISCOVERY_SCHEME, DiscoveryResolver);
    schemeRegistered = true;
  }
  const entry = { source, options };
  registry.set(name, entry);
  return {
    target: `${GRPC_DISCOVERY_SCHEME}:///${name}`,
    unregister: () => {
      if (registry.get(name) === entry) registry.delete(name);
    },
  };
}
