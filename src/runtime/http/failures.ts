import { HttpError, HttpErrorCode } from './errors.ts';

/** Error codes (Node's and undici's) meaning the server was not reached or the connection broke. */
export const CONNECTION_ERROR_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ENOENT',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ENOTCONN',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EHOSTDOWN',
  'ENETDOWN',
  'ETIMEDOUT',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_CONNECT_TIMEOUT',
]);

const TIMEOUT_ERROR_CODES: ReadonlySet<string> = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

function codeOf(err: unknown): string {
  const code = (err as { code?: unknown } | null | undefined)?.code;
  return typeof code === 'string' ? code : '';
}

/** True when `err` (a Node or undici error) means the server could not be reached or the connection broke. */
export function isConnectionFailure(err: unknown): boolean {
  if (err instanceof HttpError) return err.code === HttpErrorCode.connect;
  return CONNECTION_ERROR_CODES.has(codeOf(err));
}

/** True when `err` is Node's verdict on a server certificate that does not verify: a setup problem, never retried. */
export function isTlsVerifyFailure(err: unknown): boolean {
  if (err instanceof HttpError) return err.code === HttpErrorCode.tls;
  const code = codeOf(err);
  return (
    /^(UNABLE_TO_|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|CERT_|ERR_TLS_CERT_ALTNAME_INVALID)/.test(
      code,
    ) || code === 'HOSTNAME_MISMATCH'
  );
}

/**
 * Turn a failed exchange into an {@link HttpError} (`what` names the request in the message); the original
 * error stays the `cause`, so callers can still read its `code`. Errors that are not transport failures
 * (an HttpError already, a caller's own) are returned unchanged.
 */
export function toHttpError(err: unknown, what: string): unknown {
  if (err instanceof HttpError) return err;
  const message = (err as Error | undefined)?.message ?? String(err);
  if (isTlsVerifyFailure(err)) {
    return new HttpError(HttpErrorCode.tls, `${what}: certificate does not verify: ${message}`, {
      cause: err,
    });
  }
  if (isConnectionFailure(err)) {
    return new HttpError(HttpErrorCode.connect, `${what}: cannot connect: ${message}`, { cause: err });
  }
  if (TIMEOUT_ERROR_CODES.has(codeOf(err))) {
    return new HttpError(HttpErrorCode.timeout, `${what}: ${message}`, { cause: err });
  }
  return err;
}
