import { CapstanError } from '../errors.ts';

/**
 * Codes of the health module. A check's own failure is reported in the probe body; these codes let
 * callers and tests branch on why a check (or a registration) failed.
 */
export const HealthErrorCode = {
  /** `register()` or a check factory got bad options (empty name, bad timing, unusable target...). */
  invalid: 'CAP_ERR_RUNTIME_HEALTH_INVALID',
  /** A check with that name is already registered. */
  duplicate: 'CAP_ERR_RUNTIME_HEALTH_DUPLICATE',
  /** The Health registry was closed. */
  closed: 'CAP_ERR_RUNTIME_HEALTH_CLOSED',
  /** A check did not settle within its `timeoutMs`. */
  timeout: 'CAP_ERR_RUNTIME_HEALTH_TIMEOUT',
  /** A check was aborted by the caller's signal. */
  aborted: 'CAP_ERR_RUNTIME_HEALTH_ABORTED',
  /** A check threw something that is not an Error (wrapped so it has a message). */
  failed: 'CAP_ERR_RUNTIME_HEALTH_FAILED',
  /** `postgresCheck` could not connect or `SELECT 1` failed. */
  postgres: 'CAP_ERR_RUNTIME_HEALTH_POSTGRES',
  /** `redisCheck` could not connect, authenticate or get PONG. */
  redis: 'CAP_ERR_RUNTIME_HEALTH_REDIS',
  /** `httpCheck` failed to connect or got a status outside the expected range. */
  http: 'CAP_ERR_RUNTIME_HEALTH_HTTP',
  /** `tcpCheck` could not connect. */
  tcp: 'CAP_ERR_RUNTIME_HEALTH_TCP',
  /** `dnsCheck` could not resolve the name. */
  dns: 'CAP_ERR_RUNTIME_HEALTH_DNS',
} as const;
/** One of {@link HealthErrorCode}'s values. */
export type HealthErrorCode = (typeof HealthErrorCode)[keyof typeof HealthErrorCode];

/** Every error raised by the health module. Messages never contain credentials from URLs. */
export class HealthError extends CapstanError {
  declare readonly code: HealthErrorCode;

  constructor(code: HealthErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}
