import { abortReason, sleep } from '../abort.ts';
import { Backoff, type BackoffOptions } from './backoff.ts';

/** Reported before each wait of {@link retry} (and of a {@link resumable} stream). */
export interface RetryInfo {
  /** 1 for the first retry, growing until the backoff is reset. */
  attempt: number;
  /** The wait before the next try (ms), jitter included. */
  delayMs: number;
  /** What failed. */
  error: unknown;
}

/** Options of {@link retry}. */
export interface RetryOptions {
  /** A shared {@link Backoff} (its attempt count carries over), or options for a fresh one. */
  backoff?: Backoff | BackoffOptions;
  /** Errors no retry can fix: thrown at once. Default: none. */
  isPermanent?: (error: unknown) => boolean;
  /** Before each wait. */
  onRetry?: (info: RetryInfo) => void;
  /** Ends the retries: the call rejects with the signal's reason. */
  signal?: AbortSignal;
}

/**
 * Call `fn` until it resolves, waiting a backoff between failures. Rejects with a permanent error as is, and
 * with the signal's reason (an `AbortError` when it is not an Error) once `signal` aborts, during a wait too.
 */
export async function retry<R>(
  fn: (signal?: AbortSignal) => Promise<R>,
  options: RetryOptions = {},
): Promise<R> {
  const { signal } = options;
  const backoff = options.backoff instanceof Backoff ? options.backoff : new Backoff(options.backoff);
  for (;;) {
    if (signal?.aborted) throw abortReason(signal);
    try {
      return await fn(signal);
    } catch (error) {
      if (signal?.aborted) throw abortReason(signal);
      if (options.isPermanent?.(error)) throw error;
      const delayMs = backoff.next();
      options.onRetry?.({ attempt: backoff.attempt, delayMs, error });
      if (!(await sleep(delayMs, signal))) throw abortReason(signal!);
    }
  }
}
