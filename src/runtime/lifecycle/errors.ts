import { CapstanError } from '../errors.ts';

/** Error codes raised by the lifecycle (graceful shutdown) module. */
export type LifecycleErrorCode =
  /** A server, job or hook was registered with bad arguments. */
  | 'CAP_ERR_LIFECYCLE_INVALID'
  /** Something was registered after shutdown had begun. */
  | 'CAP_ERR_LIFECYCLE_CLOSED'
  /** In-flight requests were still running at the drain deadline and were cut. */
  | 'CAP_ERR_LIFECYCLE_DRAIN_TIMEOUT'
  /** A background job did not finish within its deadline after its signal was aborted. */
  | 'CAP_ERR_LIFECYCLE_JOB_TIMEOUT'
  /** A background job rejected (before or during shutdown). */
  | 'CAP_ERR_LIFECYCLE_JOB_FAILED'
  /** A shutdown hook threw, rejected or passed its deadline. */
  | 'CAP_ERR_LIFECYCLE_HOOK_FAILED';

/** An error from the lifecycle module; `code` tells which step failed. */
export class LifecycleError extends CapstanError {
  declare readonly code: LifecycleErrorCode;

  constructor(code: LifecycleErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}
