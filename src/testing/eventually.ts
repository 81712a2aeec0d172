import { setTimeout as sleep } from 'node:timers/promises';

/** Options of {@link eventually}. */
export interface EventuallyOptions {
  /** Give up after this long. Default 60 s. */
  timeoutMs?: number;
  /** Pause between probes. Default 250 ms. */
  intervalMs?: number;
  /** Appended to the failure message: the state worth seeing when it times out (a log tail, a listing). */
  context?: () => string;
}

/**
 * Probe until `probe` gives a value (anything but `undefined` or `false`) and return it; a probe that
 * throws counts as "not yet", and its last error is in the failure message. Fails with
 * `<what>: not within <timeoutMs> ms` after the timeout: tests wait for states, never for durations.
 */
export async function eventually<T>(
  what: string,
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  options: EventuallyOptions = {},
): Promise<T> {
  const { timeoutMs = 60_000, intervalMs = 250 } = options;
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      const cause =
        last === undefined ? '' : ` (last error: ${last instanceof Error ? last.message : String(last)})`;
      const context = options.context?.();
      throw new Error(`${what}: not within ${timeoutMs} ms${cause}${context ? `\n${context}` : ''}`, {
        cause: last,
      });
    }
    await sleep(intervalMs);
  }
}
