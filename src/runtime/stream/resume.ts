import { StreamError, StreamErrorCode } from './errors.ts';

/**
 * Where a {@link resumable} stream picks up after a reconnect, and which replayed items it drops. The stream
 * calls `resumePoint()` before each connection, `beginReplay()` before every one but the first, and `admit()`
 * for each item it received; only admitted items are delivered.
 */
export interface ResumeTracker<T, P> {
  /** Where the next connection starts, or undefined before anything was seen. */
  resumePoint(): P | undefined;
  /** A new connection begins: what it replays of the items already delivered must be dropped. */
  beginReplay(): void;
  /** Record an item; false when it is a replayed duplicate to drop. */
  admit(item: T): boolean;
  /** Duplicates dropped since the last {@link beginReplay}. */
  readonly dropped: number;
}

/**
 * Resume from the position of the last item, dropping nothing: for sources whose resume point is exclusive
 * and exact (a Kubernetes `resourceVersion`, a Consul index). Items whose position is undefined do not move it.
 */
export function resumeFromLast<T, P>(position: (item: T) => P | undefined): ResumeTracker<T, P> {
  let last: P | undefined;
  return {
    resumePoint: () => last,
    beginReplay: () => {},
    admit(item) {
      last = position(item) ?? last;
      return true;
    },
    dropped: 0,
  };
}

/** Options of {@link OverlapDedupe}. */
export interface OverlapDedupeOptions<T> {
  /**
   * How far before the latest position a reconnect starts, in the position's unit (e.g. 1 s as ns), to catch
   * items a source stamped slightly out of order. Items already delivered in that window are dropped.
   */
  overlap: bigint;
  /**
   * The item's position (a timestamp). Undefined: the item is not part of the source's order (e.g. one made
   * up locally): always delivered, never remembered, and it does not move the resume point.
   */
  position(item: T): bigint | undefined;
  /** What makes two items at the same position the same item (e.g. `stream|text`). */
  key(item: T): string;
}

/**
 * A {@link ResumeTracker} for sources that can only resume from an inclusive, coarse point (a timestamp): it
 * resumes at `latest − overlap` and remembers what it delivered in that window as a multiset of
 * (position, key), so a replay drops exactly what was delivered: two identical items at the same instant are
 * both real, and an item first seen in the replay is new. The hot path only appends to a window; keys are
 * computed when a reconnect starts, and for replayed items only.
 */
export class OverlapDedupe<T> implements ResumeTracker<T, bigint> {
  readonly #overlap: bigint;
  readonly #position: (item: T) => bigint | undefined;
  readonly #key: (item: T) => string;
  #window: Array<{ at: bigint; item: T }> = [];
  #head = 0;
  #replay: Map<string, number> | undefined;
  /** Largest position delivered before the current connection began: replayed items are at or before it. */
  #replayMax: bigint | undefined;
  #latest: bigint | undefined;
  #dropped = 0;

  constructor(options: OverlapDedupeOptions<T>) {
    if (options.overlap < 0n)
      throw new StreamError(StreamErrorCode.invalid, `overlap must be >= 0, got ${options.overlap}`);
    this.#overlap = options.overlap;
    this.#position = options.position;
    this.#key = options.key;
  }

  /** Largest position delivered so far. */
  get latest(): bigint | undefined {
    return this.#latest;
  }

  get dropped(): number {
    return this.#dropped;
  }

  resumePoint(): bigint | undefined {
    return this.#latest === undefined ? undefined : this.#latest - this.#overlap;
  }

  beginReplay(): void {
    const replay = new Map<string, number>();
    for (let i = this.#head; i < this.#window.length; i++) {
      const e = this.#window[i]!;
      const key = `${e.at}|${this.#key(e.item)}`;
      replay.set(key, (replay.get(key) ?? 0) + 1);
    }
    this.#replay = replay;
    this.#replayMax = this.#latest;
    this.#dropped = 0;
  }

  admit(item: T): boolean {
    const at = this.#position(item);
    if (at === undefined) return true;
    if (this.#replay && this.#replayMax !== undefined && at <= this.#replayMax) {
      const key = `${at}|${this.#key(item)}`;
      const left = this.#replay.get(key) ?? 0;
      if (left > 0) {
        this.#replay.set(key, left - 1);
        this.#dropped++;
        return false;
      }
    }
    this.#window.push({ at, item });
    if (this.#latest === undefined || at > this.#latest) {
      this.#latest = at;
      this.#prune();
    }
    return true;
  }

  #prune(): void {
    const floor = (this.#latest ?? 0n) - this.#overlap;
    while (this.#head < this.#window.length && this.#window[this.#head]!.at < floor) this.#head++;
    // Compact now and then so the array does not grow without bound.
    if (this.#head > 4096 && this.#head * 2 > this.#window.length) {
      this.#window = this.#window.slice(this.#head);
      this.#head = 0;
    }
  }
}
