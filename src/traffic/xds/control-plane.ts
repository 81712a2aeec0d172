// The xDS control plane as a library: a grpc-js server carrying the ADS service, a snapshot cache, and an
// admin service from the runtime (health, /metrics, graceful shutdown) sharing one lifecycle. The mesh
// calls (`setMesh`, `setWeights`, `setEndpoints`) build the default snapshot; `cache` takes per-node
// snapshots of any resources for those who build their own.
import * as grpc from '@grpc/grpc-js';
import {
  createService,
  type Lifecycle,
  type LifecycleOptions,
  type Logger,
  type MetricsRegistry,
  type Service,
} from '../../runtime/index.ts';
import { TrafficError, TrafficErrorCode } from '../errors.ts';
import { AdsServer, type StreamStatus, type XdsEvent } from './ads.ts';
import { type Mesh, meshSnapshot, type VersionWeights, withEndpoints, withWeights } from './mesh.ts';
import { grpcBootstrap } from './node.ts';
import type { AssignmentEndpoint } from './resources.ts';
import { type NodeHash, type Snapshot, SnapshotCache } from './snapshot.ts';

/** Options of {@link createControlPlane}. */
export interface ControlPlaneOptions {
  /** gRPC (xDS) port; 0 picks a free one. Default 18000. */
  port?: number;
  /** gRPC (xDS) address. Default 127.0.0.1. */
  host?: string;
  /** Health (`/livez`, `/readyz`, `/healthz`) and `/metrics`. Default port 0 on `host`. */
  admin?: { port: number; host?: string };
  /** The mesh to serve every node (the default snapshot); more can come with {@link ControlPlane.setMesh}. */
  mesh?: Mesh;
  /** Map a node to its snapshot key (go-control-plane's NodeHash). Default: the node's id. */
  nodeHash?: NodeHash;
  logger?: Logger;
  metrics?: MetricsRegistry;
  /** A shared lifecycle (`capstan up`), or options of the control plane's own. */
  lifecycle?: Lifecycle | LifecycleOptions;
  /** Extra grpc-js server options (keepalive, message sizes). */
  grpcOptions?: grpc.ServerOptions;
  /** Service name in logs and metrics. Default `capstan-xds`. */
  name?: string;
}

/**
 * An xDS control plane. `start()` it, change the mesh while it runs (every connected client gets what
 * changed, at once), `stop()` it (streams end cleanly, clients keep their configuration).
 */
export class ControlPlane {
  /** The admin service: health, metrics, logger and the lifecycle the gRPC server is drained by. */
  readonly service: Service;
  readonly cache: SnapshotCache;
  readonly ads: AdsServer;
  readonly #grpc: grpc.Server;
  readonly #port: number;
  readonly #host: string;
  #address: string | undefined;
  #mesh: Mesh | undefined;

  constructor(options: ControlPlaneOptions = {}) {
    const name = options.name ?? 'capstan-xds';
    this.#port = options.port ?? 18_000;
    this.#host = options.host ?? '127.0.0.1';
    this.service = createService({
      name,
      port: options.admin?.port ?? 0,
      host: options.admin?.host ?? this.#host,
      ...(options.logger ? { logger: options.logger } : {}),
      ...(options.metrics ? { metrics: options.metrics } : {}),
      ...(options.lifecycle ? { lifecycle: options.lifecycle } : {}),
    });
    this.cache = new SnapshotCache(options.nodeHash ? { nodeHash: options.nodeHash } : {});
    this.ads = new AdsServer({
      cache: this.cache,
      logger: this.service.logger,
      metrics: this.service.metrics,
    });
    this.#grpc = new grpc.Server({
      // Streams live long: ping idle clients so a vanished one is noticed and its stream cleaned up.
      'grpc.keepalive_time_ms': 30_000,
      'grpc.keepalive_timeout_ms': 10_000,
      ...options.grpcOptions,
    });
    this.#grpc.addService(this.ads.definition, this.ads.implementation);
    this.service.lifecycle.addServer(this.#grpc, { name: `${name}-grpc` });
    // ADS streams never end by themselves: end them when the drain begins, so the server drains at once.
    this.service.lifecycle.onPhase(({ phase }) => {
      if (phase === 'draining') this.ads.closeAll();
    });
    if (options.mesh) this.setMesh(options.mesh);
    this.service.health.register({
      name: 'xds-snapshot',
      critical: false,
      intervalMs: 1_000,
      check: async () => {
        if (!this.cache.defaultSnapshot && this.cache.keys().length === 0) {
          throw new Error('no snapshot yet: clients wait');
        }
        return { detail: `${this.ads.streams().length} stream(s)` };
      },
    });
  }

  /** Listen for {@link XdsEvent}s (streams, pushes, ACKs, NACKs, bad requests); returns the unsubscribe. */
  onEvent(listener: (event: XdsEvent) => void): () => void {
    return this.ads.onEvent(listener);
  }

  /** `host:port` of the xDS server, once started (what a gRPC bootstrap's `server_uri` takes). */
  get address(): string {
    if (!this.#address) throw new TrafficError(TrafficErrorCode.invalid, 'the control plane is not started');
    return this.#address;
  }

  /** The admin URL (health and metrics), once started. */
  get adminUrl(): string {
    return this.service.url;
  }

  /** The mesh served as the default snapshot, if any. */
  get mesh(): Mesh | undefined {
    return this.#mesh;
  }

  /** Bind the xDS port and the admin port. Returns the xDS address (`host:port`). */
  async start(): Promise<string> {
    const bindHost = this.#host.includes(':') ? `[${this.#host}]` : this.#host;
    const port = await new Promise<number>((resolve, reject) =>
      this.#grpc.bindAsync(`${bindHost}:${this.#port}`, grpc.ServerCredentials.createInsecure(), (err, p) =>
        err ? reject(err) : resolve(p),
      ),
    );
    this.#address = `${bindHost}:${port}`;
    await this.service.start();
    this.service.logger.info({ xds: this.#address, admin: this.service.url }, 'xDS control plane listening');
    return this.#address;
  }

  /** Serve `mesh` to every node without a snapshot of its own. Checked first: a bad mesh throws and changes nothing. */
  setMesh(mesh: Mesh): Snapshot {
    const snapshot = meshSnapshot(mesh);
    this.#mesh = mesh;
    this.cache.setDefaultSnapshot(snapshot);
    this.service.logger.info({ versions: snapshot.versions }, 'mesh snapshot set');
    return snapshot;
  }

  /** Split `service`'s default route between its versions, e.g. `{ v1: 90, v2: 10 }` (versions left out get 0). */
  setWeights(service: string, weights: VersionWeights): Snapshot {
    return this.setMesh(withWeights(this.#requireMesh(), service, weights));
  }

  /** Replace the endpoints of one version of a service. */
  setEndpoints(service: string, version: string, endpoints: readonly AssignmentEndpoint[]): Snapshot {
    return this.setMesh(withEndpoints(this.#requireMesh(), service, version, endpoints));
  }

  /** The open streams, with what each node subscribed to, was sent, ACKed and NACKed. */
  streams(): StreamStatus[] {
    return this.ads.streams();
  }

  /** A bootstrap for a gRPC client of this control plane (see {@link grpcBootstrap}). */
  bootstrap(nodeId: string): Record<string, unknown> {
    return grpcBootstrap({ server: this.address, nodeId });
  }

  /** Drain and stop: readiness 503, streams ended cleanly, the gRPC server and admin service closed. */
  async stop(reason = 'stop'): Promise<void> {
    await this.service.stop(reason);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop('dispose');
  }

  #requireMesh(): Mesh {
    if (!this.#mesh) throw new TrafficError(TrafficErrorCode.invalid, 'no mesh set yet (setMesh first)');
    return this.#mesh;
  }
}

/** Create a {@link ControlPlane} (the mesh, if given, is checked here). */
export function createControlPlane(options: ControlPlaneOptions = {}): ControlPlane {
  return new ControlPlane(options);
}
