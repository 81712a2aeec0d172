// capstan/testing: start real peers (control plane, databases, Prometheus, dockerd) for tests.

export { type AnsibleTool, type RunAnsibleOptions, runAnsible } from './ansible.ts';
export { type ConsulPeer, consulBinary, type StartConsulOptions, startConsul } from './consul.ts';
export {
  type ControlPlane,
  type ControlPlaneOptions,
  type ControlPlaneWebhookOptions,
  type ControlPlaneWebhookServer,
  type KubeObject,
  type RawRequestInit,
  startControlPlane,
  toKubeObjects,
} from './control-plane.ts';
export {
  busyboxTarball,
  DOCKER_TEST_IMAGE,
  type DockerPeer,
  type SocketProxy,
  type StartDockerOptions,
  startDocker,
  startSocketProxy,
} from './docker.ts';
export { createHelmHome, type HelmHome, helmBinary, type RunHelmOptions, runHelm } from './helm.ts';
export { type KubeAssets, resolveKubeAssets } from './internal/kube-assets.ts';
export { freePort } from './internal/ports.ts';
export {
  isRunning as isProcessRunning,
  type PeerProcess,
  type PeerProcessOptions,
  startPeerProcess,
} from './internal/process.ts';
export type { CommandResult, RunCommandOptions } from './internal/run-command.ts';
export { cacheRoot, ensurePeers, peerBinary, peerCacheDir, peerCatalogue, peerStatus } from './peers.ts';
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
export { createTestCertificates, type TestCertificateOptions, type TestCertificates } from './tls.ts';
export { type RunTofuOptions, runTofu, tofuBinary } from './tofu.ts';
