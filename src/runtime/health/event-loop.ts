/** Options of the event-loop watchdog behind `/livez`. */
export interface EventLoopOptions {
  /** `/livez` fails while the worst loop delay seen within `windowMs` exceeds this. Default 2,000 ms. */
  thresholdMs?: number;
  /** How often the loop is sampled. Default 100 ms. */
  sampleIntervalMs?: number;
  /** How long a stall keeps `/livez` failing after it ended. Default 10,000 ms. */
  windowMs?: number;
}

/**
 * Measures event-loop delay as timer drift: a timer due every `sampleIntervalMs` that fires late by
 * X ms means the loop was blocked for about X ms. The worst drift is kept for a window, because a
 * probe can only be answered after the stall is over: without the window, a loop stuck for a minute
 * would look healthy to the very request that waited for it.
 */
export class EventLoopMonitor {
  readonly thresholdMs: number;
  readonly sampleIntervalMs: number;
  readonly windowMs: number;
  #samples: Array<{ at: number; lagMs: number }> = [];
  #timer: NodeJS.Timeout | undefined;
  #expected: number;

  constructor(options: EventLoopOptions = {}) {
    this.thresholdMs = options.thresholdMs ?? 2_000;
    this.sampleIntervalMs = options.sampleIntervalMs ?? 100;
    this.windowMs = options.windowMs ?? 10_000;
    this.#expected = performance.now() + this.sampleIntervalMs;
    this.#schedule();
  }

  #schedule(): void {
    this.#timer = setTimeout(() => {
      const now = performance.now();
      const lagMs = Math.max(0, now - this.#expected);
      this.#samples.push({ at: now, lagMs });
      const cutoff = now - this.windowMs;
      while (this.#samples.length > 0 && this.#samples[0]!.at < cutoff) this.#samples.shift();
      this.#expected = now + this.sampleIntervalMs;
      this.#schedule();
    }, this.sampleIntervalMs);
    // The watchdog must never be what keeps a process alive.
    this.#timer.unref();
  }

  /** Worst delay (ms) within the window, including a stall still in progress when this runs. */
  maxLagMs(): number {
    const now = performance.now();
    let max = Math.max(0, now - this.#expected);
    const cutoff = now - this.windowMs;
    for (const s of this.#samples) if (s.at >= cutoff && s.lagMs > max) max = s.lagMs;
    return Math.round(max * 10) / 10;
  }

  /** True while {@link maxLagMs} is within the threshold. */
  healthy(): boolean {
    return this.maxLagMs() <= this.thresholdMs;
  }

  /** Stop sampling. */
  close(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
