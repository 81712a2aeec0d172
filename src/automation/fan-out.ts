// fanOut: run a task over many items with a bound on how many run at once, a deadline and retries per
// item, and cancellation through one AbortSignal — "restart 100 VMs with goroutines", as a function.
import { availableParallelism } from 'node:os';
import { type BackoffOptions, backoffDelay, sleep } from '../runtime/index.ts';
import { AutomationError, AutomationErrorCode } from './errors.ts';

/** What a task gets besides its item. */
export interface TaskContext {
  /** Aborted when this attempt's timeout passes or the whole run is cancelled: pass it on (fetch, spawn). */
  readonly signal: AbortSignal;
  /** 1 for the first attempt, 2 for the first retry... */
  readonly attempt: number;
  /** The item's position in the input (0-based). */
  readonly index: number;
}

/** Options of {@link fanOut}. */
export interface FanOutOptions {
  /** How many tasks run at once. Default: the machine's available parallelism. */
  concurrency?: number;
  /** Deadline of one attempt (ms); its signal aborts then and the attempt fails. Default: none. */
  timeoutMs?: number;
  /** Further attempts after a failed one (a throw or a timeout). Default 0. */
  retries?: number;
  /** Delay between attempts of one item. Default: 100 ms doubling, capped at 5 s, with equal jitter. */
  backoff?: BackoffOptions;
  /** Whether a failure is worth another attempt. Default: every failure is. */
  retryIf?: (error: unknown) => boolean;
  /** Cancels the run: in-flight tasks see their signal abort, items not started are not started. */
  signal?: AbortSignal;
  /** Called as items start, retry and settle: for progress bars and logs. Must not throw. */
  onEvent?: (event: FanOutEvent) => void;
}

/** Progress of a run, one event at a time. */
export type FanOutEvent =
  | { readonly type: 'started'; readonly index: number; readonly attempt: number }
  | { readonly type: 'retrying'; readonly index: number; readonly attempt: number; readonly error: unknown }
  | { readonly type: 'settled'; readonly index: number; readonly status: ItemStatus };

/** How an item ended: its task succeeded, failed on its last attempt, or was cut short by cancellation. */
export type ItemStatus = 'ok' | 'failed' | 'cancelled';

/** The outcome of one item. */
export type ItemOutcome<T, R> =
  | (OutcomeBase<T> & { readonly status: 'ok'; readonly value: R })
  | (OutcomeBase<T> & { readonly status: 'failed' | 'cancelled'; readonly error: unknown });

interface OutcomeBase<T> {
  readonly item: T;
  readonly index: number;
  /** Attempts made (0 when cancelled before it started). */
  readonly attempts: number;
  /** From the first attempt's start to the item's end, retries and their delays included (ms). */
  readonly durationMs: number;
}

/** What {@link fanOut} returns: every item's outcome in input order, and the counts. */
export interface FanOutReport<T, R> {
  readonly outcomes: ReadonlyArray<ItemOutcome<T, R>>;
  readonly ok: number;
  readonly failed: number;
  readonly cancelled: number;
  /** Items that needed more than one attempt (whatever their end). */
  readonly retried: number;
  /** Wall time of the whole run (ms). */
  readonly durationMs: number;
}

const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 100, maxMs: 5_000, jitter: 'equal' };

/**
 * Run `task` on every item, at most `concurrency` at a time, and resolve once every item has an outcome:
 * a failing item never stops the others (check `failed` or each outcome), and the call rejects only on bad
 * options. Items may be an async iterable (lines of stdin): it is read only as slots free up, so a long
 * stream is never held in memory ahead of the work. A task should honour `ctx.signal`; one that does not
 * is left running in the background when its attempt times out or the run is cancelled, and its slot is
 * given to the next item, so the caller is never held hostage by it.
 *
 * ```ts
 * const report = await fanOut(vms, (vm, { signal }) => restart(vm, { signal }), {
 *   concurrency: 16, timeoutMs: 30_000, retries: 2, signal,
 * });
 * if (report.failed > 0) process.exitCode = 1;
 * ```
 */
export async function fanOut<T, R>(
  items: Iterable<T> | AsyncIterable<T>,
  task: (item: T, ctx: TaskContext) => Promise<R> | R,
  options: FanOutOptions = {},
): Promise<FanOutReport<T, R>> {
  const concurrency = options.concurrency ?? availableParallelism();
  const retries = options.retries ?? 0;
  const { timeoutMs } = options;
  const problems = [
    !Number.isInteger(concurrency) || concurrency < 1
      ? `concurrency must be a whole number from 1 up, got ${concurrency}`
      : '',
    !Number.isInteger(retries) || retries < 0
      ? `retries must be a whole number from 0 up, got ${retries}`
      : '',
    timeoutMs !== undefined && !(timeoutMs > 0 && timeoutMs <= 2 ** 31 - 1)
      ? `timeoutMs must be above 0 and below 2^31, got ${timeoutMs}`
      : '',
  ].filter(Boolean);
  if (problems.length > 0)
    throw new AutomationError(AutomationErrorCode.invalid, `fanOut: ${problems.join('; ')}`);

  const started = performance.now();
  const runSignal = options.signal;
  const backoff = options.backoff ?? DEFAULT_BACKOFF;
  const retryIf = options.retryIf ?? (() => true);
  const emit = options.onEvent ?? (() => {});
  const outcomes: Array<ItemOutcome<T, R>> = [];
  const cancelled = () =>
    new AutomationError(AutomationErrorCode.cancelled, 'cancelled before it finished', {
      cause: runSignal?.reason,
    });

  const runItem = async (item: T, index: number): Promise<ItemOutcome<T, R>> => {
    const itemStarted = performance.now();
    const base = () => ({ item, index, durationMs: performance.now() - itemStarted });
    for (let attempt = 1; ; attempt++) {
      if (runSignal?.aborted)
        return { ...base(), attempts: attempt - 1, status: 'cancelled', error: cancelled() };
      emit({ type: 'started', index, attempt });
      const result = await attemptOnce(item, index, attempt);
      if (result.ok) return { ...base(), attempts: attempt, status: 'ok', value: result.value };
      if (runSignal?.aborted)
        return { ...base(), attempts: attempt, status: 'cancelled', error: cancelled() };
      if (attempt > retries || !retryIf(result.error)) {
        return { ...base(), attempts: attempt, status: 'failed', error: result.error };
      }
      emit({ type: 'retrying', index, attempt: attempt + 1, error: result.error });
      await sleep(backoffDelay(attempt - 1, backoff), runSignal);
    }
  };

  const attemptOnce = (
    item: T,
    index: number,
    attempt: number,
  ): Promise<{ ok: true; value: R } | { ok: false; error: unknown }> => {
    const own = new AbortController();
    const signal = runSignal ? AbortSignal.any([runSignal, own.signal]) : own.signal;
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const settle = (outcome: { ok: true; value: R } | { ok: false; error: unknown }) => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        resolve(outcome);
      };
      // Whichever comes first: the task settles, its deadline passes, or the run is cancelled.
      const onAbort = () => settle({ ok: false, error: signal.reason });
      signal.addEventListener('abort', onAbort, { once: true });
      if (timeoutMs !== undefined) {
        timer = setTimeout(
          () =>
            own.abort(
              new AutomationError(
                AutomationErrorCode.timeout,
                `attempt ${attempt} timed out after ${timeoutMs} ms`,
              ),
            ),
          timeoutMs,
        );
      }
      Promise.resolve()
        .then(() => task(item, { signal, attempt, index }))
        .then(
          (value) => settle({ ok: true, value }),
          (error: unknown) => settle({ ok: false, error }),
        );
    });
  };

  // A pool of `concurrency` workers pulling from one shared iterator: no queue of pending promises, and an
  // async source is read no faster than the work goes.
  const iterator =
    Symbol.asyncIterator in items
      ? (items as AsyncIterable<T>)[Symbol.asyncIterator]()
      : (items as Iterable<T>)[Symbol.iterator]();
  let next = 0;
  let exhausted = false;
  let pulling: Promise<void> = Promise.resolve();
  const pull = async (): Promise<{ item: T; index: number } | undefined> => {
    // Async iterators may not be called concurrently: chain the pulls.
    const turn = pulling.then(async () => {
      if (exhausted || runSignal?.aborted) return undefined;
      const r = await iterator.next();
      if (r.done) {
        exhausted = true;
        return undefined;
      }
      return { item: r.value, index: next++ };
    });
    pulling = turn.then(
      () => {},
      () => {},
    );
    return turn;
  };
  const worker = async () => {
    for (;;) {
      const got = await pull();
      if (!got) return;
      const outcome = await runItem(got.item, got.index);
      outcomes[got.index] = outcome;
      emit({ type: 'settled', index: got.index, status: outcome.status });
    }
  };
  try {
    await Promise.all(Array.from({ length: concurrency }, worker));
  } finally {
    if (!exhausted) await iterator.return?.();
  }
  // Items of an array never reached because the run was cancelled still get an outcome.
  if (!exhausted && runSignal?.aborted && Array.isArray(items)) {
    for (let index = next; index < items.length; index++) {
      outcomes[index] = {
        item: items[index] as T,
        index,
        attempts: 0,
        durationMs: 0,
        status: 'cancelled',
        error: cancelled(),
      };
    }
  }
  let ok = 0;
  let failed = 0;
  let cancelledCount = 0;
  let retried = 0;
  for (const o of outcomes) {
    if (o.status === 'ok') ok++;
    else if (o.status === 'failed') failed++;
    else cancelledCount++;
    if (o.attempts > 1) retried++;
  }
  return {
    outcomes,
    ok,
    failed,
    cancelled: cancelledCount,
    retried,
    durationMs: performance.now() - started,
  };
}
