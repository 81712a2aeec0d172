import { CapstanError } from '../errors.ts';

/** Codes of runtime/process; one line of meaning each (docs/errors.md is generated from these comments). */
export const ProcessErrorCode = {
  /** A started program exited (or could not be spawned) before it was ready. */
  exited: 'CAP_ERR_RUNTIME_PROCESS_EXITED',
  /** A started program did not become ready within its timeout. */
  notReady: 'CAP_ERR_RUNTIME_PROCESS_NOT_READY',
  /** A command could not be spawned (missing binary, no permission). */
  spawn: 'CAP_ERR_RUNTIME_PROCESS_SPAWN',
  /** A command was stopped by its signal or its timeout. */
  aborted: 'CAP_ERR_RUNTIME_PROCESS_ABORTED',
  /** A command exited non-zero. */
  failed: 'CAP_ERR_RUNTIME_PROCESS_FAILED',
} as const;
/** One of {@link ProcessErrorCode}'s values. */
export type ProcessErrorCode = (typeof ProcessErrorCode)[keyof typeof ProcessErrorCode];

/** Raised by {@link startProcess} and {@link runCommand}; carries the tail of the program's output. */
export class ProcessError extends CapstanError {
  declare readonly code: ProcessErrorCode;
  /** What went wrong, without the log tail (the message has both). */
  readonly reason: string;
  /** Last lines of the program's own output, so a CI failure shows why it died. */
  readonly logTail: string;

  constructor(code: ProcessErrorCode, reason: string, logTail = '', options?: { cause?: unknown }) {
    super(code, logTail ? `${reason}\n--- process log (tail) ---\n${logTail}` : reason, options);
    this.reason = reason;
    this.logTail = logTail;
  }
}
