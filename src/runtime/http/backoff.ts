/** How a retry delay grows: exponential from `initialMs` by `factor`, capped at `maxMs`, with jitter. */
export interface BackoffOptions {
  /** Delay before the first retry, before jitter. */
  initialMs: number;
  /** Cap on any single delay. */
  maxMs: number;
  /** Growth per attempt. Default 2. */
  factor?: number;
  /** Share of the delay that is random, 0..1. Default 0.5 ("equal jitter": never below half the step). */
  jitter?: number;
}

/**
 * The delay before retry number `attempt` (0 = the first retry). Jitter spreads clients that failed together
 * (a restarted server) so they do not all come back in the same millisecond; keeping half the step fixed
 * still lets the delay grow. `random` is injectable for tests.
 */
export function backoffDelay(attempt: number, options: BackoffOptions, random: () => number = Math.random) {
  const step = Math.min(options.maxMs, options.initialMs * (options.factor ?? 2) ** Math.max(0, attempt));
  const jitter = Math.min(1, Math.max(0, options.jitter ?? 0.5));
  return step * (1 - jitter) + step * jitter * random();
}
