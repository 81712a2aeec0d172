// Small AbortSignal helpers shared by health, lifecycle, stream and the areas: one implementation each.

/**
 * Wait `ms`, or less if `signal` aborts first. Resolves true when the time passed and false when aborted
 * (never rejects), and clears its timer on abort, so a stopped retry loop leaves nothing pending.
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<boolean> {
  if (signal?.aborted) return Promise.resolve(false);
  return new Promise<boolean>((resolve) => {
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * A controller that also aborts (with the same reason) as soon as any of `signals` does: for a task that
 * stops on its caller's signal and on its own `close()`. Built on `AbortSignal.any`, which holds its parents
 * weakly, so linking to a long-lived signal once per request leaves nothing behind on it.
 */
export function linkedController(...signals: Array<AbortSignal | undefined>): AbortController {
  const own = new AbortController();
  const parents = signals.filter((s): s is AbortSignal => s !== undefined);
  const signal = parents.length === 0 ? own.signal : AbortSignal.any([...parents, own.signal]);
  return { signal, abort: (reason?: unknown) => own.abort(reason) };
}

/**
 * The signal's reason as an Error. A reason that is not an Error (`abort('why')`) is passed to `wrap`, so
 * each module raises its own error class; without `wrap` it becomes a DOMException named `AbortError`.
 */
export function abortReason(signal: AbortSignal, wrap?: (reason: unknown) => Error): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof Error) return reason;
  return wrap ? wrap(reason) : new DOMException(`aborted: ${String(reason)}`, 'AbortError');
}

/**
 * Settle with `promise`, or reject with {@link abortReason} as soon as `signal` aborts. The promise itself
 * keeps running: for work that cannot be cancelled (a user's pool, getaddrinfo), so a caller never waits on it.
 */
export function raceAbort<T>(
  promise: Promise<T>,
  signal: AbortSignal,
  wrap?: (reason: unknown) => Error,
): Promise<T> {
  if (signal.aborted) {
    promise.catch(() => {});
    return Promise.reject(abortReason(signal, wrap));
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortReason(signal, wrap));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}

/** A {@link deadline}: aborted when it is reached, with a promise that resolves then. */
export interface Deadline {
  /** Aborted when the deadline is reached (or `hurry` aborts). */
  readonly signal: AbortSignal;
  /** Resolves when the deadline is reached; never rejects. */
  readonly reached: Promise<void>;
  /** Stop the timer and the `hurry` listener (the deadline is no longer needed). */
  clear(): void;
}

/**
 * A deadline `ms` from now as a signal plus a promise. Unlike `AbortSignal.timeout` its timer is ref'd: work
 * that hangs on nothing must not let the process exit early (shutdown hooks would be skipped). `hurry` ends
 * it at once; `reason` makes the abort reason (default: a TimeoutError DOMException).
 */
export function deadline(ms: number, options: { hurry?: AbortSignal; reason?: () => Error } = {}): Deadline {
  const { hurry } = options;
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  let onHurry: (() => void) | undefined;
  const reached = new Promise<void>((resolve) => {
    const fire = () => {
      clearTimeout(timer);
      controller.abort(
        options.reason?.() ?? new DOMException(`deadline of ${ms} ms reached`, 'TimeoutError'),
      );
      resolve();
    };
    if (hurry?.aborted) return fire();
    timer = setTimeout(fire, ms);
    if (hurry) {
      onHurry = fire;
      hurry.addEventListener('abort', onHurry, { once: true });
    }
  });
  return {
    signal: controller.signal,
    reached,
    clear: () => {
      clearTimeout(timer);
      if (onHurry) hurry?.removeEventListener('abort', onHurry);
    },
  };
}

/** Wait for `work`, or until `ms` pass (or `hurry` aborts); true when the work finished first. */
export async function within(ms: number, work: Promise<unknown>, hurry?: AbortSignal): Promise<boolean> {
  const d = deadline(ms, hurry ? { hurry } : {});
  try {
    return await Promise.race([work.then(() => true), d.reached.then(() => false)]);
  } finally {
    d.clear();
  }
}
