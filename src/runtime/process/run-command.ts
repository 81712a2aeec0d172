import { spawn } from 'node:child_process';
import { ProcessError, ProcessErrorCode } from './errors.ts';
import { tailLines } from './process.ts';

/** Options of {@link runCommand}, shared by the CLI tool runners (`runHelm`, `runTofu`, `runAnsible`). */
export interface RunCommandOptions {
  /** Working directory of the command. */
  cwd?: string;
  /** Extra environment variables, laid over the runner's isolated defaults. */
  env?: NodeJS.ProcessEnv;
  /** Bytes written to the command's stdin (stdin is closed either way). */
  input?: string;
  /** Aborts the command (SIGTERM, then SIGKILL after 5 s). */
  signal?: AbortSignal;
  /** Deadline for the command. Default 120 s: a CLI that hangs must not hang its caller. */
  timeoutMs?: number;
  /** Resolve with a non-zero exit code instead of throwing `CAP_ERR_RUNTIME_PROCESS_FAILED`. */
  allowFailure?: boolean;
  /**
   * Run the command in a process group of its own and signal the whole group on abort or timeout: what a
   * shell line starts (`sh -c 'build; test'`) stops with it, instead of living on and holding the output
   * pipes open. Such a command does not get the terminal's Ctrl-C itself: only through `signal`.
   */
  processGroup?: boolean;
  /** Sees each chunk of output as it comes (to show it live); it is collected all the same. */
  onOutput?: (stream: 'stdout' | 'stderr', chunk: Buffer) => void;
}

/** What a command printed and how it exited. */
export interface CommandResult {
  /** Exit code; -1 when the command was killed by a signal. */
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

const TAIL_LINES = 40;

/**
 * Run one command to completion, collecting stdout and stderr. `name` prefixes error messages. Throws a
 * {@link ProcessError} with the output tail when it cannot start (`CAP_ERR_RUNTIME_PROCESS_SPAWN`), times
 * out or is aborted (`CAP_ERR_RUNTIME_PROCESS_ABORTED`), or exits non-zero
 * (`CAP_ERR_RUNTIME_PROCESS_FAILED`, unless `allowFailure`).
 */
export async function runCommand(
  name: string,
  command: string,
  args: readonly string[],
  options: RunCommandOptions & { env: NodeJS.ProcessEnv },
): Promise<CommandResult> {
  options.signal?.throwIfAborted();
  const timeout = AbortSignal.timeout(options.timeoutMs ?? 120_000);
  const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: options.env,
    stdio: ['pipe', 'pipe', 'pipe'],
    detached: options.processGroup === true,
  });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const { onOutput } = options;
  child.stdout.on('data', (b: Buffer) => {
    out.push(b);
    onOutput?.('stdout', b);
  });
  child.stderr.on('data', (b: Buffer) => {
    err.push(b);
    onOutput?.('stderr', b);
  });
  // A command that exits before reading its stdin makes the write fail with EPIPE; that is not an error.
  child.stdin.on('error', () => {});
  child.stdin.end(options.input ?? '');

  let killTimer: NodeJS.Timeout | undefined;
  const kill = (sig: NodeJS.Signals) => {
    if (options.processGroup && child.pid !== undefined) {
      try {
        process.kill(-child.pid, sig);
        return;
      } catch {
        // The group is gone already; the child itself may not be.
      }
    }
    child.kill(sig);
  };
  const onAbort = () => {
    kill('SIGTERM');
    killTimer = setTimeout(() => kill('SIGKILL'), 5_000);
  };
  signal.addEventListener('abort', onAbort, { once: true });

  const outcome = await new Promise<{ code: number | null; sig: NodeJS.Signals | null; error?: Error }>(
    (resolve) => {
      child.once('error', (error) => resolve({ code: null, sig: null, error }));
      child.once('close', (code, sig) => resolve({ code, sig }));
    },
  );
  signal.removeEventListener('abort', onAbort);
  clearTimeout(killTimer);

  const stdout = Buffer.concat(out).toString('utf8');
  const stderr = Buffer.concat(err).toString('utf8');
  const shown = `${command} ${args.join(' ')}`;
  if (outcome.error) {
    throw new ProcessError(
      ProcessErrorCode.spawn,
      `${name}: cannot run ${shown}: ${outcome.error.message}`,
      '',
      {
        cause: outcome.error,
      },
    );
  }
  if (signal.aborted) {
    throw new ProcessError(
      ProcessErrorCode.aborted,
      `${name}: ${shown} was stopped (${options.signal?.aborted ? 'aborted' : 'timed out'})`,
      tailLines(`${stdout}\n${stderr}`, TAIL_LINES),
      { cause: signal.reason },
    );
  }
  const code = outcome.code ?? -1;
  if (code !== 0 && !options.allowFailure) {
    throw new ProcessError(
      ProcessErrorCode.failed,
      `${name}: ${shown} exited with ${outcome.sig ?? code}`,
      tailLines(`${stdout}\n${stderr}`, TAIL_LINES),
    );
  }
  return { code, stdout, stderr };
}
