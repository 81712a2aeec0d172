import { CapstanError } from '../runtime/index.ts';

/** Codes of the automation area; tests and callers branch on these. */
export const AutomationErrorCode = {
  /** A call that cannot work as asked: a concurrency below 1, a negative retry count or timeout. */
  invalid: 'CAP_ERR_AUTOMATION_INVALID',
  /** One attempt of a task ran past its per-item timeout (the task's signal was aborted). */
  timeout: 'CAP_ERR_AUTOMATION_TIMEOUT',
  /** The run was cancelled (its signal aborted) before this item finished; in-flight work was told to stop. */
  cancelled: 'CAP_ERR_AUTOMATION_CANCELLED',
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
