import { CapstanError } from '../runtime/index.ts';

/** Codes of the peers area and the test peers built on it; one line of meaning each (docs/errors.md is generated from these comments). */
export const PeerErrorCode = {
  /** scripts/peers/versions.json (the peer catalogue) was not found above the package. */
  catalogue: 'CAP_ERR_PEER_CATALOGUE',
  /** A peer name is not in the catalogue. */
  unknown: 'CAP_ERR_PEER_UNKNOWN',
  /** Installing a peer (apt-get, go build, a rootfs) failed. */
  install: 'CAP_ERR_PEER_INSTALL',
  /** A peer's binaries are not installed and cannot be found. */
  notFound: 'CAP_ERR_PEER_NOT_FOUND',
  /** The control-plane asset folder lacks an executable etcd, kube-apiserver or kube-controller-manager. */
  assets: 'CAP_ERR_PEER_ASSETS',
  /** A peer program exited (or could not be spawned) before it was ready. */
  exited: 'CAP_ERR_PEER_EXITED',
  /** A peer program did not become ready in time. */
  notReady: 'CAP_ERR_PEER_NOT_READY',
  /** A peer program did not stop when asked. */
  stop: 'CAP_ERR_PEER_STOP',
  /** A peer CLI (helm, tofu, ansible) could not be spawned. */
  commandSpawn: 'CAP_ERR_PEER_COMMAND_SPAWN',
  /** A peer CLI was stopped by its signal or timeout. */
  commandAborted: 'CAP_ERR_PEER_COMMAND_ABORTED',
  /** A peer CLI exited non-zero. */
  commandFailed: 'CAP_ERR_PEER_COMMAND_FAILED',
  /** Bad options for a peer (a scrape target, a queue on the wrong broker, ...). */
  config: 'CAP_ERR_PEER_CONFIG',
  /** Preparing a peer's data (initdb, a bucket, a template copy) failed. */
  init: 'CAP_ERR_PEER_INIT',
  /** The peer cannot run as the current user (e.g. PostgreSQL as root). */
  user: 'CAP_ERR_PEER_USER',
  /** A request to a running peer's API failed. */
  request: 'CAP_ERR_PEER_REQUEST',
  /** Prometheus rejected a query. */
  prometheusQuery: 'CAP_ERR_PEER_PROMETHEUS_QUERY',
  /** A Prometheus condition was not met in time. */
  prometheusTimeout: 'CAP_ERR_PEER_PROMETHEUS_TIMEOUT',
  /** Prometheus did not reload its configuration. */
  prometheusReload: 'CAP_ERR_PEER_PROMETHEUS_RELOAD',
  /** Control-plane start-up was aborted by the caller's signal. */
  aborted: 'CAP_ERR_PEER_ABORTED',
  /** A Kubernetes manifest (YAML) could not be parsed. */
  manifest: 'CAP_ERR_PEER_MANIFEST',
  /** A CustomResourceDefinition was rejected or not established in time. */
  crd: 'CAP_ERR_PEER_CRD',
  /** A webhook configuration was rejected. */
  webhook: 'CAP_ERR_PEER_WEBHOOK',
  /** A background cluster is already starting; `capstan dev cluster down` resets it. */
  clusterBusy: 'CAP_ERR_PEER_CLUSTER_BUSY',
  /** The background cluster failed to start or was not ready in time. */
  clusterFailed: 'CAP_ERR_PEER_CLUSTER_FAILED',
  /** Another process runs a node on this machine (the node lock is held) and did not stop in time. */
  nodeBusy: 'CAP_ERR_PEER_NODE_BUSY',
  /** A test run shares one node across its files: a node of one's own is refused there (it would wait for the shared one until the run ends). */
  nodeShared: 'CAP_ERR_PEER_NODE_SHARED',
  /** The test run's shared cluster failed to start, or is not ready in time. */
  sharedCluster: 'CAP_ERR_PEER_SHARED_CLUSTER',
  /** A node (containerd, the CNI bridge, its images) could not be set up. */
  node: 'CAP_ERR_PEER_NODE',
  /** An image could not be built (a program to bundle fails to compile, a file is missing). */
  image: 'CAP_ERR_PEER_IMAGE',
  /** No background cluster is running. */
  clusterAbsent: 'CAP_ERR_PEER_CLUSTER_ABSENT',
} as const;
/** One of {@link PeerErrorCode}'s values. */
export type PeerErrorCode = (typeof PeerErrorCode)[keyof typeof PeerErrorCode];

/** Raised when a peer program (etcd, dockerd, Prometheus, ...) cannot be installed, started or used. */
export class PeerError extends CapstanError {
  declare readonly code: PeerErrorCode;
  /** Tail of the peer's own log, attached so a CI failure shows why the peer died. */
  readonly logTail: string;

  constructor(code: PeerErrorCode, message: string, logTail = '', options?: { cause?: unknown }) {
    super(code, logTail ? `${message}\n--- peer log (tail) ---\n${logTail}` : message, options);
    this.logTail = logTail;
  }
}
