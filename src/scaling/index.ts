// capstan/scaling: scale any resource through its Scale subresource, and autoscale it on a metric
// (RabbitMQ queue depth, a Prometheus query) with the HPA's formula.

export {
  Autoscaler,
  type AutoscalerCondition,
  type AutoscalerOptions,
  type AutoscalerSpec,
  type AutoscalerStatus,
  autoscalerSpecProblems,
  DEFAULT_POLLING_INTERVAL_MS,
  DEFAULT_SCALE_DOWN_WINDOW_SECONDS,
  DEFAULT_SCALE_UP_WINDOW_SECONDS,
  type ScalingDecision,
} from './autoscaler.ts';
export { type AutoscalerConfigEntry, parseAutoscalerConfig, sourceFor } from './config.ts';
export { ScalingError, ScalingErrorCode } from './errors.ts';
export {
  createExternalMetricsAdapter,
  defineExternalMetric,
  type ExternalMetric,
  type ExternalMetricQuery,
  type ExternalMetricSample,
  type ExternalMetricsAdapter,
  type ExternalMetricsAdapterOptions,
} from './external-metrics/adapter.ts';
export {
  type Authentication,
  authenticateFrontProxy,
  type FrontProxyAuthentication,
  readFrontProxyAuthentication,
  type UserInfo,
} from './external-metrics/authentication.ts';
export {
  type Authorizer,
  type Decision,
  EXTERNAL_METRICS_GROUP,
  EXTERNAL_METRICS_VERSION,
  type RequestAttributes,
  type SubjectAccessReviewAuthorizerOptions,
  subjectAccessReviewAuthorizer,
} from './external-metrics/authorization.ts';
export {
  type LabelRequirement,
  type LabelSelector,
  parseLabelSelector,
} from './external-metrics/label-selector.ts';
export {
  APIService,
  applyExternalMetricsApi,
  EXTERNAL_METRICS_API_SERVICE,
  type ExternalMetricsApiObject,
  type ExternalMetricsApiOptions,
  externalMetricsApiManifests,
  externalMetricsServiceNames,
  issueExternalMetricsServingCertificate,
  waitForExternalMetricsApi,
} from './external-metrics/manifests.ts';
export { toQuantity } from './external-metrics/quantity.ts';
export {
  rabbitmqQueueDepthMetric,
  type SourceMetricOptions,
  sourceMetric,
} from './external-metrics/source-metric.ts';
export {
  clampReplicas,
  DEFAULT_TOLERANCE,
  type ProposalInput,
  proposeReplicas,
  type Recommendation,
  type StabilizationReason,
  type StabilizationWindows,
  Stabilizer,
  type TargetType,
} from './formula.ts';
export { type ResolvedResource, resolveResource } from './resolve.ts';
export {
  checkReplicas,
  parseTargetRef,
  readScale,
  type ScaleCallOptions,
  type ScaleResourceOptions,
  type ScaleResult,
  type ScaleState,
  ScaleTarget,
  type ScaleTargetRef,
  scaleResource,
  scaleTarget,
} from './scale.ts';
export { type AutoscalerService, type AutoscalerServiceOptions, createAutoscalerService } from './service.ts';
export {
  type MetricSource,
  type PrometheusQuerySourceOptions,
  prometheusQuerySource,
  type RabbitMQQueueSourceOptions,
  rabbitmqQueueSource,
} from './sources.ts';
