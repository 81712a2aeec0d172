import { spawn } from 'node:child_process';
import { PeerError } from '../../runtime/errors.ts';

/** Options shared by the CLI peer runners (`runHelm`, `runTofu`, `runAnsible`). */
export interface RunCommandOptions {
  /** Working directory of the command. */
  cwd?: string;
  /** Extra environment variables, laid over the runner's isolated defaults. */
  env?: NodeJS.ProcessEnv;
  /** Bytes written to the command's stdin (stdin is closed either way). */
  input?: string;
  /** Aborts the command (SIGTERM, then SIGKILL after 5 s). */
  signal?: AbortSignal;
  /** Deadline for the command. Default 120 s: a peer CLI that hangs must not hang the test run. */
  timeoutMs?: number;
  /** Resolve with a non-zero exit code instead of throwing `CAP_ERR_PEER_COMMAND_FAILED`. */
  allowFailure?: boolean;
}

/** What a peer CLI printed and how it exited. */
export interface CommandResult {
  /** Exit code; -1 when the command was killed by a signal. */
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Keep the last lines of a stream for error messages; whole outputs can be megabytes. */
function tail(text: string, lines = 40): string {
  return text.split('\n').slice(-lines).join('\n');
}

/**
 * Run one peer CLI to completion, collecting stdout and stderr. Throws a {@link PeerError} with the
 * output tail when it cannot start (`CAP_ERR_PEER_COMMAND_SPAWN`), times out or is aborted
 * (`CAP_ERR_PEER_COMMAND_ABORTED`), or exits non-zero (`CAP_ERR_PEER_COMMAND_FAILED`, unless
 * `allowFailure`).
 */
export async function runPeerCommand(
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
  });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on('data', (b: Buffer) => out.push(b));
  child.stderr.on('data', (b: Buffer) => err.push(b));
  // A command that exits before reading its stdin makes the write fail with EPIPE; that is not an error.
  child.stdin.on('error', () => {});
  child.stdin.end(options.input ?? '');

  let killTimer: NodeJS.Timeout | undefined;
  const onAbort = () => {
    child.kill('SIGTERM');
    killTimer = setTimeout(() => child.kill('SIGKILL'), 5_000);
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
    throw new PeerError(
      'CAP_ERR_PEER_COMMAND_SPAWN',
      `${name}: cannot run ${shown}: ${outcome.error.message}`,
      '',
      {
        cause: outcome.error,
      },
    );
  }
  if (signal.aborted) {
    throw new PeerError(
      'CAP_ERR_PEER_COMMAND_ABORTED',
      `${name}: ${shown} was stopped (${options.signal?.aborted ? 'aborted' : 'timed out'})`,
      tail(`${stdout}\n${stderr}`),
      { cause: signal.reason },
    );
  }
  const code = outcome.code ?? -1;
  if (code !== 0 && !options.allowFailure) {
    throw new PeerError(
      'CAP_ERR_PEER_COMMAND_FAILED',
      `${name}: ${shown} exited with ${outcome.sig ?? code}`,
      tail(`${stdout}\n${stderr}`),
    );
  }
  return { code, stdout, stderr };
}
