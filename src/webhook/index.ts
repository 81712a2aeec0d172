// capstan/webhook: Kubernetes admission webhooks: a typed, fluent definition of validating and mutating
// handlers, served over TLS on the runtime, and the configurations that register them with the apiserver.

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
export { WebhookError, WebhookErrorCode } from './errors.ts';
export {
  NAMESPACE_NAME_LABEL,
  type WebhookConfigurationOptions,
  type WebhookConfigurations,
  type WebhookServiceRef,
  webhookConfigurations,
} from './manifests.ts';
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
