// Passive outlier detection: a backend that fails requests in a row is ejected for a while, longer each
// time, without waiting for the active checks (Envoy's outlier_detection). A share cap keeps a fault on
// our side (or a bad deploy everywhere) from ejecting the whole set.
import type { Backend } from './backend.ts';
import type { BackendSet } from './backend-set.ts';

/** Outlier detection settings. */
export interface OutlierOptions {
  /** Default true. */
  enabled?: boolean;
  /** 5xx responses in a row that eject a backend. Default 5 (Envoy's). */
  consecutive5xx?: number;
  /** Connect errors, resets and timeouts in a row that eject a backend. Default 3. */
  consecutiveGatewayErrors?: number;
  /** First ejection, ms; the n-th lasts n times this, up to `maxEjectionMs`. Default 30 000. */
  baseEjectionMs?: number;
  /** Longest ejection, ms. Default 300 000. */
  maxEjectionMs?: number;
  /** Most backends ejected at once, in percent of the set; at least one may always be. Default 10. */
  maxEjectionPercent?: number;
}

export type ResolvedOutlierOptions = Required<OutlierOptions>;

export const DEFAULT_OUTLIER: ResolvedOutlierOptions = Object.freeze({
  enabled: true,
  consecutive5xx: 5,
  consecutiveGatewayErrors: 3,
  baseEjectionMs: 30_000,
  maxEjectionMs: 300_000,
  maxEjectionPercent: 10,
});

/** The outcome of one attempt on a backend, as outlier detection counts it. */
export type AttemptOutcome = 'success' | '5xx' | 'gateway';

/** An ejection or its end. */
export interface OutlierEvent {
  type: 'ejected' | 'restored';
  backend: Backend;
  /** For `ejected`: how long, ms, and the why. */
  durationMs?: number;
  reason?: string;
}

/** Counts outcomes per backend and ejects and restores members of a {@link BackendSet}. */
export class OutlierDetector {
  readonly #set: BackendSet;
  #options: ResolvedOutlierOptions;
  readonly #onEvent: (e: OutlierEvent) => void;
  readonly #now: () => number;
  readonly #timers = new Map<Backend, NodeJS.Timeout>();

  constructor(
    set: BackendSet,
    options: ResolvedOutlierOptions,
    onEvent: (e: OutlierEvent) => void,
    now: () => number = Date.now,
  ) {
    this.#set = set;
    this.#options = options;
    this.#onEvent = onEvent;
    this.#now = now;
  }

  reconfigure(options: ResolvedOutlierOptions): void {
    this.#options = options;
  }

  /** Count one attempt's outcome; may eject the backend. */
  record(backend: Backend, outcome: AttemptOutcome): void {
    if (outcome === 'success') {
      backend.consecutive5xx = 0;
      backend.consecutiveGatewayErrors = 0;
      return;
    }
    const o = this.#options;
    if (!o.enabled) return;
    let reason: string | undefined;
    if (outcome === '5xx' && ++backend.consecutive5xx >= o.consecutive5xx) {
      reason = `${backend.consecutive5xx} 5xx responses in a row`;
    } else if (outcome === 'gateway' && ++backend.consecutiveGatewayErrors >= o.consecutiveGatewayErrors) {
      reason = `${backend.consecutiveGatewayErrors} connection errors or timeouts in a row`;
    }
    if (reason !== undefined) this.#eject(backend, reason);
  }

  #eject(backend: Backend, reason: string): void {
    const now = this.#now();
    if (backend.isEjected(now) || this.#set.get(backend.id) !== backend) return;
    const members = this.#set.all;
    const ejected = members.filter((b) => b.isEjected(now)).length;
    const cap = Math.max(1, Math.floor((members.length * this.#options.maxEjectionPercent) / 100));
    if (ejected >= cap || members.length < 2) return;
    const o = this.#options;
    // A backend that has behaved for a full maximum ejection time starts over at the base time.
    if (backend.lastRestoredAt > 0 && now - backend.lastRestoredAt > o.maxEjectionMs) backend.ejections = 0;
    backend.ejections++;
    const durationMs = Math.min(o.baseEjectionMs * backend.ejections, o.maxEjectionMs);
    backend.ejectedUntil = now + durationMs;
    backend.consecutive5xx = 0;
    backend.consecutiveGatewayErrors = 0;
    this.#set.refresh();
    this.#onEvent({ type: 'ejected', backend, durationMs, reason });
    clearTimeout(this.#timers.get(backend));
    this.#timers.set(backend, setTimeout(() => this.#restore(backend), durationMs).unref());
  }

  /**
   * End an ejection early: an active check found the backend healthy again (Envoy's
   * `successful_active_health_check_uneject_host`). No-op when it is not ejected.
   */
  uneject(backend: Backend): void {
    if (!backend.isEjected(this.#now())) return;
    clearTimeout(this.#timers.get(backend));
    this.#restore(backend);
  }

  #restore(backend: Backend): void {
    this.#timers.delete(backend);
    backend.ejectedUntil = 0;
    backend.lastRestoredAt = this.#now();
    if (this.#set.get(backend.id) !== backend) return;
    this.#set.refresh();
    this.#onEvent({ type: 'restored', backend });
  }

  close(): void {
    for (const timer of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
  }
}
