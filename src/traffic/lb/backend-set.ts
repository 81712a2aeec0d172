// The live set of backends a picker reads. Sources (flags, a file, later discovery) replace the membership
// with `update`; active health checks and outlier detection flip each member's state. The list of backends
// that may take traffic is recomputed on each change, never per request.
import { TrafficError, TrafficErrorCode } from '../errors.ts';
import {
  Backend,
  type BackendEndpoint,
  type BackendHealth,
  type BackendPoolOptions,
  backendOrigin,
} from './backend.ts';

/** What changed in one {@link BackendSet.update}. */
export interface BackendSetChange {
  added: string[];
  removed: string[];
  /** Kept backends whose weight changed. */
  reweighted: string[];
}

/**
 * The membership and live state of a load balancer's backends. `available` lists the backends a picker
 * chooses from: healthy (or not yet checked) and not ejected. When none is, it falls back to every backend
 * not ejected, then to every backend ("panic", as Envoy does): a health check that is wrong everywhere
 * (a `/` answering 404) must not turn a working service into a wall of 503s.
 */
export class BackendSet {
  readonly #pool: BackendPoolOptions;
  readonly #now: () => number;
  #members = new Map<string, Backend>();
  #available: Backend[] = [];
  #panic = false;
  #version = 0;
  readonly #listeners = new Set<() => void>();
  #closed = false;

  constructor(pool: BackendPoolOptions, options: { now?: () => number } = {}) {
    this.#pool = pool;
    this.#now = options.now ?? Date.now;
  }

  /** Every member, in the order the source listed them. */
  get all(): readonly Backend[] {
    return [...this.#members.values()];
  }

  /** The backends that may take a request now (see the class comment for the fallback). */
  get available(): readonly Backend[] {
    return this.#available;
  }

  /** True when no backend is healthy and `available` is the fallback. */
  get panic(): boolean {
    return this.#panic;
  }

  /** Increases on every change of `available` (pickers rebuild what they derive from it, e.g. a hash ring). */
  get version(): number {
    return this.#version;
  }

  get(id: string): Backend | undefined {
    return this.#members.get(id);
  }

  /** Called after every change of membership or state. */
  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Replace the membership. Backends kept (same origin) keep their pool, connections and state; new ones
   * start `unknown`; removed ones leave `available` at once and their pools close once their in-flight
   * requests end, so a reload drops nothing. All endpoints are checked before anything changes.
   */
  update(endpoints: readonly BackendEndpoint[]): BackendSetChange {
    if (this.#closed) throw new TrafficError(TrafficErrorCode.closed, 'backend set is closed');
    const wanted = new Map<string, BackendEndpoint>();
    for (const endpoint of endpoints) {
      const id = backendOrigin(endpoint);
      if (wanted.has(id)) throw new TrafficError(TrafficErrorCode.invalid, `backend ${id} is listed twice`);
      wanted.set(id, endpoint);
    }
    const change: BackendSetChange = { added: [], removed: [], reweighted: [] };
    const next = new Map<string, Backend>();
    for (const [id, endpoint] of wanted) {
      const kept = this.#members.get(id);
      if (kept) {
        const weight = endpoint.weight ?? 1;
        if (kept.weight !== weight) change.reweighted.push(id);
        kept.weight = weight;
        next.set(id, kept);
      } else {
        next.set(id, new Backend(endpoint, this.#pool));
        change.added.push(id);
      }
    }
    for (const [id, backend] of this.#members) {
      if (next.has(id)) continue;
      change.removed.push(id);
      // close() lets queued and running requests finish, then ends the connections.
      void backend.pool.close().catch(() => {});
    }
    this.#members = next;
    this.refresh();
    return change;
  }

  /** Set a member's active health; returns true when it changed. */
  setHealth(backend: Backend, health: BackendHealth): boolean {
    if (backend.health === health || this.#members.get(backend.id) !== backend) return false;
    backend.health = health;
    this.refresh();
    return true;
  }

  /** Recompute `available` (after an ejection starts or ends, or any state change made directly). */
  refresh(): void {
    const now = this.#now();
    const members = [...this.#members.values()];
    const notEjected = members.filter((b) => !b.isEjected(now));
    const checked = members.some((b) => b.health !== 'unknown');
    // Unknown backends count as healthy only until some backend has been checked: at start, and when a
    // reload adds backends they wait for their first check.
    let available = notEjected.filter((b) => b.health === 'healthy' || (!checked && b.health === 'unknown'));
    this.#panic = available.length === 0 && members.length > 0;
    if (this.#panic) available = notEjected.length > 0 ? notEjected : members;
    this.#available = available;
    this.#version++;
    for (const listener of this.#listeners) listener();
  }

  /** Close every pool, letting in-flight requests finish. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const members = [...this.#members.values()];
    this.#members = new Map();
    this.#available = [];
    await Promise.all(members.map((b) => b.pool.close().catch(() => {})));
  }
}
