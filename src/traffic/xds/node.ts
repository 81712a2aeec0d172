// Who an xDS client is (the `node` of its first request) and how a gRPC client finds the control plane
// (its bootstrap).

/** The `node` an xDS client sends (envoy.config.core.v3.Node), in proto field names. */
export interface Node {
  readonly id: string;
  readonly cluster?: string;
  readonly user_agent_name?: string;
  readonly locality?: { region?: string; zone?: string; sub_zone?: string };
  readonly metadata?: unknown;
  readonly [field: string]: unknown;
}

/** Options of {@link grpcBootstrap}. */
export interface GrpcBootstrapOptions {
  /** The control plane's gRPC address, `host:port`. */
  server: string;
  /** The node id the client sends (what the snapshot cache keys on by default). */
  nodeId: string;
  /** Node cluster; default unset. */
  cluster?: string;
}

/**
 * A gRPC xDS bootstrap (what `GRPC_XDS_BOOTSTRAP_CONFIG` holds, or the file `GRPC_XDS_BOOTSTRAP` names) for a
 * client of this control plane, over plaintext. `node.locality` is set: @grpc/grpc-js-xds fails every call
 * with a misleading error without it.
 */
export function grpcBootstrap(options: GrpcBootstrapOptions): Record<string, unknown> {
  return {
    xds_servers: [
      {
        server_uri: options.server,
        channel_creds: [{ type: 'insecure' }],
        server_features: ['xds_v3'],
      },
    ],
    node: {
      id: options.nodeId,
      ...(options.cluster !== undefined ? { cluster: options.cluster } : {}),
      locality: {},
    },
  };
}
