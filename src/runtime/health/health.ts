import { abortReason, deadline, raceAbort } from '../abort.ts';
import { healthAbortError } from './aborted.ts';
import { HealthError } from './errors.ts';
import { EventLoopMonitor } from './event-loop.ts';
import { type HealthRequest, type HealthResponse, handleHealthRequest } from './http.ts';
import type {
  CheckFunction,
  CheckOptions,
  CheckResult,
  CheckState,
  HealthChange,
  HealthOptions,
  HealthPhase,
  HealthReport,
  HealthVerdict,
  ProbeKind,
} from './types.ts';

interface Entry {
  readonly name: string;
  readonly check: CheckFunction;
  readonly timeoutMs: number;
  readonly intervalMs: number;
  readonly failureThreshold: number;
  readonly state: CheckState;
  timer: NodeJS.Timeout | undefined;
  /** The current run as the registry sees it (always settles by its timeout). */
  run: Promise<CheckState> | undefined;
  /** The check's own promise, when a run timed out and the check ignored its signal. */
  straggler: Promise<unknown> | undefined;
  removed: boolean;
}

/** How one run ended, before it is folded into the check's state. */
type Outcome =
  | { ok: true; latencyMs: number; detail: string | null }
  | { ok: false; latencyMs: number | null; error: unknown };

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const MAX_TIMER_MS = 2 ** 31 - 1;

function positive(value: number | undefined, fallback: number, what: string, name: string): number {
  const v = value ?? fallback;
  // Node turns a timer delay above 2^31-1 ms into 1 ms: a typo'd interval would become a busy loop.
  if (!Number.isFinite(v) || v <= 0 || v > MAX_TIMER_MS) {
    throw new HealthError(
      'CAP_ERR_RUNTIME_HEALTH_INVALID',
      `check "${name}": ${what} must be > 0 and <= ${MAX_TIMER_MS}, got ${v}`,
    );
  }
  return v;
}

function describe(err: unknown): { message: string; code: string | null } {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return { message: err.message || err.name, code: typeof code === 'string' ? code : null };
  }
  return { message: `non-error thrown: ${String(err)}`, code: 'CAP_ERR_RUNTIME_HEALTH_FAILED' };
}

/**
 * Health registry in the Kubernetes style. Checks run in the background, each on its own interval and
 * with its own timeout; probes only read the cached results, so answering `/readyz` never waits on a
 * slow dependency. Mount it on any http or http2 server with {@link Health.handle}.
 *
 * @example
 * ```ts
 * const health = new Health();
 * health.register({ name: 'db', check: postgresCheck(process.env.DATABASE_URL!), timeoutMs: 2_000 });
 * http.createServer((req, res) => { if (!health.handle(req, res)) app(req, res); });
 * health.markReady();
 * ```
 */
export class Health {
  readonly basePath: string;
  readonly exposeCheckErrors: boolean;
  #phase: HealthPhase;
  #entries = new Map<string, Entry>();
  #loop: EventLoopMonitor | undefined;
  #closed = new AbortController();
  #listeners = new Set<(change: HealthChange) => unknown>();

  constructor(options: HealthOptions = {}) {
    const base = (options.basePath ?? '').replace(/\/+$/, '');
    this.basePath = base === '' || base.startsWith('/') ? base : `/${base}`;
    this.exposeCheckErrors = options.exposeCheckErrors ?? false;
    this.#phase = options.phase ?? 'starting';
    if (options.eventLoop !== false) this.#loop = new EventLoopMonitor(options.eventLoop ?? {});
  }

  /** Current phase. */
  get phase(): HealthPhase {
    return this.#phase;
  }

  /**
   * Move to another phase. `stopping` is final: once shutdown began, nothing may report ready again
   * (lightship's `signalNotReady()` ignored during shutdown is the bug this avoids). Returns whether
   * the phase changed.
   */
  setPhase(phase: HealthPhase): boolean {
    if (this.#phase === phase || this.#phase === 'stopping') return false;
    const from = this.#phase;
    this.#phase = phase;
    this.#emit({ type: 'phase', from, to: phase });
    return true;
  }

  /**
   * Be told when a check's status changes (pending → ok, ok → failing, ...) or the phase changes: the
   * place to log transitions, not every run. A throwing listener is ignored. Returns an unsubscribe.
   */
  onChange(listener: (change: HealthChange) => unknown): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  #emit(change: HealthChange): void {
    for (const listener of this.#listeners) {
      try {
        const r = listener(change);
        if (r instanceof Promise) r.catch(() => {});
      } catch {
        // A broken logger must not stop health checking.
      }
    }
  }

  /** The service can take traffic: readiness now follows the checks. */
  markReady(): boolean {
    return this.setPhase('serving');
  }

  /** Shutdown began: readiness answers 503 from now on, whatever the checks say. */
  markStopping(): boolean {
    return this.setPhase('stopping');
  }

  /**
   * Add a check. Its first run starts at once; until it completes the check is `pending`.
   * Returns a function that removes it.
   */
  register(options: CheckOptions): () => void {
    if (this.#closed.signal.aborted) {
      throw new HealthError('CAP_ERR_RUNTIME_HEALTH_CLOSED', 'health registry is closed');
    }
    const name = options.name;
    if (typeof name !== 'string' || !NAME.test(name) || name === 'eventloop') {
      throw new HealthError(
        'CAP_ERR_RUNTIME_HEALTH_INVALID',
        `invalid check name ${JSON.stringify(name)}: use 1-63 letters, digits, ".", "_" or "-" ("eventloop" is reserved)`,
      );
    }
    if (typeof options.check !== 'function') {
      throw new HealthError('CAP_ERR_RUNTIME_HEALTH_INVALID', `check "${name}": check must be a function`);
    }
    const kind = options.kind ?? 'readiness';
    if (kind !== 'readiness' && kind !== 'liveness' && kind !== 'both') {
      throw new HealthError(
        'CAP_ERR_RUNTIME_HEALTH_INVALID',
        `check "${name}": unknown kind ${String(kind)}`,
      );
    }
    if (this.#entries.has(name)) {
      throw new HealthError('CAP_ERR_RUNTIME_HEALTH_DUPLICATE', `check "${name}" is already registered`);
    }
    const entry: Entry = {
      name,
      check: options.check,
      timeoutMs: positive(options.timeoutMs, 5_000, 'timeoutMs', name),
      intervalMs: positive(options.intervalMs, 10_000, 'intervalMs', name),
      failureThreshold: Math.floor(positive(options.failureThreshold, 1, 'failureThreshold', name)),
      state: {
        name,
        kind,
        critical: options.critical ?? true,
        status: 'pending',
        latencyMs: null,
        lastRun: null,
        lastSuccess: null,
        lastError: null,
        lastErrorCode: null,
        lastFailure: null,
        detail: null,
        consecutiveFailures: 0,
        runs: 0,
      },
      timer: undefined,
      run: undefined,
      straggler: undefined,
      removed: false,
    };
    this.#entries.set(name, entry);
    void this.#start(entry);
    return () => {
      this.unregister(name);
    };
  }

  /** Remove a check (its in-flight run is aborted). Returns whether it existed. */
  unregister(name: string): boolean {
    const entry = this.#entries.get(name);
    if (!entry) return false;
    entry.removed = true;
    clearTimeout(entry.timer);
    this.#entries.delete(name);
    return true;
  }

  /** Names of the registered checks. */
  names(): string[] {
    return [...this.#entries.keys()];
  }

  /**
   * Run checks now instead of waiting for their interval (joining a run already in flight) and
   * resolve with their new state. Useful once at startup, before {@link markReady}, and in tests.
   */
  async runNow(name?: string): Promise<CheckState[]> {
    const entries = name === undefined ? [...this.#entries.values()] : [this.#entries.get(name)];
    if (entries.some((e) => e === undefined)) {
      throw new HealthError('CAP_ERR_RUNTIME_HEALTH_INVALID', `no check named "${name}"`);
    }
    return Promise.all((entries as Entry[]).map((e) => this.#start(e)));
  }

  #start(entry: Entry): Promise<CheckState> {
    if (entry.run) return entry.run;
    clearTimeout(entry.timer);
    entry.timer = undefined;
    const run = this.#execute(entry).finally(() => {
      entry.run = undefined;
      if (entry.removed || this.#closed.signal.aborted) return;
      entry.timer = setTimeout(() => void this.#start(entry), entry.intervalMs);
      // Checks serve probes; they must not keep an otherwise finished process alive.
      entry.timer.unref();
    });
    entry.run = run;
    return run;
  }

  async #execute(entry: Entry): Promise<CheckState> {
    if (entry.straggler) {
      // The last run timed out and the check ignored its signal: starting another copy would pile up
      // hung calls, so keep failing until the old one settles.
      this.#record(entry, {
        ok: false,
        latencyMs: null,
        error: new HealthError(
          'CAP_ERR_RUNTIME_HEALTH_TIMEOUT',
          'previous run is still hanging after its timeout (the check ignores its AbortSignal)',
        ),
      });
      return { ...entry.state };
    }
    const timeout = deadline(entry.timeoutMs, {
      reason: () =>
        new HealthError('CAP_ERR_RUNTIME_HEALTH_TIMEOUT', `check timed out after ${entry.timeoutMs} ms`),
    });
    const signal = AbortSignal.any([timeout.signal, this.#closed.signal]);
    const started = performance.now();
    let own: Promise<CheckResult>;
    try {
      own = Promise.resolve(entry.check(signal));
    } catch (err) {
      own = Promise.reject(err);
    }
    try {
      const result = await raceAbort(own, signal, healthAbortError);
      this.#record(entry, {
        ok: true,
        latencyMs: performance.now() - started,
        detail: result && typeof result.detail === 'string' ? result.detail : null,
      });
    } catch (err) {
      if (signal.aborted) {
        const straggler = own.then(
          () => {},
          () => {},
        );
        entry.straggler = straggler;
        void straggler.then(() => {
          if (entry.straggler === straggler) entry.straggler = undefined;
        });
      }
      this.#record(entry, {
        ok: false,
        latencyMs: performance.now() - started,
        error: signal.aborted ? abortReason(signal, healthAbortError) : err,
      });
    } finally {
      timeout.clear();
    }
    return { ...entry.state };
  }

  #record(entry: Entry, outcome: Outcome): void {
    if (entry.removed) return;
    const s = entry.state;
    const from = s.status;
    this.#apply(entry, outcome);
    if (s.status !== from) {
      this.#emit({ type: 'check', name: entry.name, from, to: s.status, state: { ...s } });
    }
  }

  #apply(entry: Entry, outcome: Outcome): void {
    const s = entry.state;
    const now = new Date().toISOString();
    s.runs += 1;
    s.lastRun = now;
    if (outcome.latencyMs !== null) s.latencyMs = Math.round(outcome.latencyMs * 10) / 10;
    if (outcome.ok) {
      s.status = 'ok';
      s.lastSuccess = now;
      s.detail = outcome.detail;
      s.consecutiveFailures = 0;
      return;
    }
    const { message, code } = describe(outcome.error);
    s.lastError = message;
    s.lastErrorCode = code;
    s.lastFailure = now;
    s.consecutiveFailures += 1;
    // Flap damping only applies to a check that was ok; one that never succeeded fails at once.
    if (s.status !== 'ok' || s.consecutiveFailures >= entry.failureThreshold) s.status = 'failing';
  }

  /**
   * The verdict of a probe from cached results: never runs a check. Readiness fails outside the
   * `serving` phase; a failing or pending critical check fails the probe (503); non-critical ones
   * only make it `degraded` (200).
   */
  status(probe: ProbeKind = 'readiness', options: { exclude?: readonly string[] } = {}): HealthReport {
    const exclude = new Set(options.exclude ?? []);
    const checks: CheckState[] = [];
    if (probe === 'liveness' && this.#loop) checks.push(this.#loopState());
    for (const entry of this.#entries.values()) {
      if (entry.state.kind === 'both' || entry.state.kind === probe) checks.push({ ...entry.state });
    }
    const known = new Set(checks.map((c) => c.name));
    const unknownExcludes = [...exclude].filter((n) => !known.has(n));
    const included = checks.filter((c) => !exclude.has(c.name));

    const badCritical = included.filter((c) => c.critical && c.status !== 'ok');
    const badOptional = included.filter((c) => !c.critical && c.status !== 'ok');
    const reasons: string[] = [];
    if (probe === 'readiness' && this.#phase !== 'serving') reasons.push(`phase is ${this.#phase}`);
    if (badCritical.length > 0) reasons.push(`failing: ${badCritical.map((c) => c.name).join(', ')}`);
    if (badOptional.length > 0) {
      reasons.push(`degraded (non-critical failing): ${badOptional.map((c) => c.name).join(', ')}`);
    }
    const failing = (probe === 'readiness' && this.#phase !== 'serving') || badCritical.length > 0;
    const verdict: HealthVerdict = failing ? 'failing' : badOptional.length > 0 ? 'degraded' : 'ok';
    const report: HealthReport = {
      probe,
      status: verdict,
      httpStatus: failing ? 503 : 200,
      phase: this.#phase,
      checks: included,
    };
    if (reasons.length > 0) report.reason = reasons.join('; ');
    if (unknownExcludes.length > 0) report.unknownExcludes = unknownExcludes;
    return report;
  }

  /** Cached state of one check (or the built-in `eventloop`), or undefined when unknown. */
  check(name: string): CheckState | undefined {
    if (name === 'eventloop' && this.#loop) return this.#loopState();
    const entry = this.#entries.get(name);
    return entry ? { ...entry.state } : undefined;
  }

  #loopState(): CheckState {
    const loop = this.#loop!;
    const lag = loop.maxLagMs();
    const ok = lag <= loop.thresholdMs;
    const now = new Date().toISOString();
    return {
      name: 'eventloop',
      kind: 'liveness',
      critical: true,
      status: ok ? 'ok' : 'failing',
      latencyMs: null,
      lastRun: now,
      lastSuccess: ok ? now : null,
      lastError: ok
        ? null
        : `event loop delay ${lag} ms exceeds ${loop.thresholdMs} ms (worst within ${loop.windowMs} ms)`,
      lastErrorCode: null,
      lastFailure: ok ? null : now,
      detail: `max delay ${lag} ms within ${loop.windowMs} ms`,
      consecutiveFailures: ok ? 0 : 1,
      runs: 0,
    };
  }

  /**
   * Answer `/livez`, `/readyz`, `/healthz` (alias of readyz) and `/<probe>/<check>` under
   * {@link basePath}. Returns false, without touching `res`, for any other path, so it composes with
   * any http or http2 server (compat API) or framework. Supports `?verbose` (kube-apiserver text) and
   * `?exclude=<name>` (repeatable or comma-separated).
   */
  handle(req: HealthRequest, res: HealthResponse): boolean {
    return handleHealthRequest(this, req, res);
  }

  /** Stop all checks (aborting runs in flight) and the watchdog. Readiness reports stopping. */
  close(): void {
    if (this.#closed.signal.aborted) return;
    this.setPhase('stopping');
    this.#closed.abort(new HealthError('CAP_ERR_RUNTIME_HEALTH_CLOSED', 'health registry closed'));
    for (const entry of this.#entries.values()) {
      clearTimeout(entry.timer);
      entry.timer = undefined;
    }
    this.#loop?.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
  }
}
