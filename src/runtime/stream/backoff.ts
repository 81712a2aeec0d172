import { StreamError, StreamErrorCode } from './errors.ts';

/**
 * How a delay is randomised so that many clients cut off at once (a restarted server) do not come back in
 * lockstep. `full`: anywhere in [0, d]; `equal`: in [d/2, d] (never much shorter than planned, so it still
 * grows); `none`: exactly d; a number j in 0..1: the random share, in [d(1−j), d] (`full` = 1, `equal` = 0.5).
 */
export type Jitter = 'full' | 'equal' | 'none' | number;

/** Options of {@link Backoff} and {@link backoffDelay}. */
export interface BackoffOptions {
  /** Delay before the first retry, before jitter (ms). Default 100. */
  initialMs?: number;
  /** Cap on the delay, before jitter (ms); below `initialMs` it is every delay. Default 10000. */
  maxMs?: number;
  /** Growth per attempt. Default 2. */
  factor?: number;
  /** Default `equal`. */
  jitter?: Jitter;
  /** A number in [0, 1): inject it to make delays predictable in tests. Default `Math.random`. */
  random?: () => number;
}

// setTimeout treats a delay above 2^31-1 ms as 1 ms: a huge cap would become a busy loop.
const MAX_TIMER_MS = 2 ** 31 - 1;

function checked(options: BackoffOptions): Required<BackoffOptions> {
  const initialMs = options.initialMs ?? 100;
  const maxMs = options.maxMs ?? 10_000;
  const factor = options.factor ?? 2;
  const ok =
    Number.isFinite(initialMs) &&
    initialMs >= 0 &&
    Number.isFinite(maxMs) &&
    maxMs >= 0 &&
    maxMs <= MAX_TIMER_MS &&
    Number.isFinite(factor) &&
    factor >= 1;
  if (!ok) {
    throw new StreamError(
      StreamErrorCode.invalid,
      `bad backoff: initialMs ${initialMs}, maxMs ${maxMs}, factor ${factor} (want delays >= 0, a cap below 2^31, factor >= 1)`,
    );
  }
  return {
    initialMs,
    maxMs,
    factor,
    jitter: options.jitter ?? 'full',
    random: options.random ?? Math.random,
  };
}

/** The delay before retry number `attempt` (0 = the first retry): exponential, capped, then jittered. */
export function backoffDelay(attempt: number, options: BackoffOptions = {}): number {
  return delayOf(attempt, checked(options));
}

const JITTER_SHARE: Record<string, number> = { full: 1, equal: 0.5, none: 0 };

function delayOf(attempt: number, o: Required<BackoffOptions>): number {
  // 0 * Infinity (a long outage overflowing the power) would be NaN.
  const planned = o.initialMs === 0 ? 0 : Math.min(o.maxMs, o.initialMs * o.factor ** Math.max(0, attempt));
  const share = typeof o.jitter === 'number' ? Math.min(1, Math.max(0, o.jitter)) : JITTER_SHARE[o.jitter]!;
  return share === 0 ? planned : planned * (1 - share) + planned * share * o.random();
}

/**
 * Exponential backoff with jitter and a cap, counting attempts: `next()` before each retry, `reset()` once
 * the thing retried works again. One instance can be shared by the steps of one task (a stream and the calls
 * that decide whether to reconnect), so their failures grow one delay.
 */
export class Backoff {
  readonly #options: Required<BackoffOptions>;
  #attempt = 0;

  constructor(options: BackoffOptions = {}) {
    this.#options = checked(options);
  }

  /** Retries since the last {@link reset}. */
  get attempt(): number {
    return this.#attempt;
  }

  /** The delay before the next retry (ms); counts the attempt. */
  next(): number {
    return delayOf(this.#attempt++, this.#options);
  }

  /** It worked: the next failure starts again from the first delay. */
  reset(): void {
    this.#attempt = 0;
  }
}
