// capstan/webhook: Kubernetes admission webhooks: a typed, fluent definition of validating and mutating
// handlers, served over TLS on the runtime, and the configurations that register them with the apiserver.

export {
  type AdmissionOutcome,
  type AdmissionResult,
  type AdmitOptions,
  admit,
  bindingMatches,
} from './admission.ts';
export {
  type CaInjector,
  type InjectCaBundleOptions,
  injectCaBundle,
  type WebhookConfiguration,
} from './ca-injection.ts';
export {
  type CertificateStore,
  CHANGED_AT_ANNOTATION,
  certificatesFromSecret,
  type IssuedCertificates,
  memoryCertificateStore,
  SECRET_KEYS,
  type StoredCertificates,
  secretCertificateStore,
} from './certificate-store.ts';
export {
  type CertificateStep,
  type CertificateTimings,
  type IssueContext,
  type IssuedWebhookCertificates,
  type IssueWebhookCertificatesOptions,
  issueWebhookCertificates,
  nextCertificates,
  pemCertificates,
  type RotationPhase,
  renewalTime,
  rotationPhase,
  type ServingNames,
  serviceDnsNames,
  urlServingNames,
  type WebhookCertificates,
} from './certificates.ts';
export {
  type AdmissionContext,
  type Binding,
  type BindingBuilder,
  defineWebhook,
  exportedWebhooks,
  type FailurePolicy,
  type HandlerSet,
  isWebhook,
  type MutateHandler,
  type MutateStep,
  type MutationContext,
  type ObjectsOf,
  type ResolvedWebhookOptions,
  type SideEffects,
  type ValidateHandler,
  type Verdict,
  Webhook,
  type WebhookOptions,
  type WebhookType,
  type WhenKind,
  webhookPath,
} from './definition.ts';
export {
  excludeNamespace,
  WEBHOOK_POD_PORT,
  type WebhookDeployOptions,
  webhookDeployManifests,
  webhookSecretName,
} from './deploy.ts';
export { WebhookError, WebhookErrorCode } from './errors.ts';
export {
  applyJsonPatch,
  diffJsonPatch,
  escapePointerToken,
  type JsonPatchOperation,
  type JsonValue,
  jsonEqual,
  toJsonValue,
} from './json-patch.ts';
export {
  NAMESPACE_NAME_LABEL,
  type WebhookConfigurationOptions,
  type WebhookConfigurations,
  type WebhookServiceRef,
  webhookConfigurations,
} from './manifests.ts';
export {
  type WebhookCertificateAccess,
  type WebhookRbacOptions,
  type WebhookRules,
  webhookRbacManifests,
  webhookRules,
} from './rbac.ts';
export {
  ADMISSION_REVIEW_API_VERSION,
  type AdmissionReviewReply,
  type AdmissionReviewRequest,
  type AdmissionReviewResponse,
  type AdmissionStatus,
  admissionReviewReply,
  decodeAdmissionReview,
  type GroupVersionKind,
  type GroupVersionResource,
  type JsonObject,
  OPERATIONS,
  type Operation,
  type UserInfo,
} from './review.ts';
export {
  type RunningWebhook,
  type RunWebhookOptions,
  runWebhook,
  webhookProgramConfig,
} from './run-webhook.ts';
export {
  type FollowCertificateSecretOptions,
  followCertificateSecret,
  readCertificateSecret,
} from './secret-certificates.ts';
export {
  createWebhookServer,
  DEFAULT_MAX_BODY_BYTES,
  DEFAULT_WEBHOOK_PORT,
  type WebhookServer,
  type WebhookServerOptions,
} from './server.ts';
