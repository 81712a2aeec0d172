import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ProcessError, ProcessErrorCode } from './errors.ts';

/** What {@link startProcess} needs to run one long-lived program (a server, a daemon). */
export interface StartProcessOptions {
  /** Short name, used for the temp dir, the log file and in errors (`postgres`, `etcd`, ...). */
  name: string;
  command: string;
  args?: string[];
  env?: NodeJS.ProcessEnv;
  /** Working directory; defaults to the program's own temp dir. */
  cwd?: string;
  /** Resolves true once the program serves requests. Polled until it does or the timeout passes. */
  ready: () => Promise<boolean>;
  /** How long the program may take to become ready. Default 60 s. */
  readyTimeoutMs?: number;
  /** How long `stop()` waits after SIGTERM before SIGKILL. Default 10 s. */
  stopTimeoutMs?: number;
  /** An existing dir to use (and remove on stop) instead of a fresh temp dir. */
  dir?: string;
  /** Keep the dir on stop (for state a caller owns). */
  keepDir?: boolean;
}

/** A running program. `stop()` is idempotent and also runs on process exit, so nothing is orphaned. */
export interface RunningProcess {
  /** The name given in {@link StartProcessOptions}. */
  readonly name: string;
  /** Its process id (-1 when it could not be spawned). */
  readonly pid: number;
  /** Private scratch directory of this program (removed on stop unless `keepDir`). */
  readonly dir: string;
  /** File that receives the program's stdout and stderr. */
  readonly logPath: string;
  /** Last lines of the program's log, for error messages. */
  logTail(lines?: number): string;
  /** SIGTERM, then SIGKILL after `stopTimeoutMs`; resolves once it exited and its dir is gone. */
  stop(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

const running = new Set<{ child: ChildProcess; dir: string; keepDir: boolean }>();
const exitCleanups = new Set<() => void>();
let exitHookInstalled = false;

/**
 * Run `cleanup` (synchronously) on process exit, after every program started by {@link startProcess} was
 * killed: a folder shared by several programs must not be removed while they can still write to it.
 * Returns a function that unregisters it.
 */
export function onExitAfterProcesses(cleanup: () => void): () => void {
  installExitHook();
  exitCleanups.add(cleanup);
  return () => exitCleanups.delete(cleanup);
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Synchronous: 'exit' handlers cannot await. SIGKILL because nothing will wait for a drain.
  process.on('exit', () => {
    for (const entry of running) {
      try {
        entry.child.kill('SIGKILL');
      } catch {}
      if (!entry.keepDir) rmSync(entry.dir, { recursive: true, force: true });
    }
    for (const cleanup of exitCleanups) {
      try {
        cleanup();
      } catch {}
    }
  });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    // Only when nobody else handles the signal: then the default would skip 'exit' handlers.
    if (process.listenerCount(signal) === 0) {
      process.once(signal, () => {
        process.exit(signal === 'SIGINT' ? 130 : 143);
      });
    }
  }
}

/** The last `lines` lines of `text`: whole outputs can be megabytes, error messages want the end. */
export function tailLines(text: string, lines: number): string {
  return text.split('\n').slice(-lines).join('\n');
}

/** Read the last `lines` lines of a file, tolerating its absence. */
export function tailFile(path: string, lines = 60): string {
  try {
    return tailLines(readFileSync(path, 'utf8'), lines);
  } catch {
    return '';
  }
}

/** Make a private temp dir for a program: `<tmp>/capstan-<name>-XXXXXX`. */
export function makeProcessDir(name: string): string {
  return mkdtempSync(join(tmpdir(), `capstan-${name}-`));
}

/**
 * Start a program with its output captured to a log file, and wait until `ready()` says yes. If it exits
 * first (`CAP_ERR_RUNTIME_PROCESS_EXITED`) or never becomes ready (`CAP_ERR_RUNTIME_PROCESS_NOT_READY`),
 * it is stopped and the {@link ProcessError} carries the tail of its log.
 */
export async function startProcess(options: StartProcessOptions): Promise<RunningProcess> {
  installExitHook();
  const dir = options.dir ?? makeProcessDir(options.name);
  const logPath = join(dir, `${options.name}.log`);
  const logFd = openSync(logPath, 'a');
  const child = spawn(options.command, options.args ?? [], {
    cwd: options.cwd ?? dir,
    env: options.env ?? process.env,
    stdio: ['ignore', logFd, logFd],
  });
  closeSync(logFd);
  const entry = { child, dir, keepDir: options.keepDir ?? false };
  running.add(entry);

  let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  let spawnError: Error | undefined;
  const exitPromise = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exited = { code, signal };
      resolve();
    });
    child.once('error', (err) => {
      spawnError = err;
      exited = { code: -1, signal: null };
      resolve();
    });
  });

  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return exitPromise;
    stopped = true;
    if (!exited) {
      child.kill('SIGTERM');
      const killTimer = setTimeout(() => child.kill('SIGKILL'), options.stopTimeoutMs ?? 10_000);
      await exitPromise;
      clearTimeout(killTimer);
    }
    running.delete(entry);
    if (!entry.keepDir) rmSync(dir, { recursive: true, force: true });
  };
  const handle: RunningProcess = {
    name: options.name,
    pid: child.pid ?? -1,
    dir,
    logPath,
    logTail: (lines) => tailFile(logPath, lines),
    stop,
    [Symbol.asyncDispose]: stop,
  };

  const deadline = Date.now() + (options.readyTimeoutMs ?? 60_000);
  let lastError: unknown;
  while (Date.now() < deadline) {
    if (exited) {
      const tail = tailFile(logPath);
      await stop();
      throw new ProcessError(
        ProcessErrorCode.exited,
        `${options.name} (${options.command}) exited before it was ready: ` +
          (spawnError ? spawnError.message : `code ${exited.code}, signal ${exited.signal}`),
        tail,
        { cause: spawnError },
      );
    }
    try {
      if (await options.ready()) return handle;
    } catch (err) {
      lastError = err;
    }
    await sleep(100);
  }
  const tail = tailFile(logPath);
  await stop();
  throw new ProcessError(
    ProcessErrorCode.notReady,
    `${options.name} was not ready within ${options.readyTimeoutMs ?? 60_000} ms` +
      (lastError instanceof Error ? ` (last probe: ${lastError.message})` : ''),
    tail,
    { cause: lastError },
  );
}

/**
 * True while `pid` runs: it exists (signal 0 reaches it, or it belongs to another user) and it is not a
 * zombie (dead, waiting to be reaped).
 */
export function isProcessRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    // EPERM: it exists but belongs to someone else.
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    // The state letter follows the parenthesised command name.
    return !/\)\s+Z\s/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/**
 * Pids of every process on this machine whose command line (`/proc/<pid>/cmdline`) contains `text`: the
 * programs of a peer found by its private folder, or proof that a secret is on no command line.
 */
export function processesWithCommandLine(text: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(text)) pids.push(Number(entry));
    } catch {
      // Gone meanwhile.
    }
  }
  return pids;
}
