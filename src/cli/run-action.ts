// The one place the CLI turns signals into an AbortSignal and errors into a message and an exit status,
// so commands only parse options, call their area and format what comes back.
import { constants } from 'node:os';
import { inspect } from 'node:util';
import { CapstanError, ConfigError, ConfigErrorCode } from '../runtime/index.ts';
import { CliError, CliErrorCode } from './errors.ts';
import { ExitCode } from './exit-code.ts';

/** What a command's action gets from {@link runAction}. */
export interface ActionContext {
  /** Aborted on the first SIGINT or SIGTERM; its reason is a {@link CliError} (`interrupted`). */
  readonly signal: AbortSignal;
  /** The signal that stopped the command, once one did (a shutdown reason for logs). */
  stoppedBy(): NodeJS.Signals | undefined;
}

/**
 * A command's work. Return an exit status to choose it; otherwise the runner exits 0, or 130 when a
 * signal stopped the command.
 */
// biome-ignore lint/suspicious/noConfusingVoidType: most actions return nothing (an async body without `return`).
export type Action = (ctx: ActionContext) => Promise<number | void> | number | void;

const STOP_SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM'];

/**
 * Whether to print stacks: `CAPSTAN_DEBUG` set to anything but `''`/`0`. Read when an error is reported,
 * at the CLI's edge, never by an area.
 */
function debugEnabled(): boolean {
  const value = process.env['CAPSTAN_DEBUG'];
  return value !== undefined && value !== '' && value !== '0';
}

/**
 * Print `err` on stderr the way every command does and return the exit status it maps to:
 * a {@link CliError} its own status; a configuration error (`ConfigError`, code `invalid`) its message as
 * `loadConfigOrExit` prints it, 78; any other {@link CapstanError} its message and code, 1; anything else
 * its message, 1. With `CAPSTAN_DEBUG=1` the stack (and causes) follow.
 */
export function reportError(command: string, err: unknown): number {
  let text: string;
  let status: number;
  if (err instanceof CliError) {
    text = `${command}: ${err.message}`;
    status = err.exitCode;
  } else if (err instanceof ConfigError && err.code === ConfigErrorCode.invalid) {
    // Already a full report (a head line and one line per problem); a prefix would split it.
    text = err.message;
    status = ExitCode.config;
  } else if (err instanceof CapstanError) {
    text = `${command}: ${err.message} (${err.code})`;
    status = ExitCode.failed;
  } else {
    text = `${command}: ${err instanceof Error ? err.message : String(err)}`;
    status = ExitCode.failed;
  }
  if (debugEnabled()) text += `\n${inspect(err)}`;
  process.stderr.write(`${text}\n`);
  return status;
}

/**
 * Run one command's action: SIGINT/SIGTERM abort `ctx.signal` (a second one exits at once with
 * 128 + its number), a thrown error becomes a message on stderr and its exit status (see
 * {@link reportError}), and `process.exitCode` is set once the action ends. An error thrown after a signal
 * is the stop itself, not a failure: it exits 130 quietly.
 */
export async function runAction(command: string, action: Action): Promise<void> {
  const controller = new AbortController();
  let stoppedBy: NodeJS.Signals | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stoppedBy !== undefined) {
      process.stderr.write(`${command}: second ${signal}: exiting now\n`);
      process.exit(128 + constants.signals[signal]);
    }
    stoppedBy = signal;
    controller.abort(new CliError(CliErrorCode.interrupted, `interrupted by ${signal}`));
  };
  for (const signal of STOP_SIGNALS) process.on(signal, onSignal);
  const ctx: ActionContext = {
    signal: controller.signal,
    stoppedBy: () => stoppedBy,
  };
  try {
    const status = await action(ctx);
    process.exitCode = status ?? (controller.signal.aborted ? ExitCode.interrupted : ExitCode.ok);
  } catch (err) {
    process.exitCode = controller.signal.aborted ? ExitCode.interrupted : reportError(command, err);
  } finally {
    for (const signal of STOP_SIGNALS) process.off(signal, onSignal);
  }
}
