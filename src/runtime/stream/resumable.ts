import { sleep } from '../abort.ts';
import { Backoff, type BackoffOptions } from './backoff.ts';
import type { ResumeTracker } from './resume.ts';
import { type RetryInfo, retry } from './retry.ts';

/** What a {@link resumable} stream reports besides its items. */
export type StreamNotice =
  /** A connection (or a call through {@link ConnectionEnd.retry}) failed; the next try is in `delayMs`. */
  | ({ type: 'retrying' } & RetryInfo)
  /**
   * Items flow again after failures: reported with the first new item (once the replayed overlap was
   * dropped), or when the new connection ends cleanly without one.
   */
  | {
      type: 'resumed';
      /** From the first failure to now (ms). */
      downMs: number;
      /** Replayed items the tracker dropped on this connection. */
      duplicatesDropped: number;
    };

/** Passed to `connect`: which connection this is. */
export interface Connection {
  /** 0 for the first connection, then 1, 2... */
  readonly index: number;
  /** The stream's signal: abort the connection with it. */
  readonly signal: AbortSignal | undefined;
}

/** Passed to `afterEnd` when a connection ended (cleanly, or failed and the backoff was waited out). */
export interface ConnectionEnd {
  /** The connection failed (`error` says how) rather than ending cleanly. */
  readonly failed: boolean;
  readonly error?: unknown;
  readonly signal: AbortSignal | undefined;
  /**
   * {@link retry} with the stream's backoff, permanent-error test, signal and `retrying` notices: for the calls
   * that decide whether to reconnect (is the container still there?), so their failures count as the stream's.
   */
  retry<R>(fn: (signal?: AbortSignal) => Promise<R>): Promise<R>;
}

/** Options of {@link resumable}. */
export interface ResumableOptions<T, P> {
  /**
   * Open one connection starting at `from` (undefined: nothing seen yet, start where the caller wants). It
   * yields batches (e.g. the items of one network chunk; an empty batch just says the connection is alive).
   * Ending is a clean end; throwing is a failure. Yield a fresh array each time: it is filtered in place.
   */
  connect(from: P | undefined, connection: Connection): AsyncIterable<T[]>;
  /** Resume point and dedupe of the replayed overlap. Default: none (`from` is always undefined). */
  tracker?: ResumeTracker<T, P>;
  /**
   * Whether to connect again after a connection ended. Default: after a failure yes, after a clean end no.
   * May wait (a grace period) and throw (ends the stream with that error).
   */
  afterEnd?(end: ConnectionEnd): boolean | Promise<boolean>;
  /** A shared {@link Backoff}, or options for one. It is reset whenever a batch arrives. */
  backoff?: Backoff | BackoffOptions;
  /** Errors no reconnect can fix (bad request, bad credentials): the stream throws them. Default: none. */
  isPermanent?(error: unknown): boolean;
  /**
   * Failures to go on from without waiting (still reported to `afterEnd`), e.g. "the container is gone", where
   * the next step is to find out rather than wait. Default: none.
   */
  skipBackoff?(error: unknown): boolean;
  onNotice?(notice: StreamNotice): void;
  /** Ends the stream cleanly, from any state (connected, waiting, deciding). */
  signal?: AbortSignal;
  /** Clock for `downMs` (ms). Default `Date.now`. */
  now?: () => number;
}

/**
 * One resumable stream: connect, deliver, and on a failure back off (exponential, jitter, cap), reconnect
 * from the tracker's resume point and drop the replayed overlap, so a consumer sees each item once across
 * broken connections and restarts of the source. Ends when `afterEnd` says so, on a permanent error (thrown),
 * or when `signal` aborts (cleanly, with no timer left behind). The building block of Docker logs and events,
 * and of the Kubernetes watch, Consul blocking queries and xDS streams to come.
 */
export async function* resumable<T, P>(options: ResumableOptions<T, P>): AsyncGenerator<T[]> {
  const { tracker, signal } = options;
  const backoff = options.backoff instanceof Backoff ? options.backoff : new Backoff(options.backoff);
  const notify = options.onNotice ?? (() => {});
  const now = options.now ?? Date.now;
  const isPermanent = options.isPermanent ?? (() => false);
  const afterEnd = options.afterEnd ?? ((end: ConnectionEnd) => end.failed);
  let downSince: number | undefined;

  const onRetry = (info: RetryInfo) => {
    downSince ??= now();
    notify({ type: 'retrying', ...info });
  };
  const resumed = () => {
    if (downSince === undefined) return;
    notify({ type: 'resumed', downMs: now() - downSince, duplicatesDropped: tracker?.dropped ?? 0 });
    downSince = undefined;
  };
  const retryHere = <R>(fn: (signal?: AbortSignal) => Promise<R>) =>
    retry(fn, { backoff, isPermanent, onRetry, ...(signal ? { signal } : {}) });

  for (let index = 0; ; index++) {
    if (signal?.aborted) return;
    const from = tracker?.resumePoint();
    if (index > 0) tracker?.beginReplay();
    let failed = false;
    let error: unknown;
    try {
      for await (const batch of options.connect(from, { index, signal })) {
        backoff.reset();
        const kept = tracker ? admitted(tracker, batch) : batch;
        if (kept.length === 0) continue;
        resumed();
        yield kept;
      }
      // It ended cleanly: it was up, even if it brought nothing new.
      resumed();
    } catch (err) {
      if (signal?.aborted) return;
      if (isPermanent(err)) throw err;
      failed = true;
      error = err;
      if (!options.skipBackoff?.(err)) {
        const delayMs = backoff.next();
        onRetry({ attempt: backoff.attempt, delayMs, error: err });
        if (!(await sleep(delayMs, signal))) return;
      }
    }
    let again: boolean;
    try {
      again = await afterEnd({ failed, error, signal, retry: retryHere });
    } catch (err) {
      if (signal?.aborted) return;
      throw err;
    }
    if (!again) return;
  }
}

/** Keep the admitted items, in place: the batch is the connection's own array. */
function admitted<T>(tracker: ResumeTracker<T, unknown>, batch: T[]): T[] {
  let kept = 0;
  for (let i = 0; i < batch.length; i++) {
    const item = batch[i]!;
    if (tracker.admit(item)) batch[kept++] = item;
  }
  batch.length = kept;
  return batch;
}

/** The items of a batched stream one by one (for consumers that want single items). */
export async function* unbatch<T>(batches: AsyncIterable<readonly T[]>): AsyncGenerator<T> {
  for await (const batch of batches) {
    for (let i = 0; i < batch.length; i++) yield batch[i]!;
  }
}
