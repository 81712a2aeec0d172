// Child process of bench/xds.bench.ts (forked, IPC): `count` proxyless gRPC clients (@grpc/grpc-js-xds)
// of service `api`. Each client has a bootstrap of its own (the channel option below), so its own
// XdsClient, node id and ADS stream: 100 clients are 100 xDS subscribers of the control plane, as 100
// proxyless processes would be (the ADS streams of one process share its HTTP/2 connection to the control
// plane, as grpc-js shares subchannels).
// Usage: node bench/xds-clients.ts <control plane host:port> <count> <first node index>
//
// How a client reports its route: it dials `xds-observed:///api`, a resolver of ours registered through
// grpc-js's public resolver API that wraps the real xDS resolver and, each time that resolver hands the
// channel a new configuration, reads the weights of its RouteConfiguration and notes the time *after* the
// channel took it (from then on new calls are routed by it). Calls check what it reports: the backends
// answer with their version, and the bench compares the split of real calls with the weights.
import * as grpc from '@grpc/grpc-js';
import { register } from '@grpc/grpc-js-xds';

export type Version = 'v1' | 'v2';
/** Weights of v1 and v2 as the client's route has them. */
export type Weights = [number, number];

export type ToClients =
  /** Answer `armed`, then `applied` once every client routes by `weights` (times from this message on). */
  | { type: 'await'; weights: Weights; timeoutMs: number }
  /** Make `calls` calls per client (each client one after the other) and count the versions that answer. */
  | { type: 'split'; calls: number };

export type FromClients =
  | { type: 'ready' }
  | { type: 'armed' }
  | {
      type: 'applied';
      /** Per client: wall-clock ms (timeOrigin + now) when its channel took a route with the weights. */
      at: number[];
      /** CPU this process spent from `await` until its last client took the route, ms. */
      cpuMs: number;
    }
  | { type: 'split'; counts: Record<Version, number>; failed: number }
  | { type: 'error'; message: string };

/** grpc-js-xds's per-channel bootstrap (a test-only option: what 100 separate processes would each have). */
const BOOTSTRAP_OPTION = 'grpc.TEST_ONLY_DO_NOT_USE_IN_PROD.xds_bootstrap_config';
/** Our channel option naming the client, for the resolver to say whose route it saw. */
const CLIENT_OPTION = 'bench.xds_client_index';
/** grpc-js-xds's resolver attribute carrying the xDS config (`grpc.internal.no_subchannel.xds_config`). */
const XDS_CONFIG_ATTRIBUTE = `${grpc.experimental.SUBCHANNEL_ARGS_EXCLUDE_KEY_PREFIX}.xds_config`;
const METHOD = '/bench.Echo/Version';
const identity = (b: Buffer) => b;
const wallClock = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function send(message: FromClients): void {
  process.send!(message);
}

/** What each client's channel routes by now, and since when. */
const routes: Array<{ weights: Weights; at: number } | undefined> = [];
let onRoute: (() => void) | undefined;

interface WeightedRoute {
  route?: { weighted_clusters?: { clusters: Array<{ name: string; weight: { value: number } | null }> } };
}

/** The v1/v2 weights of the last route of the resolved virtual host (cluster names end in v1 / v2). */
function weightsOf(attributes: Record<string, unknown>): Weights | undefined {
  const config = attributes[XDS_CONFIG_ATTRIBUTE] as
    | { virtualHost?: { routes?: WeightedRoute[] } }
    | undefined;
  const clusters = config?.virtualHost?.routes?.at(-1)?.route?.weighted_clusters?.clusters;
  if (!clusters) return undefined;
  const weight = (suffix: string) => clusters.find((c) => c.name.endsWith(suffix))?.weight?.value ?? 0;
  return [weight('v1'), weight('v2')];
}

/** The xDS resolver, with a note of each configuration it gives the channel. */
class ObservedXdsResolver implements grpc.experimental.Resolver {
  readonly #inner: grpc.experimental.Resolver;

  constructor(
    target: grpc.experimental.GrpcUri,
    listener: grpc.experimental.ResolverListener,
    options: grpc.ChannelOptions,
  ) {
    const index = Number(options[CLIENT_OPTION]);
    this.#inner = grpc.experimental.createResolver(
      { ...target, scheme: 'xds' },
      (endpoints, attributes, serviceConfig, note) => {
        const accepted = listener(endpoints, attributes, serviceConfig, note);
        const weights = weightsOf(attributes);
        const before = routes[index]?.weights;
        // A configuration with the same weights (a Cluster or endpoint update) is no change of route.
        if (weights && (weights[0] !== before?.[0] || weights[1] !== before?.[1])) {
          routes[index] = { weights, at: wallClock() };
          onRoute?.();
        }
        return accepted;
      },
      options,
    );
  }

  updateResolution(): void {
    this.#inner.updateResolution();
  }

  destroy(): void {
    this.#inner.destroy();
  }

  static getDefaultAuthority(target: grpc.experimental.GrpcUri): string {
    return target.path; // as the xDS resolver does
  }
}

function call(client: grpc.Client): Promise<Version> {
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(
      METHOD,
      identity,
      identity,
      Buffer.alloc(0),
      { deadline: Date.now() + 10_000 },
      (err, value) => {
        if (err || !value) reject(err ?? new Error('empty response'));
        else resolve(value.toString() as Version);
      },
    );
  });
}

/** Resolves when every client routes by `weights`, each with the time it started to. */
function awaitRoutes(count: number, weights: Weights, since: number, timeoutMs: number): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const check = () => {
      const at: number[] = [];
      for (let i = 0; i < count; i++) {
        const r = routes[i];
        if (!r || r.weights[0] !== weights[0] || r.weights[1] !== weights[1]) return;
        // Already routing by these weights before we were asked: it counts from the ask.
        at.push(Math.max(r.at, since));
      }
      clearTimeout(timer);
      onRoute = undefined;
      resolve(at);
    };
    const timer = setTimeout(() => {
      onRoute = undefined;
      const behind = routes.slice(0, count).filter((r) => r?.weights.join('/') !== weights.join('/'));
      reject(
        new Error(`${behind.length} of ${count} clients not at ${weights.join('/')} after ${timeoutMs} ms`),
      );
    }, timeoutMs);
    onRoute = check;
    check();
  });
}

async function main(): Promise<void> {
  const [server, countText, firstText] = process.argv.slice(2);
  const count = Number(countText);
  const first = Number(firstText);
  if (!server || !Number.isInteger(count) || count < 1 || !Number.isInteger(first)) {
    throw new Error('usage: xds-clients.ts <control plane host:port> <count> <first node index>');
  }
  register();
  grpc.experimental.registerResolver('xds-observed', ObservedXdsResolver);
  const clients = Array.from({ length: count }, (_, i) => {
    const bootstrap = {
      xds_servers: [{ server_uri: server, channel_creds: [{ type: 'insecure' }] }],
      // gRPC fails every call with a misleading error when the node has no locality.
      node: { id: `bench-client-${first + i}`, locality: {} },
    };
    return new grpc.Client('xds-observed:///api', grpc.credentials.createInsecure(), {
      [BOOTSTRAP_OPTION]: JSON.stringify(bootstrap),
      [CLIENT_OPTION]: i,
    });
  });
  // Ready: every client has resolved the whole mesh (LDS, RDS, CDS, EDS) and made a call.
  await Promise.all(
    clients.map(async (client) => {
      const end = performance.now() + 60_000;
      for (;;) {
        try {
          await call(client);
          return;
        } catch (err) {
          if (performance.now() > end) throw err;
          await sleep(100);
        }
      }
    }),
  );
  send({ type: 'ready' });

  process.on('message', (message: ToClients) => {
    const run = async (): Promise<FromClients> => {
      if (message.type === 'await') {
        const cpu = process.cpuUsage();
        const applied = awaitRoutes(count, message.weights, wallClock(), message.timeoutMs);
        send({ type: 'armed' });
        const at = await applied;
        const used = process.cpuUsage(cpu);
        return { type: 'applied', at, cpuMs: (used.user + used.system) / 1000 };
      }
      const counts: Record<Version, number> = { v1: 0, v2: 0 };
      let failed = 0;
      await Promise.all(
        clients.map(async (client) => {
          for (let i = 0; i < message.calls; i++) {
            try {
              counts[await call(client)]++;
            } catch {
              failed++;
            }
          }
        }),
      );
      return { type: 'split', counts, failed };
    };
    run().then(send, (err: unknown) =>
      send({ type: 'error', message: err instanceof Error ? err.message : String(err) }),
    );
  });
  // The bench closes the IPC channel (or dies): stop.
  process.on('disconnect', () => {
    for (const client of clients) client.close();
    process.exit(0);
  });
}

main().catch((err: unknown) => {
  send({ type: 'error', message: err instanceof Error ? (err.stack ?? err.message) : String(err) });
  process.exit(1);
});
