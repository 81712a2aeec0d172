import { CapstanError } from '../runtime/index.ts';

/** Codes of the webhook area; tests and callers branch on these. */
export const WebhookErrorCode = {
  /** A webhook definition or call that cannot work as asked: no handlers, a bad name, a path served twice, options out of range. */
  usage: 'CAP_ERR_WEBHOOK_USAGE',
  /** A request body that is not an AdmissionReview v1 (malformed JSON, wrong apiVersion or kind, no request.uid); answered 400. */
  badRequest: 'CAP_ERR_WEBHOOK_BAD_REQUEST',
  /** A request body over the size limit (default 3 MiB, the apiserver's own); answered 400 with the reason, unread beyond the limit. */
  tooLarge: 'CAP_ERR_WEBHOOK_TOO_LARGE',
  /** An admission handler threw or rejected; answered by the failure policy. */
  handler: 'CAP_ERR_WEBHOOK_HANDLER',
  /** An admission handler overran its deadline (the apiserver's timeout minus a margin); answered by the failure policy. */
  timeout: 'CAP_ERR_WEBHOOK_TIMEOUT',
  /** Certificates that cannot be issued, stored or read: a Secret without a usable tls.crt/tls.key/ca.crt, a store that keeps refusing writes. */
  certificate: 'CAP_ERR_WEBHOOK_CERTIFICATE',
  /** A webhook configuration that cannot be kept injected with the CA bundle: a webhook missing from it, a write refused. */
  configuration: 'CAP_ERR_WEBHOOK_CONFIGURATION',
} as const;
/** One of {@link WebhookErrorCode}'s values. */
export type WebhookErrorCode = (typeof WebhookErrorCode)[keyof typeof WebhookErrorCode];

/** Error raised by the webhook area. `problems` lists each thing wrong when there are several. */
export class WebhookError extends CapstanError {
  declare readonly code: WebhookErrorCode;
  /** Each thing wrong, when there are several (a definition lists all its problems at once); else empty. */
  readonly problems: readonly string[];
  constructor(
    code: WebhookErrorCode,
    message: string,
    options?: { cause?: unknown; problems?: readonly string[] },
  ) {
    super(code, message, options);
    this.problems = options?.problems ?? [];
  }
}
