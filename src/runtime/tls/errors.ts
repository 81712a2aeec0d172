import { CapstanError } from '../errors.ts';

/** Codes of runtime/tls; one line of meaning each (docs/errors.md is generated from these comments). */
export const TlsErrorCode = {
  /** A certificate or key is not valid PEM, or the key does not match the certificate. */
  invalid: 'CAP_ERR_RUNTIME_TLS_INVALID',
} as const;
/** One of {@link TlsErrorCode}'s values. */
export type TlsErrorCode = (typeof TlsErrorCode)[keyof typeof TlsErrorCode];

/** Raised by the TLS helpers (a certificate holder refusing a bad pair). */
export class TlsError extends CapstanError {
  declare readonly code: TlsErrorCode;
  constructor(code: TlsErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}
