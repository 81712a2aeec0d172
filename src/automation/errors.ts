import { CapstanError } from '../runtime/index.ts';

/** Codes of the automation area; tests and callers branch on these. */
export const AutomationErrorCode = {
  /** A call that cannot work as asked: a concurrency below 1, a negative retry count or timeout. */
  invalid: 'CAP_ERR_AUTOMATION_INVALID',
  /** One attempt of a task ran past its per-item timeout (the task's signal was aborted). */
  timeout: 'CAP_ERR_AUTOMATION_TIMEOUT',
  /** The run was cancelled (its signal aborted) before this item finished; in-flight work was told to stop. */
  cancelled: 'CAP_ERR_AUTOMATION_CANCELLED',
  /** A shell command run by `sh` could not start or exited non-zero; the message has its status and stderr's tail. */
  commandFailed: 'CAP_ERR_AUTOMATION_COMMAND_FAILED',
  /** A capstanfile that cannot be used: not found, fails to load, no such target, a dependency cycle, bad arguments. */
  taskfile: 'CAP_ERR_AUTOMATION_TASKFILE',
  /** A target threw: the message names it and the chain of targets that led to it. */
  targetFailed: 'CAP_ERR_AUTOMATION_TARGET_FAILED',
  /** A single executable could not be built: the entry does not bundle (the message lists esbuild's errors) or Node could not make the blob. */
  build: 'CAP_ERR_AUTOMATION_BUILD',
} as const;
/** One of {@link AutomationErrorCode}'s values. */
export type AutomationErrorCode = (typeof AutomationErrorCode)[keyof typeof AutomationErrorCode];

/** Error raised by the automation area. */
export class AutomationError extends CapstanError {
  declare readonly code: AutomationErrorCode;

  constructor(code: AutomationErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}
