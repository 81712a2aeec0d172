import { CapstanError } from '../errors.ts';

/** Codes of the log module. */
export const LogErrorCode = {
  /** A logger was asked for something it cannot do (unknown level or format, unusable destination). */
  options: 'CAP_ERR_RUNTIME_LOG_OPTIONS',
  /** A log destination's reader stopped reading for longer than the stall limit; lines are dropped. */
  stalled: 'CAP_ERR_RUNTIME_LOG_STALLED',
} as const;
/** One of {@link LogErrorCode}'s values. */
export type LogErrorCode = (typeof LogErrorCode)[keyof typeof LogErrorCode];

/** An error of the log module: bad logger options, or a destination that stopped taking lines. */
export class LogError extends CapstanError {
  declare readonly code: LogErrorCode;

  constructor(code: LogErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}
