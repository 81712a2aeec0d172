// capstan/runtime: the service runtime every Capstan server shares.
export { CapstanError, PeerError } from './errors.ts';
export type { ServerDrainReport, ServerKind } from './lifecycle/drainer.ts';
export { LifecycleError, type LifecycleErrorCode } from './lifecycle/errors.ts';
export type { GrpcServerLike } from './lifecycle/grpc-drainer.ts';
export {
  type AddServerOptions,
  type HandleSignalsOptions,
  Lifecycle,
  type LifecycleLog,
  type LifecycleOptions,
  type LifecyclePhase,
  type PhaseEvent,
  ShutdownExitCode,
  type ShutdownReport,
  type TaskReport,
} from './lifecycle/lifecycle.ts';
