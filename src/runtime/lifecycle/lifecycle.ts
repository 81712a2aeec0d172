import { Server as HttpServer } from 'node:http';
import type { Http2SecureServer, Http2Server } from 'node:http2';
import { Server as HttpsServer } from 'node:https';
import { Server as NetServer } from 'node:net';
import { deadline, within } from '../abort.ts';
import type { Drainer, ServerDrainReport, ServerKind } from './drainer.ts';
import { LifecycleError } from './errors.ts';
import { GrpcDrainer, type GrpcServerLike, isGrpcServer } from './grpc-drainer.ts';
import { HttpDrainer } from './http-drainer.ts';
import { Http2Drainer } from './http2-drainer.ts';

/**
 * Where the service stands. `stopping`: readiness should report 503 while endpoints propagate;
 * `draining`: listeners are closed and in-flight work finishes; `closing`: jobs and hooks run.
 */
export type LifecyclePhase = 'running' | 'stopping' | 'draining' | 'closing' | 'stopped';

/** Passed to {@link Lifecycle.onPhase} listeners. */
export interface PhaseEvent {
  phase: LifecyclePhase;
  /** Why shutdown began (`SIGTERM`, `SIGINT` or the reason given to `shutdown()`). */
  reason: string;
  /** Set on the `stopped` event: what shutdown did (log it; the process exits right after). */
  report?: ShutdownReport;
}

/** Exit codes used by {@link Lifecycle.handleSignals}. */
export const ShutdownExitCode = {
  /** Everything drained, jobs finished, hooks ran. */
  ok: 0,
  /** Shutdown finished but something passed its deadline or failed (see the report's `errors`). */
  incomplete: 1,
  /** A second SIGINT forced an immediate exit (128 + 2). */
  forcedSigint: 130,
  /** A second SIGTERM forced an immediate exit (128 + 15). */
  forcedSigterm: 143,
} as const;

/** Minimal logging hook; pino users can pass `(level, msg, fields) => logger[level](fields, msg)`. */
export type LifecycleLog = (
  level: 'info' | 'warn' | 'error',
  msg: string,
  fields?: Record<string, unknown>,
) => void;

/** Options of {@link Lifecycle}. All durations are in milliseconds. */
export interface LifecycleOptions {
  /**
   * Wait between `stopping` (readiness 503) and closing listeners, so load balancers and Kubernetes
   * endpoints stop sending new traffic first (a preStop sleep). Default 5000; use 0 in tests.
   */
  drainDelayMs?: number;
  /** How long in-flight requests may run after listeners close before they are cut. Default 20000. */
  drainTimeoutMs?: number;
  /**
   * How long an idle HTTP/1.1 keep-alive connection is kept after listeners close, so a client that is
   * sending its next request right now gets an answer (with `Connection: close`) rather than a reset.
   * Default 1000.
   */
  idleGraceMs?: number;
  /** How long background jobs get to finish after their signal is aborted. Default 10000. */
  jobTimeoutMs?: number;
  /** Deadline of each shutdown hook (and of phase listeners). Default 5000. */
  hookTimeoutMs?: number;
  log?: LifecycleLog;
}

/** Options of {@link Lifecycle.addServer}. */
export interface AddServerOptions {
  /** Name used in logs and the report. Default `<kind>-<n>`. */
  name?: string;
}

/** Outcome of one background job or hook. */
export interface TaskReport {
  name: string;
  outcome: 'done' | 'failed' | 'timeout';
  error?: LifecycleError;
}

/** What {@link Lifecycle.shutdown} did. */
export interface ShutdownReport {
  reason: string;
  /** 0 when clean, 1 ({@link ShutdownExitCode.incomplete}) when any deadline passed or a task failed. */
  exitCode: number;
  servers: ServerDrainReport[];
  jobs: TaskReport[];
  hooks: TaskReport[];
  /** Every failure, in the order met; codes are `CAP_ERR_RUNTIME_LIFECYCLE_*`. */
  errors: LifecycleError[];
}

/** Options of {@link Lifecycle.handleSignals}. */
export interface HandleSignalsOptions {
  /** Default `['SIGTERM', 'SIGINT']`. */
  signals?: NodeJS.Signals[];
  /** Call `process.exit(report.exitCode)` once shutdown ends. Default true. */
  exit?: boolean;
}

type ServerLike = HttpServer | HttpsServer | Http2Server | Http2SecureServer | GrpcServerLike;

interface Job {
  name: string;
  promise: Promise<TaskReport>;
  settled: TaskReport | undefined;
}

function checkMs(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new LifecycleError(
      'CAP_ERR_RUNTIME_LIFECYCLE_INVALID',
      `${name} must be a finite number >= 0, got ${value}`,
    );
  }
  return value;
}

function checkName(what: string, name: unknown): string {
  if (typeof name !== 'string' || name.length === 0) {
    throw new LifecycleError('CAP_ERR_RUNTIME_LIFECYCLE_INVALID', `${what} needs a non-empty name`);
  }
  return name;
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    (typeof value === 'object' || typeof value === 'function') &&
    value !== null &&
    typeof (value as PromiseLike<unknown>).then === 'function'
  );
}

/** node:http2 does not export its server classes; only they have `updateSettings`. */
function isHttp2Server(server: unknown): server is Http2Server | Http2SecureServer {
  return server instanceof NetServer && typeof (server as Http2Server).updateSettings === 'function';
}

/**
 * Owns a service's servers, background jobs and shutdown hooks, and stops them in the order that loses
 * no request: readiness 503 (`stopping` listeners) → propagation delay → close listeners, send
 * `Connection: close` / GOAWAY → close idle keep-alive sockets after a grace period → drain in-flight
 * requests with a deadline → abort and await jobs → run hooks in reverse registration order.
 *
 * @example
 * ```ts
 * const lifecycle = new Lifecycle({ drainDelayMs: 5000 });
 * lifecycle.addServer(server);
 * lifecycle.onPhase(({ phase }) => { if (phase === 'stopping') health.markStopping(); });
 * lifecycle.onShutdown('flush logs', () => logger.flush());
 * lifecycle.handleSignals();
 * ```
 */
export class Lifecycle {
  readonly #drainDelayMs: number;
  readonly #drainTimeoutMs: number;
  readonly #idleGraceMs: number;
  readonly #jobTimeoutMs: number;
  readonly #hookTimeoutMs: number;
  readonly #log: LifecycleLog;
  readonly #drainers: Drainer[] = [];
  readonly #servers = new WeakSet<object>();
  readonly #jobs: Job[] = [];
  readonly #hooks: Array<{ name: string; fn: (signal: AbortSignal) => unknown }> = [];
  readonly #phaseListeners = new Set<(event: PhaseEvent) => unknown>();
  /** Aborted when shutdown begins: for code that must stop taking new work right away. */
  readonly #stopping = new AbortController();
  /** Aborted by a `shutdown()` caller's signal: every remaining wait ends at once. */
  readonly #hurry = new AbortController();
  /** Aborted after the servers drained: the signal background jobs receive. */
  readonly #jobsController = new AbortController();
  #phase: LifecyclePhase = 'running';
  #shutdown: Promise<ShutdownReport> | undefined;
  #signalCleanup: (() => void) | undefined;

  constructor(options: LifecycleOptions = {}) {
    this.#drainDelayMs = checkMs('drainDelayMs', options.drainDelayMs, 5000);
    this.#drainTimeoutMs = checkMs('drainTimeoutMs', options.drainTimeoutMs, 20_000);
    this.#idleGraceMs = checkMs('idleGraceMs', options.idleGraceMs, 1000);
    this.#jobTimeoutMs = checkMs('jobTimeoutMs', options.jobTimeoutMs, 10_000);
    this.#hookTimeoutMs = checkMs('hookTimeoutMs', options.hookTimeoutMs, 5000);
    this.#log = options.log ?? (() => {});
  }

  /** Current phase. */
  get phase(): LifecyclePhase {
    return this.#phase;
  }

  /** Aborted as soon as shutdown begins (phase `stopping`), with the reason as its `reason`. */
  get signal(): AbortSignal {
    return this.#stopping.signal;
  }

  #assertRunning(what: string): void {
    if (this.#phase !== 'running') {
      throw new LifecycleError('CAP_ERR_RUNTIME_LIFECYCLE_CLOSED', `cannot add ${what}: shutdown has begun`);
    }
  }

  /**
   * Track a server: `http.Server`, `https.Server`, `http2.createServer()`/`createSecureServer()` or a
   * `@grpc/grpc-js` Server. Register it before it accepts connections so every socket is tracked.
   */
  addServer(server: ServerLike, options: AddServerOptions = {}): this {
    this.#assertRunning('a server');
    if (this.#servers.has(server)) {
      throw new LifecycleError('CAP_ERR_RUNTIME_LIFECYCLE_INVALID', 'this server is already registered');
    }
    const n = this.#drainers.length + 1;
    const named = (kind: ServerKind) => options.name ?? `${kind}-${n}`;
    let drainer: Drainer;
    if (isHttp2Server(server)) {
      drainer = new Http2Drainer(server, named('http2'));
    } else if (server instanceof HttpsServer) {
      drainer = new HttpDrainer(server, named('https'), true);
    } else if (server instanceof HttpServer) {
      drainer = new HttpDrainer(server, named('http'), false);
    } else if (isGrpcServer(server)) {
      drainer = new GrpcDrainer(server, named('grpc'));
    } else {
      throw new LifecycleError(
        'CAP_ERR_RUNTIME_LIFECYCLE_INVALID',
        'addServer expects an http, https or http2 server or a @grpc/grpc-js Server',
      );
    }
    if (!isGrpcServer(server) && (server as NetServer).listening) {
      // Connections accepted before now are unknown to the drainer: they are not drained, only dropped at exit.
      this.#log('warn', `server "${drainer.name}" was registered after it started listening`, {
        server: drainer.name,
      });
    }
    this.#servers.add(server);
    this.#drainers.push(drainer);
    return this;
  }

  /**
   * Start a background job now. Its signal is aborted once the servers have drained (so jobs can still
   * serve the last requests); it then has `jobTimeoutMs` to settle. A job that rejects is reported.
   */
  addJob(name: string, run: (signal: AbortSignal) => Promise<void>): this {
    checkName('a job', name);
    if (typeof run !== 'function') {
      throw new LifecycleError('CAP_ERR_RUNTIME_LIFECYCLE_INVALID', `job "${name}" needs a function`);
    }
    this.#assertRunning(`job "${name}"`);
    const job: Job = { name, promise: Promise.resolve(undefined as never), settled: undefined };
    job.promise = (async (): Promise<TaskReport> => {
      try {
        await run(this.#jobsController.signal);
        job.settled = { name, outcome: 'done' };
      } catch (cause) {
        // A rejection caused by our own abort (its reason, or an AbortError from an API given the
        // signal, e.g. timers/promises) is the job's normal way to stop.
        const signal = this.#jobsController.signal;
        if (
          signal.aborted &&
          (cause === signal.reason || (cause instanceof Error && cause.name === 'AbortError'))
        ) {
          job.settled = { name, outcome: 'done' };
        } else {
          const error = new LifecycleError('CAP_ERR_RUNTIME_LIFECYCLE_JOB_FAILED', `job "${name}" failed`, {
            cause,
          });
          this.#log('error', error.message, { job: name, err: cause });
          job.settled = { name, outcome: 'failed', error };
        }
      }
      return job.settled;
    })();
    this.#jobs.push(job);
    return this;
  }

  /**
   * Register a shutdown hook. Hooks run after jobs, in reverse registration order (register the log
   * flush first so it runs last); each gets a signal aborted at `hookTimeoutMs`.
   */
  onShutdown(name: string, fn: (signal: AbortSignal) => unknown): this {
    checkName('a shutdown hook', name);
    if (typeof fn !== 'function') {
      throw new LifecycleError(
        'CAP_ERR_RUNTIME_LIFECYCLE_INVALID',
        `shutdown hook "${name}" needs a function`,
      );
    }
    this.#assertRunning(`shutdown hook "${name}"`);
    this.#hooks.push({ name, fn });
    return this;
  }

  /**
   * Call `listener` on each phase change. The `stopping` call is where readiness flips to 503. A
   * listener may return a promise; shutdown waits for it up to `hookTimeoutMs`. Returns an unsubscribe.
   */
  onPhase(listener: (event: PhaseEvent) => unknown): () => void {
    this.#phaseListeners.add(listener);
    return () => this.#phaseListeners.delete(listener);
  }

  async #setPhase(phase: LifecyclePhase, reason: string, report?: ShutdownReport): Promise<void> {
    this.#phase = phase;
    this.#log('info', `lifecycle ${phase}`, { phase, reason });
    const pending: Promise<unknown>[] = [];
    const event: PhaseEvent = report ? { phase, reason, report } : { phase, reason };
    for (const listener of this.#phaseListeners) {
      try {
        const result = listener(event);
        if (isThenable(result)) pending.push(Promise.resolve(result).catch(() => {}));
      } catch (err) {
        this.#log('warn', 'phase listener threw', { phase, err });
      }
    }
    if (pending.length > 0) await within(this.#hookTimeoutMs, Promise.all(pending), this.#hurry.signal);
  }

  /**
   * Shut down gracefully. Idempotent: later calls return the same report. Does not exit the process
   * (see {@link handleSignals}). Aborting `signal` hurries the shutdown: the drain delay ends, servers
   * are force-closed, jobs and hooks are no longer waited for (each reported as timed out).
   */
  shutdown(reason = 'shutdown', options: { signal?: AbortSignal } = {}): Promise<ShutdownReport> {
    const { signal } = options;
    if (signal) {
      if (signal.aborted) this.#hurry.abort();
      else signal.addEventListener('abort', () => this.#hurry.abort(), { once: true });
    }
    this.#shutdown ??= this.#run(reason);
    return this.#shutdown;
  }

  async #run(reason: string): Promise<ShutdownReport> {
    const errors: LifecycleError[] = [];
    this.#stopping.abort(reason);
    await this.#setPhase('stopping', reason);
    if (this.#drainDelayMs > 0) await within(this.#drainDelayMs, new Promise(() => {}), this.#hurry.signal);

    await this.#setPhase('draining', reason);
    await Promise.all(this.#drainers.map((d) => d.beginDrain(this.#idleGraceMs)));
    const pendingDrainers = new Set(this.#drainers);
    await within(
      this.#drainTimeoutMs,
      Promise.all(this.#drainers.map((d) => d.drained.then(() => pendingDrainers.delete(d)))),
      this.#hurry.signal,
    );
    for (const drainer of pendingDrainers) {
      await drainer.forceClose();
      const { cut } = drainer.report();
      const error = new LifecycleError(
        'CAP_ERR_RUNTIME_LIFECYCLE_DRAIN_TIMEOUT',
        `server "${drainer.name}" did not drain within ${this.#drainTimeoutMs} ms; ` +
          (cut === null ? 'remaining calls were cancelled' : `${cut} request(s) cut`),
      );
      this.#log('warn', error.message, { server: drainer.name, cut });
      errors.push(error);
    }

    await this.#setPhase('closing', reason);
    this.#jobsController.abort(
      new LifecycleError('CAP_ERR_RUNTIME_LIFECYCLE_CLOSED', `shutting down: ${reason}`),
    );
    await within(this.#jobTimeoutMs, Promise.all(this.#jobs.map((j) => j.promise)), this.#hurry.signal);
    const jobs: TaskReport[] = this.#jobs.map((job) => {
      if (job.settled) return job.settled;
      const error = new LifecycleError(
        'CAP_ERR_RUNTIME_LIFECYCLE_JOB_TIMEOUT',
        `job "${job.name}" did not stop within ${this.#jobTimeoutMs} ms of its signal being aborted`,
      );
      this.#log('warn', error.message, { job: job.name });
      return { name: job.name, outcome: 'timeout', error };
    });
    for (const job of jobs) if (job.error) errors.push(job.error);

    const hooks: TaskReport[] = [];
    for (const hook of [...this.#hooks].reverse()) {
      const report = await this.#runHook(hook.name, hook.fn);
      if (report.error) errors.push(report.error);
      hooks.push(report);
    }

    const report: ShutdownReport = {
      reason,
      exitCode: errors.length === 0 ? ShutdownExitCode.ok : ShutdownExitCode.incomplete,
      servers: this.#drainers.map((d) => d.report()),
      jobs,
      hooks,
      errors,
    };
    await this.#setPhase('stopped', reason, report);
    this.#signalCleanup?.();
    return report;
  }

  async #runHook(name: string, fn: (signal: AbortSignal) => unknown): Promise<TaskReport> {
    // `hurry` (the shutdown caller's signal) turns the hook's remaining time into its deadline.
    const limit = deadline(this.#hookTimeoutMs, { hurry: this.#hurry.signal });
    try {
      // Called synchronously: a sync hook (a log flush) always completes, even when hurried.
      const result = fn(limit.signal);
      const finished =
        !isThenable(result) ||
        (await Promise.race([Promise.resolve(result).then(() => true), limit.reached.then(() => false)]));
      if (!finished) {
        const error = new LifecycleError(
          'CAP_ERR_RUNTIME_LIFECYCLE_HOOK_FAILED',
          `shutdown hook "${name}" did not finish within ${this.#hookTimeoutMs} ms`,
        );
        this.#log('warn', error.message, { hook: name });
        return { name, outcome: 'timeout', error };
      }
      return { name, outcome: 'done' };
    } catch (cause) {
      const error = new LifecycleError(
        'CAP_ERR_RUNTIME_LIFECYCLE_HOOK_FAILED',
        `shutdown hook "${name}" failed`,
        {
          cause,
        },
      );
      this.#log('error', error.message, { hook: name, err: cause });
      return { name, outcome: 'failed', error };
    } finally {
      limit.clear();
    }
  }

  /**
   * Shut down on SIGTERM / SIGINT and then `process.exit(report.exitCode)`. A second signal during
   * shutdown exits at once with 128 + signal number (143 for SIGTERM, 130 for SIGINT). Returns a
   * function that removes the handlers.
   */
  handleSignals(options: HandleSignalsOptions = {}): () => void {
    this.#signalCleanup?.();
    const signals = options.signals ?? ['SIGTERM', 'SIGINT'];
    const exit = options.exit ?? true;
    const handler = (signal: NodeJS.Signals) => {
      if (this.#shutdown) {
        const code = signal === 'SIGINT' ? ShutdownExitCode.forcedSigint : ShutdownExitCode.forcedSigterm;
        this.#log('warn', `second ${signal} during shutdown: exiting now`, { signal, code });
        process.exit(code);
      }
      void this.shutdown(signal).then((report) => {
        if (exit) process.exit(report.exitCode);
      });
    };
    for (const signal of signals) process.on(signal, handler);
    const cleanup = () => {
      for (const signal of signals) process.off(signal, handler);
      if (this.#signalCleanup === cleanup) this.#signalCleanup = undefined;
    };
    this.#signalCleanup = cleanup;
    return cleanup;
  }

  /** Shut down without exiting (for tests and embedding). Same as `await shutdown('close')`. */
  async close(): Promise<void> {
    await this.shutdown('close');
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
