import { CapstanError } from '../errors.ts';

/**
 * Error codes of the health area. A check's own failure is reported in the probe body; these codes
 * let callers and tests branch on why a check (or a registration) failed.
 */
export type HealthErrorCode =
  /** `register()` got bad options (empty name, bad timing, ...). */
  | 'CAP_ERR_RUNTIME_HEALTH_INVALID'
  /** A check with that name is already registered. */
  | 'CAP_ERR_RUNTIME_HEALTH_DUPLICATE'
  /** The Health registry was closed. */
  | 'CAP_ERR_RUNTIME_HEALTH_CLOSED'
  /** A check did not settle within its `timeoutMs`. */
  | 'CAP_ERR_RUNTIME_HEALTH_TIMEOUT'
  /** A check was aborted by the caller's signal. */
  | 'CAP_ERR_RUNTIME_HEALTH_ABORTED'
  /** A check threw something that is not an Error (wrapped so it has a message). */
  | 'CAP_ERR_RUNTIME_HEALTH_FAILED'
  /** `postgresCheck` could not connect or `SELECT 1` failed. */
  | 'CAP_ERR_RUNTIME_HEALTH_POSTGRES'
  /** `redisCheck` could not connect, authenticate or get PONG. */
  | 'CAP_ERR_RUNTIME_HEALTH_REDIS'
  /** `httpCheck` failed to connect or got a status outside the expected range. */
  | 'CAP_ERR_RUNTIME_HEALTH_HTTP'
  /** `tcpCheck` could not connect. */
  | 'CAP_ERR_RUNTIME_HEALTH_TCP'
  /** `dnsCheck` could not resolve the name. */
  | 'CAP_ERR_RUNTIME_HEALTH_DNS';

/** Every error raised by the health area. Messages never contain credentials from URLs. */
export class HealthError extends CapstanError {
  declare readonly code: HealthErrorCode;

  constructor(code: HealthErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}
