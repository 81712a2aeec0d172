import { CapstanError } from '../errors.ts';

/** Codes of the HTTP transport (`runtime/http`); one line of meaning each. */
export const HttpErrorCode = {
  /** The server could not be reached, or the connection broke before a response (refused, reset, no socket). */
  connect: 'CAP_ERR_RUNTIME_HTTP_CONNECT',
  /** The server's TLS certificate did not verify (unknown CA, expired, wrong name): never retried. */
  tls: 'CAP_ERR_RUNTIME_HTTP_TLS',
  /** No headers, no body progress, or no complete answer within the configured time. */
  timeout: 'CAP_ERR_RUNTIME_HTTP_TIMEOUT',
  /** The server answered with a status the caller did not accept (the JSON helpers' 4xx/5xx). */
  status: 'CAP_ERR_RUNTIME_HTTP_STATUS',
  /** A response body that should have been JSON could not be parsed. */
  body: 'CAP_ERR_RUNTIME_HTTP_BODY',
  /** Options that cannot be used (bad origin, negative timeout, ...). */
  invalid: 'CAP_ERR_RUNTIME_HTTP_INVALID',
} as const;
/** One of {@link HttpErrorCode}'s values. */
export type HttpErrorCode = (typeof HttpErrorCode)[keyof typeof HttpErrorCode];

/**
 * Raised by the HTTP transport. `status` is the server's HTTP status when one came (0 otherwise), and
 * `responseText` the start of its body for {@link HttpErrorCode.status}, so callers can show the server's words.
 */
export class HttpError extends CapstanError {
  declare readonly code: HttpErrorCode;
  /** HTTP status of the answer, or 0 when none came. */
  readonly status: number;
  /** The response body (first 4 KiB) for a status error, else `''`. */
  readonly responseText: string;

  constructor(
    code: HttpErrorCode,
    message: string,
    options?: { cause?: unknown; status?: number; responseText?: string },
  ) {
    super(code, message, options);
    this.status = options?.status ?? 0;
    this.responseText = options?.responseText ?? '';
  }
}
