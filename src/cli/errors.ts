import { CapstanError } from '../runtime/index.ts';
import { ExitCode } from './exit-code.ts';

/** Codes of the `capstan` CLI; each carries the exit status the process ends with. */
export const CliErrorCode = {
  /** Wrong usage: an option value, a name or a file argument the command cannot use (exit 2). */
  usage: 'CAP_ERR_CLI_USAGE',
  /** Bad configuration or input data, as `loadConfigOrExit` reports it (exit 78, EX_CONFIG). */
  invalidInput: 'CAP_ERR_CLI_INVALID_INPUT',
  /** Stopped by Ctrl-C or SIGTERM before the command finished (exit 130). */
  interrupted: 'CAP_ERR_CLI_INTERRUPTED',
  /** The command failed for any other reason (exit 1). */
  failed: 'CAP_ERR_CLI_FAILED',
} as const;
/** One of {@link CliErrorCode}'s values. */
export type CliErrorCode = (typeof CliErrorCode)[keyof typeof CliErrorCode];

const exitCodeOf: Record<CliErrorCode, number> = {
  [CliErrorCode.usage]: ExitCode.usage,
  [CliErrorCode.invalidInput]: ExitCode.config,
  [CliErrorCode.interrupted]: ExitCode.interrupted,
  [CliErrorCode.failed]: ExitCode.failed,
};

/** Raised by a CLI command; the action runner prints its message and exits with {@link CliError.exitCode}. */
export class CliError extends CapstanError {
  declare readonly code: CliErrorCode;
  constructor(code: CliErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }

  /** The process exit status this error ends the CLI with. */
  get exitCode(): number {
    return exitCodeOf[this.code];
  }
}
