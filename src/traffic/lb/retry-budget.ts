// A retry budget: retries may add at most a share of the requests seen recently, plus a small floor so a
// quiet proxy can still retry. When a backend dies, every request fails once and is retried: without a
// budget, a wide outage would double the load on what is left (Envoy's retry_budget, Finagle's RetryBudget).

/** Options of {@link RetryBudget}. */
export interface RetryBudgetOptions {
  /** Retries allowed as a percentage of requests in the window. Default 20. */
  percent?: number;
  /** Retries allowed in any window whatever the traffic. Default 10. */
  minRetries?: number;
  /** Window length, ms; counted in ten slices. Default 10 000. */
  windowMs?: number;
  /** Test hook. */
  now?: () => number;
}

const SLICES = 10;

/** Counts requests and retries over a sliding window and says whether one more retry fits. */
export class RetryBudget {
  readonly percent: number;
  readonly minRetries: number;
  readonly #sliceMs: number;
  readonly #now: () => number;
  readonly #requests = new Float64Array(SLICES);
  readonly #retries = new Float64Array(SLICES);
  #slice = 0;
  #sliceStart = 0;

  constructor(options: RetryBudgetOptions = {}) {
    this.percent = options.percent ?? 20;
    this.minRetries = options.minRetries ?? 10;
    this.#sliceMs = Math.max(1, Math.floor((options.windowMs ?? 10_000) / SLICES));
    this.#now = options.now ?? Date.now;
    this.#sliceStart = this.#now();
  }

  #advance(): void {
    const now = this.#now();
    let steps = Math.floor((now - this.#sliceStart) / this.#sliceMs);
    if (steps <= 0) return;
    this.#sliceStart += steps * this.#sliceMs;
    if (steps > SLICES) steps = SLICES;
    while (steps-- > 0) {
      this.#slice = (this.#slice + 1) % SLICES;
      this.#requests[this.#slice] = 0;
      this.#retries[this.#slice] = 0;
    }
  }

  /** Count a request from a client (not a retry). */
  recordRequest(): void {
    this.#advance();
    this.#requests[this.#slice]!++;
  }

  /** Take one retry from the budget; false when it is spent (the caller answers with what it has). */
  tryRetry(): boolean {
    this.#advance();
    let requests = 0;
    let retries = 0;
    for (let i = 0; i < SLICES; i++) {
      requests += this.#requests[i]!;
      retries += this.#retries[i]!;
    }
    if (retries >= this.minRetries + (requests * this.percent) / 100) return false;
    this.#retries[this.#slice]!++;
    return true;
  }
}
