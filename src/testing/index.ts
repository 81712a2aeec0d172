// capstan/testing: start real peers (control plane, databases, Prometheus, dockerd) for tests. The peer
// catalogue, process and control-plane pieces live in capstan/peers and capstan/runtime; they are
// re-exported here because tests used them from here first.

export {
  type AttachSharedClusterOptions,
  binaryWithLibraries,
  buildImageArchive,
  busyboxImageSpec,
  type ClusterNodeState,
  type ControlPlane,
  type ControlPlaneOptions,
  type ControlPlaneWebhookOptions,
  type ControlPlaneWebhookServer,
  cacheRoot,
  ensurePeers,
  type HostSnapshot,
  holdNodeLock,
  hostDifferences,
  hostSnapshot,
  type ImageFile,
  type ImageSpec,
  type KubeAssets,
  type KubeNode,
  type KubeObject,
  type NodeHostState,
  type NodeOptions,
  nodeHostState,
  nodeMounts,
  type PeerProcess,
  type PeerProcessOptions,
  peerBinary,
  peerCacheDir,
  peerCatalogue,
  peerStatus,
  type RawRequestInit,
  resolveKubeAssets,
  startControlPlane,
  startPeerProcess,
  toKubeObjects,
} from '../peers/index.ts';
export { type CommandResult, freePort, isProcessRunning, type RunCommandOptions } from '../runtime/index.ts';
export { type AnsibleTool, type RunAnsibleOptions, runAnsible } from './ansible.ts';
export { type ConsulPeer, consulBinary, type StartConsulOptions, startConsul } from './consul.ts';
export {
  busyboxTarball,
  createTestContainer,
  DOCKER_TEST_IMAGE,
  type DockerPeer,
  type SocketProxy,
  type StartDockerOptions,
  startDocker,
  startSocketProxy,
  type TestContainerOptions,
} from './docker.ts';
export { type EventuallyOptions, eventually } from './eventually.ts';
export { createHelmHome, type HelmHome, helmBinary, type RunHelmOptions, runHelm } from './helm.ts';
export { type PostgresPeer, postgresBinDir, type StartPostgresOptions, startPostgres } from './postgres.ts';
export {
  type PrometheusPeer,
  type PromSample,
  type ScrapeTarget,
  type StartPrometheusOptions,
  startPrometheus,
  type TargetHealth,
  type WaitForOptions,
} from './prometheus.ts';
export { type RabbitMQPeer, type StartRabbitMQOptions, startRabbitMQ } from './rabbitmq.ts';
export { type RedisPeer, type StartRedisOptions, startRedis } from './redis.ts';
export { type RegistryPeer, registryBinary, type StartRegistryOptions, startRegistry } from './registry.ts';
export { type S3Peer, type StartS3Options, s3Binary, startS3 } from './s3.ts';
export { type SharedCluster, useSharedCluster } from './shared-cluster.ts';
export { createTestCertificates, type TestCertificateOptions, type TestCertificates } from './tls.ts';
export { type RunTofuOptions, runTofu, tofuBinary } from './tofu.ts';
