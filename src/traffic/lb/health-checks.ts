// Active health checks: one loop per backend, in the background, on a connection of its own (a check must
// not queue behind client requests in the backend's pool). The first result decides a new backend's state
// at once; after that `rise` successes or `fall` failures in a row flip it, as HAProxy's `check rise/fall`.
import { createHttpTransport, type HttpTransport, httpRequest, sleep } from '../../runtime/index.ts';
import type { Backend, BackendHealth } from './backend.ts';
import type { BackendSet } from './backend-set.ts';

/** Active health check settings. */
export interface HealthCheckOptions {
  /** Default true. Off: every backend counts as healthy unless ejected. */
  enabled?: boolean;
  /** Path of the GET. Default `/`. */
  path?: string;
  /** Host header of the check. Default the backend's host:port. */
  host?: string;
  /** Time between checks of one backend, ms. Default 2 000. */
  intervalMs?: number;
  /** Time for one check to answer, ms. Default 1 000. */
  timeoutMs?: number;
  /** Successes in a row that make an unhealthy backend healthy. Default 2. */
  rise?: number;
  /** Failures in a row that make a healthy backend unhealthy. Default 2. */
  fall?: number;
  /** Statuses that pass: `[low, high]`, inclusive. Default 200..399. */
  expectStatus?: readonly [number, number];
}

/** {@link HealthCheckOptions} with every default filled in. */
export type ResolvedHealthCheckOptions = Required<Omit<HealthCheckOptions, 'host'>> & { host?: string };

export const DEFAULT_HEALTH_CHECK: ResolvedHealthCheckOptions = Object.freeze({
  enabled: true,
  path: '/',
  intervalMs: 2_000,
  timeoutMs: 1_000,
  rise: 2,
  fall: 2,
  expectStatus: [200, 399] as const,
});

/** A change of a backend's active health. */
export interface HealthTransition {
  backend: Backend;
  from: BackendHealth;
  to: BackendHealth;
  /** Why the last check failed (`status 500`, `ECONNREFUSED`, `timeout`), or `ok`. */
  reason: string;
}

interface Loop {
  stop: AbortController;
  done: Promise<void>;
  transport: HttpTransport;
}

/** Runs the checks of every member of a {@link BackendSet}, following its membership. */
export class HealthChecker {
  readonly #set: BackendSet;
  #options: ResolvedHealthCheckOptions;
  readonly #onTransition: (t: HealthTransition) => void;
  readonly #random: () => number;
  readonly #loops = new Map<Backend, Loop>();
  #closed = false;

  constructor(
    set: BackendSet,
    options: ResolvedHealthCheckOptions,
    onTransition: (t: HealthTransition) => void,
    random: () => number = Math.random,
  ) {
    this.#set = set;
    this.#options = options;
    this.#onTransition = onTransition;
    this.#random = random;
  }

  /** Start loops for new members and stop those of removed ones; resolves when each new member's first check ended. */
  async sync(): Promise<void> {
    if (this.#closed || !this.#options.enabled) return;
    const members = new Set(this.#set.all);
    for (const [backend, loop] of this.#loops) {
      if (!members.has(backend)) {
        this.#loops.delete(backend);
        loop.stop.abort();
      }
    }
    const first: Promise<void>[] = [];
    for (const backend of members) {
      if (this.#loops.has(backend)) continue;
      const stop = new AbortController();
      const transport = createHttpTransport({
        origin: backend.id,
        retry: false,
        connections: 1,
        connectTimeoutMs: this.#options.timeoutMs,
      });
      let firstDone!: () => void;
      first.push(new Promise((resolve) => (firstDone = resolve)));
      const done = this.#run(backend, transport, stop.signal, firstDone).finally(() => transport.destroy());
      this.#loops.set(backend, { stop, done, transport });
    }
    await Promise.all(first);
  }

  /** Use new settings from the next check on (a reload); a change of `enabled` takes a new checker. */
  reconfigure(options: ResolvedHealthCheckOptions): void {
    this.#options = options;
  }

  async #run(
    backend: Backend,
    transport: HttpTransport,
    signal: AbortSignal,
    firstDone: () => void,
  ): Promise<void> {
    let successes = 0;
    let failures = 0;
    while (!signal.aborted) {
      const reason = await this.#check(transport, signal);
      if (signal.aborted) break;
      const o = this.#options;
      const from = backend.health;
      let to = from;
      if (reason === 'ok') {
        successes++;
        failures = 0;
        if (from === 'unknown' || (from === 'unhealthy' && successes >= o.rise)) to = 'healthy';
      } else {
        failures++;
        successes = 0;
        if (from === 'unknown' || (from === 'healthy' && failures >= o.fall)) to = 'unhealthy';
      }
      if (to !== from && this.#set.setHealth(backend, to)) this.#onTransition({ backend, from, to, reason });
      firstDone();
      // ±10% so the checks of many proxies (and backends) do not fall into step.
      const wait = o.intervalMs * (0.9 + 0.2 * this.#random());
      if (!(await sleep(wait, signal))) break;
    }
    firstDone();
  }

  async #check(transport: HttpTransport, signal: AbortSignal): Promise<string> {
    const o = this.#options;
    try {
      const res = await httpRequest(transport, {
        path: o.path,
        signal,
        headers: { 'user-agent': 'capstan-lb-health', ...(o.host !== undefined ? { host: o.host } : {}) },
        timeouts: { deadlineMs: o.timeoutMs },
      });
      await res.body.dump().catch(() => {});
      const [low, high] = o.expectStatus;
      return res.status >= low && res.status <= high ? 'ok' : `status ${res.status}`;
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause;
      return cause?.code ?? (err as { code?: string }).code ?? String(err);
    }
  }

  /** Stop every loop. */
  async close(): Promise<void> {
    this.#closed = true;
    const loops = [...this.#loops.values()];
    this.#loops.clear();
    for (const loop of loops) loop.stop.abort();
    await Promise.all(loops.map((l) => l.done.catch(() => {})));
  }
}
