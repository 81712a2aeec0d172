// capstan/runtime: the service runtime every Capstan server shares.

export {
  abortReason,
  type Deadline,
  deadline,
  linkedController,
  raceAbort,
  sleep,
  within,
} from './abort.ts';

export {
  type ConfigDefinition,
  type ConfigDocFormat,
  type ConfigEntry,
  type ConfigFieldInput,
  type ConfigGroup,
  type ConfigOf,
  type ConfigRow,
  checkConfig,
  configGroup,
  type DefineConfigOptions,
  defineConfig,
  describeConfig,
  EX_CONFIG,
  envNameFor,
  type FieldValue,
  isConfigDefinition,
  listenConfig,
  listenFields,
  loadConfig,
  loadConfigOrExit,
  renderConfigRows,
} from './config/config.ts';
export {
  type DurationUnit,
  EnvField,
  type EnvFieldInfo,
  env,
  formatDuration,
  isEnvField,
  parseDuration,
  type RangeOptions,
} from './config/env-types.ts';
export { ConfigDefinitionError, ConfigError, ConfigErrorCode, type ConfigIssue } from './config/errors.ts';
export { type ConfigsCheck, checkConfigs, exportedConfigDefinitions } from './config/module-configs.ts';
export { CapstanError } from './errors.ts';
export { type DnsCheckOptions, dnsCheck } from './health/checks/dns.ts';
export { type HttpCheckOptions, httpCheck } from './health/checks/http.ts';
export {
  type PostgresCheckOptions,
  type PostgresQueryable,
  postgresCheck,
} from './health/checks/postgres.ts';
export {
  type RedisCheckOptions,
  type RedisTarget,
  type RedisTlsOptions,
  redisCheck,
} from './health/checks/redis.ts';
export { tcpCheck } from './health/checks/tcp.ts';
export { HealthError, HealthErrorCode } from './health/errors.ts';
export type { EventLoopOptions } from './health/event-loop.ts';
export { Health } from './health/health.ts';
export type { HealthRequest, HealthResponse } from './health/http.ts';
export { type HealthCollectorOptions, healthCollector } from './health/metrics.ts';
export type {
  CheckFunction,
  CheckKind,
  CheckOptions,
  CheckResult,
  CheckState,
  CheckStatus,
  HealthChange,
  HealthOptions,
  HealthPhase,
  HealthReport,
  HealthVerdict,
  ProbeKind,
} from './health/types.ts';
export {
  type FilesystemCollectorOptions,
  filesystemCollector,
  type HostMetricsOptions,
  hostMetricsCollector,
  parseLoadavg,
  parseMeminfo,
  parseNetDev,
  parseStat,
} from './host-metrics.ts';
export { HttpError, HttpErrorCode } from './http/errors.ts';
export { isConnectionFailure, isTlsVerifyFailure, toHttpError } from './http/failures.ts';
export {
  type HttpDispatchOptions,
  type HttpLogEntry,
  type HttpLogSink,
  type HttpRetryOptions,
  type HttpTimeouts,
  IDEMPOTENT_METHODS,
  loggingInterceptor,
  retryInterceptor,
  timeoutInterceptor,
} from './http/interceptors.ts';
export {
  createHttpTransport,
  type FetchOnceOptions,
  fetchOnce,
  type HttpJsonOptions,
  type HttpRequestOptions,
  type HttpResponse,
  type HttpResponseBody,
  type HttpTlsOptions,
  HttpTransport,
  type HttpTransportOptions,
  httpJson,
  httpRequest,
} from './http/transport.ts';
export type { ServerDrainReport, ServerKind } from './lifecycle/drainer.ts';
export { LifecycleError, LifecycleErrorCode } from './lifecycle/errors.ts';
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
export { LogError, LogErrorCode } from './log/errors.ts';
export {
  createLogger,
  flushLogs,
  LOG_LEVELS,
  type LogFormat,
  type Logger,
  type LoggerOptions,
  type LogLevel,
  logConfig,
} from './log/logger.ts';
export {
  type BoundCounter,
  type BoundGauge,
  type BoundHistogram,
  bindCounter,
  bindGauge,
  bindHistogram,
  type CapstanMetricOptions,
  type Collector,
  type CollectorStatus,
  Counter,
  collectDefaultMetrics,
  DROPPED_SERIES_METRIC,
  type DropInfo,
  type ExposeOptions,
  type ExposingRegistry,
  type ExpositionFormat,
  exponentialBuckets,
  Gauge,
  Histogram,
  type HttpMetricsOptions,
  type HttpRequestHook,
  httpServerMetrics,
  instrumentHttpServer,
  linearBuckets,
  type MetricDesc,
  MetricsError,
  MetricsErrorCode,
  type MetricsHandlerOptions,
  MetricsRegistry,
  type MetricsRegistryOptions,
  type MetricType,
  metricsHandler,
  negotiateFormat,
  type OnDrop,
  OPENMETRICS_CONTENT_TYPE,
  type Sample,
  Summary,
  TEXT_CONTENT_TYPE,
} from './metrics/index.ts';
export { canConnect, freePort } from './net/ports.ts';
export { ProcessError, ProcessErrorCode } from './process/errors.ts';
export {
  isProcessRunning,
  makeProcessDir,
  onExitAfterProcesses,
  processesWithCommandLine,
  type RunningProcess,
  type StartProcessOptions,
  startProcess,
  tailFile,
  tailLines,
} from './process/process.ts';
export { type CommandResult, type RunCommandOptions, runCommand } from './process/run-command.ts';
export {
  createRedactor,
  DEFAULT_SECRET_KEY_FRAGMENTS,
  DEFAULT_SECRET_KEY_NAMES,
  maskUrlCredentials,
  REDACTED,
  type Redactor,
  type RedactorOptions,
} from './redact.ts';
export { ServiceError, ServiceErrorCode } from './service/errors.ts';
export {
  defaultServerLimits,
  limitHttp2Server,
  resolveServerLimits,
  type ServerLimits,
} from './service/limits.ts';
export {
  createService,
  type RequestContext,
  type Service,
  type ServiceHandler,
  type ServiceOptions,
} from './service/service.ts';
export {
  Backoff,
  type BackoffOptions,
  backoffDelay,
  type Connection,
  type ConnectionEnd,
  DEFAULT_MAX_NDJSON_BYTES,
  type Jitter,
  MergeSet,
  mergeAsync,
  type NdjsonOptions,
  ndjson,
  OverlapDedupe,
  type OverlapDedupeOptions,
  type ResumableOptions,
  type ResumeTracker,
  type RetryInfo,
  type RetryOptions,
  resumable,
  resumeFromLast,
  retry,
  StreamError,
  StreamErrorCode,
  type StreamNotice,
  unbatch,
} from './stream/index.ts';
export {
  type CertAuthority,
  type CertAuthorityOptions,
  type CertPair,
  createCertAuthority,
  type IssueOptions,
  loadCertAuthority,
} from './tls/certificate-authority.ts';
export { CertificateHolder, type ServingCertificate } from './tls/certificate-holder.ts';
export { TlsError, TlsErrorCode } from './tls/errors.ts';
export type { UpContext, UpService, UpStarted } from './up.ts';
