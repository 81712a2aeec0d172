import { CapstanError } from '../errors.ts';

/** Codes of the lifecycle (graceful shutdown) module. */
export const LifecycleErrorCode = {
  /** A server, job or hook was registered with bad arguments. */
  invalid: 'CAP_ERR_RUNTIME_LIFECYCLE_INVALID',
  /** Something was registered after shutdown had begun. */
  closed: 'CAP_ERR_RUNTIME_LIFECYCLE_CLOSED',
  /** In-flight requests were still running at the drain deadline and were cut. */
  drainTimeout: 'CAP_ERR_RUNTIME_LIFECYCLE_DRAIN_TIMEOUT',
  /** A background job did not finish within its deadline after its signal was aborted. */
  jobTimeout: 'CAP_ERR_RUNTIME_LIFECYCLE_JOB_TIMEOUT',
  /** A background job rejected (before or during shutdown). */
  jobFailed: 'CAP_ERR_RUNTIME_LIFECYCLE_JOB_FAILED',
  /** A shutdown hook threw, rejected or passed its deadline. */
  hookFailed: 'CAP_ERR_RUNTIME_LIFECYCLE_HOOK_FAILED',
} as const;
/** One of {@link LifecycleErrorCode}'s values. */
export type LifecycleErrorCode = (typeof LifecycleErrorCode)[keyof typeof LifecycleErrorCode];

/** An error from the lifecycle module; `code` tells which step failed. */
export class LifecycleError extends CapstanError {
  declare readonly code: LifecycleErrorCode;

  constructor(code: LifecycleErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}
