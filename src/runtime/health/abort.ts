import { HealthError } from './errors.ts';

/**
 * Settle with `promise`, or reject as soon as `signal` aborts. The promise itself keeps running:
 * used for work that cannot be cancelled (a user's pool, getaddrinfo), so a probe never waits on it.
 */
export function raceAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    promise.catch(() => {});
    return Promise.reject(abortReason(signal));
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortReason(signal));
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

/** The signal's reason as an Error (a bare `abort()` gives a DOMException; keep it, it has a message). */
export function abortReason(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof Error) return reason;
  return new HealthError('CAP_ERR_RUNTIME_HEALTH_ABORTED', `aborted: ${String(reason)}`);
}
