// capstan/peers: the programs Capstan works with (etcd, kube-apiserver, Prometheus, helm, tofu, ...):
// the pinned catalogue, install and cache, binary lookup, running them, and the local control plane
// behind `capstan dev cluster`. Serves `capstan dev`, `capstan/testing` and the tool areas.

export {
  bundleEntry,
  type CapstanImageOptions,
  capstanImageSpec,
  nodeRuntimeImageSpec,
} from './capstan-image.ts';
export {
  buildStamp,
  cacheRoot,
  ensurePeers,
  type PeerCatalogue,
  type PeerSource,
  type PeerStatus,
  packageRoot,
  peerBinary,
  peerCacheDir,
  peerCatalogue,
  peerStatus,
} from './catalogue.ts';
export {
  type ClusterInfo,
  type ClusterNodeState,
  type ClusterState,
  type ClusterStatus,
  clusterKubeconfig,
  clusterStateDir,
  clusterStatus,
  readClusterState,
  type StartClusterOptions,
  startCluster,
  stopCluster,
  stopClusterSync,
  writeClusterState,
} from './cluster.ts';
export {
  type ControlPlane,
  type ControlPlaneOptions,
  type ControlPlaneWebhookOptions,
  type ControlPlaneWebhookServer,
  type KubeObject,
  kubeconfigRequest,
  type RawRequestInit,
  startControlPlane,
  toKubeObjects,
} from './control-plane.ts';
export { PeerError, PeerErrorCode } from './errors.ts';
export {
  type ImageReference,
  type PushImageOptions,
  type PushResult,
  parseImageReference,
  pushImage,
} from './image-push.ts';
export {
  type BuildImageOptions,
  type BuiltImage,
  binaryWithLibraries,
  buildImage,
  buildImageArchive,
  busyboxImageSpec,
  debianPackageFiles,
  type ImageBlob,
  type ImageDir,
  type ImageFile,
  type ImageLayer,
  ImageMediaType,
  type ImageSpec,
  type ImageUser,
  imageCacheDir,
  type NginxImageOptions,
  nginxImageSpec,
  type ProgramImageOptions,
  pauseImageSpec,
  programImageSpec,
  redisImageSpec,
  tarArchive,
  writeDockerArchive,
} from './images.ts';
export { type KubeAssets, resolveKubeAssets } from './kube-assets.ts';
export {
  CLUSTER_NETWORK,
  cleanStaleNode,
  type HostSnapshot,
  holdNodeLock,
  hostDifferences,
  hostSnapshot,
  type KubeNode,
  loadNodeImage,
  type NodeHostState,
  type NodeOptions,
  nodeFirewallRules,
  nodeHostState,
  nodeLockPath,
  nodeMounts,
  restoreHost,
  SHARED_RUN_ENV,
} from './node.ts';
export {
  type PeerProcess,
  type PeerProcessOptions,
  runPeerCommand,
  startPeerProcess,
} from './process.ts';
export {
  type AttachSharedClusterOptions,
  attachSharedCluster,
  closeSharedRun,
  openSharedRun,
  type SharedClusterInfo,
} from './shared-cluster.ts';
