// Time as the controller runtime sees it: the work queue's delays, backoff, rate limit and the lease's
// deadlines all go through a Clock, so tests drive hours of retries in microseconds and assert exact delays.

/** A timer handle from {@link Clock.setTimeout}. */
export interface ClockTimer {
  /** Opaque; pass it back to {@link Clock.clearTimeout}. */
  readonly id: unknown;
}

/** Wall time and timers. {@link systemClock} in production; {@link ManualClock} in tests. */
export interface Clock {
  /** Milliseconds since the epoch (or any fixed origin: only differences are used). */
  now(): number;
  /** Call `fn` once, `ms` from now. */
  setTimeout(fn: () => void, ms: number): ClockTimer;
  clearTimeout(timer: ClockTimer): void;
}

// setTimeout treats a delay above 2^31-1 ms as 1 ms: a long requeue would become a busy loop.
const MAX_TIMER_MS = 2 ** 31 - 1;

/** The process's clock: `Date.now` and Node timers (ref'd: a pending requeue keeps a controller alive). */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout(fn, ms) {
    return { id: setTimeout(fn, Math.min(Math.max(0, ms), MAX_TIMER_MS)) };
  },
  clearTimeout(timer) {
    clearTimeout(timer.id as NodeJS.Timeout);
  },
};

interface ManualTimer {
  readonly id: number;
  readonly at: number;
  readonly fn: () => void;
}

/**
 * A clock that moves only when told: {@link advance} fires the timers that fall due, in order of due time
 * (then of creation), letting promise callbacks run between them so code awaiting a timer reacts as it
 * would in real time. For unit tests of queues, controllers and leader election; no real time passes.
 */
export class ManualClock implements Clock {
  #now: number;
  #nextId = 1;
  readonly #timers = new Map<number, ManualTimer>();

  /** @param start the initial `now()` (ms). */
  constructor(start = 0) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimeout(fn: () => void, ms: number): ClockTimer {
    const id = this.#nextId++;
    this.#timers.set(id, { id, at: this.#now + Math.max(0, ms), fn });
    return { id };
  }

  clearTimeout(timer: ClockTimer): void {
    this.#timers.delete(timer.id as number);
  }

  /** Timers not yet fired. */
  get pending(): number {
    return this.#timers.size;
  }

  /** Due time of the earliest pending timer, or undefined. */
  get nextDue(): number | undefined {
    let min: number | undefined;
    for (const t of this.#timers.values()) if (min === undefined || t.at < min) min = t.at;
    return min;
  }

  /**
   * Move time forward by `ms`, firing every timer due on the way (including ones those timers set), with
   * settled promise callbacks run after each. Ends with `now()` = start + `ms`.
   */
  async advance(ms: number): Promise<void> {
    const end = this.#now + ms;
    await settle();
    for (;;) {
      const due = this.#earliest();
      if (due === undefined || due.at > end) break;
      this.#timers.delete(due.id);
      this.#now = Math.max(this.#now, due.at);
      due.fn();
      await settle();
    }
    this.#now = end;
    await settle();
  }

  /** Let pending promise callbacks (and the I/O-free work they start) run, without moving time. */
  async flush(): Promise<void> {
    await settle();
  }

  #earliest(): ManualTimer | undefined {
    let best: ManualTimer | undefined;
    for (const t of this.#timers.values()) {
      if (best === undefined || t.at < best.at || (t.at === best.at && t.id < best.id)) best = t;
    }
    return best;
  }
}

// A macrotask turn lets every queued microtask (a chain of awaits) run first; a few turns cover code that
// itself awaits a resolved promise or two before acting.
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}
