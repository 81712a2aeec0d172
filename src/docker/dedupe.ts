/**
 * Remembers what was delivered in the last `overlapMs`, as a multiset of (timestamp, stream, text), so a
 * reconnect that asks from `max - overlap` can drop exactly what was already delivered and nothing else.
 * The hot path only appends to a window; the lookup map is built when a reconnect starts.
 */
export class Deduper {
  readonly #windowNs: bigint;
  #order: Array<{ ns: bigint; stream: string; text: string }> = [];
  #head = 0;
  #replay: Map<string, number> | undefined;
  /** Largest timestamp delivered before the current connection began (replay applies up to it). */
  #replayMax: bigint | undefined;
  maxNs: bigint | undefined;
  dropped = 0;

  constructor(overlapMs: number) {
    this.#windowNs = BigInt(Math.round(overlapMs * 1e6));
  }

  /** `since` for the next connection, or undefined before anything was seen. */
  resumeFrom(): bigint | undefined {
    return this.maxNs === undefined ? undefined : this.maxNs - this.#windowNs;
  }

  /** Start a new connection: what was seen in the window may come again and must be dropped. */
  beginReplay(): void {
    const replay = new Map<string, number>();
    for (let i = this.#head; i < this.#order.length; i++) {
      const e = this.#order[i]!;
      const key = `${e.ns}|${e.stream}|${e.text}`;
      replay.set(key, (replay.get(key) ?? 0) + 1);
    }
    this.#replay = replay;
    this.#replayMax = this.maxNs;
    this.dropped = 0;
  }

  /** True if the line is new; records it. */
  admit(ns: bigint, stream: string, text: string): boolean {
    if (this.#replay && this.#replayMax !== undefined && ns <= this.#replayMax) {
      const key = `${ns}|${stream}|${text}`;
      const left = this.#replay.get(key) ?? 0;
      if (left > 0) {
        this.#replay.set(key, left - 1);
        this.dropped++;
        return false;
      }
    }
    this.#order.push({ ns, stream, text });
    if (this.maxNs === undefined || ns > this.maxNs) {
      this.maxNs = ns;
      this.#prune();
    }
    return true;
  }

  #prune(): void {
    const floor = (this.maxNs ?? 0n) - this.#windowNs;
    while (this.#head < this.#order.length && this.#order[this.#head]!.ns < floor) this.#head++;
    // Compact now and then so the array does not grow without bound.
    if (this.#head > 4096 && this.#head * 2 > this.#order.length) {
      this.#order = this.#order.slice(this.#head);
      this.#head = 0;
    }
  }
}
