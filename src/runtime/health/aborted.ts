import { HealthError } from './errors.ts';

/**
 * The health area's error for an abort whose reason is not an Error (`abort('why')`): passed as `wrap` to the
 * runtime's `abortReason`/`raceAbort`, so a check aborted that way still fails with a message and a code.
 */
export function healthAbortError(reason: unknown): HealthError {
  return new HealthError('CAP_ERR_RUNTIME_HEALTH_ABORTED', `aborted: ${String(reason)}`);
}
