// The health module's types, in a leaf so the registry (health.ts) and its HTTP endpoints (http.ts) share them
// without importing each other.
import type { EventLoopOptions } from './event-loop.ts';

/** Lifecycle phase of the process. Readiness fails outside `serving`, whatever the checks say. */
export type HealthPhase = 'starting' | 'serving' | 'stopping';

/** Which probes a check feeds: `/readyz` (dependencies), `/livez` (the process itself), or both. */
export type CheckKind = 'readiness' | 'liveness' | 'both';

/** A probe: readiness (`/readyz`, `/healthz`) or liveness (`/livez`). */
export type ProbeKind = 'readiness' | 'liveness';

/** `pending` until the first run completes; a pending check counts as not ok. */
export type CheckStatus = 'ok' | 'failing' | 'pending';

/** Overall verdict: `degraded` means only non-critical checks fail (still HTTP 200). */
export type HealthVerdict = 'ok' | 'degraded' | 'failing';

/**
 * A health check. It must honour `signal` (aborted at `timeoutMs` and on `close()`); one that does not
 * is still cut off, but is not started again until its previous run settles.
 */
export type CheckFunction = (signal: AbortSignal) => Promise<CheckResult>;

/** What a check may resolve with: nothing, or a detail shown in the probe body. */
// biome-ignore lint/suspicious/noConfusingVoidType: lets plain `async () => {}` checks type-check
export type CheckResult = void | { detail?: string };

/** Options of {@link Health.register}. */
export interface CheckOptions {
  /** Unique name, used in URLs (`/readyz/<name>`): letters, digits, `.`, `_`, `-`. */
  name: string;
  check: CheckFunction;
  /** Abort a run after this long and count it as failed. Default 5,000 ms. */
  timeoutMs?: number;
  /** Pause between the end of one run and the start of the next. Default 10,000 ms. */
  intervalMs?: number;
  /** A failing critical check makes the probe fail (503); a non-critical one only degrades it (200). */
  critical?: boolean;
  /** Default `readiness`. */
  kind?: CheckKind;
  /**
   * Consecutive failures before a check that was ok is reported failing (flap damping, like a kubelet
   * `failureThreshold`). A check that never succeeded fails at once. Default 1.
   */
  failureThreshold?: number;
}

/** The cached state of one check, as probes report it. */
export interface CheckState {
  name: string;
  kind: CheckKind;
  critical: boolean;
  status: CheckStatus;
  /** Duration of the last completed run, in ms. */
  latencyMs: number | null;
  /** When the last run completed (ISO 8601). */
  lastRun: string | null;
  /** When the check last succeeded (ISO 8601). */
  lastSuccess: string | null;
  /** Message of the most recent failure (kept after recovery, see `lastFailure`). */
  lastError: string | null;
  /** `code` of the most recent failure's error, when it had one. */
  lastErrorCode: string | null;
  /** When the check last failed (ISO 8601). */
  lastFailure: string | null;
  /** Detail returned by the last successful run. */
  detail: string | null;
  consecutiveFailures: number;
  /** Completed runs so far. */
  runs: number;
}

/** The answer of one probe, as {@link Health.status} returns it and the endpoints serialise it. */
export interface HealthReport {
  probe: ProbeKind;
  status: HealthVerdict;
  /** 200 for ok and degraded, 503 for failing. */
  httpStatus: 200 | 503;
  phase: HealthPhase;
  /** Why the probe fails or is degraded, in one line. */
  reason?: string;
  checks: CheckState[];
  /** Requested exclusions that matched no check. */
  unknownExcludes?: string[];
}

/** A change reported to {@link Health.onChange} listeners: a check's status, or the phase. */
export type HealthChange =
  | { type: 'check'; name: string; from: CheckStatus; to: CheckStatus; state: CheckState }
  | { type: 'phase'; from: HealthPhase; to: HealthPhase };

/** Options of {@link Health}. */
export interface HealthOptions {
  /** Watchdog for `/livez`, reported as the check `eventloop`; `false` turns it off. */
  eventLoop?: EventLoopOptions | false;
  /** Prefix the endpoints live under, e.g. `/-` for `/-/readyz`. Default none. */
  basePath?: string;
  /**
   * Show checks' raw failure messages in HTTP bodies (`/readyz?verbose`, `/readyz/<name>`, the JSON
   * `lastError`). Default false: a failing check reads `reason withheld`, as on kube-apiserver, because a
   * user-written check's error may quote a connection string or a token and a probe endpoint is readable by
   * anyone who can reach the pod. The reasons stay in {@link Health.status} and in change events (which
   * `createService` logs, redacted).
   */
  exposeCheckErrors?: boolean;
  /** Starting phase. Default `starting`: call {@link Health.markReady} once the service can serve. */
  phase?: HealthPhase;
}

/** What the HTTP endpoints read from a registry: a {@link Health} is one. */
export interface HealthSource {
  /** Prefix the endpoints live under (`''` for none). */
  readonly basePath: string;
  /** Show raw failure messages in HTTP bodies; when false they read `reason withheld`. */
  readonly exposeCheckErrors: boolean;
  /** The answer of one probe. */
  status(probe: ProbeKind, options: { exclude?: readonly string[] }): HealthReport;
  /** Cached state of one check, or undefined when unknown. */
  check(name: string): CheckState | undefined;
}
