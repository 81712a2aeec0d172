// capstan/docker: Docker Engine client, events, and log tailing that never loses a line.

export { mergeAsync } from '../runtime/index.ts';
export {
  CLIENT_API_VERSION,
  DockerClient,
  type DockerClientOptions,
  type EventsOptions,
  type ExecOptions,
  type ImageRef,
  isConnectionError,
  type LogsOptions,
  parseImageRef,
  type RegistryAuth,
  type TimeSpec,
} from './client.ts';
export {
  DEFAULT_DOCKER_HOST,
  DOCKER_SKIP_VERIFY_ENV,
  type DockerEndpoint,
  type DockerTlsOptions,
  resolveEndpoint,
} from './connection.ts';
export {
  DEFAULT_MAX_FRAME_BYTES,
  Demuxer,
  type DemuxOptions,
  demux,
  demuxBuffer,
  demuxChunks,
  encodeFrame,
  type Frame,
  type StdStream,
} from './demux.ts';
export { DockerError, DockerErrorCode } from './errors.ts';
export {
  type EventNotice,
  type EventWatcher,
  type StreamEventsOptions,
  streamEvents,
  type WatchEventsOptions,
  watchEvents,
} from './events.ts';
export { DEFAULT_MAX_LINE_BYTES } from './log-lines.ts';
export {
  type FollowLogsOptions,
  followLogBatches,
  followLogs,
  LINES_SPLIT_METRIC,
  type LogLine,
  type LogNotice,
  resolveTargets,
  tailLogBatches,
  tailLogs,
} from './logs.ts';
export {
  DEFAULT_MAX_DOCKER_JSON_BYTES,
  ndjson,
  type StreamErrorObject,
  throwIfStreamError,
} from './ndjson.ts';
export { formatDockerTime, formatRfc3339Nano, parseDurationMs, parseTimestampNs, toNs } from './time.ts';
export type {
  CallOptions,
  ContainerCreateSpec,
  ContainerInspect,
  ContainerSummary,
  DockerEvent,
  ExecResult,
  Filters,
  ImageSummary,
  ProgressEvent,
} from './types.ts';
export {
  DEFAULT_HOOK_CONCURRENCY,
  DEFAULT_HOOK_KILL_GRACE_MS,
  DEFAULT_HOOK_QUEUE_SIZE,
  DEFAULT_HOOK_TIMEOUT_MS,
  type EventHookOptions,
  EventHookQueue,
  type EventHookQueueOptions,
  type EventHookReport,
  type EventHookResult,
  type EventHookStats,
  eventHookEnv,
  runEventHook,
} from './watch-hooks.ts';
