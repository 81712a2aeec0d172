/**
 * Remembers what was delivered in the last `overlapMs`, as a multiset of (timestamp, stream, text), so a
 * reconnect that asks from `max - overlap` can drop exactly what was already delivered and nothing else.
 */
export class Deduper {
  readonly #windowNs: bigint;
  readonly #seen = new Map<string, number>();
  readonly #order: Array<{ ns: bigint; key: string }> = [];
  #head = 0;
  #replay: Map<string, number> | undefined;
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
    this.#replay = new Map(this.#seen);
    this.dropped = 0;
  }

  /** True if the line is new; records it. */
  admit(ns: bigint, stream: string, text: string): boolean {
    const key = `${ns}|${stream}|${text}`;
    if (this.#replay && this.maxNs !== undefined && ns <= this.maxNs) {
      const left = this.#replay.get(key) ?? 0;
      if (left > 0) {
        this.#replay.set(key, left - 1);
        this.dropped++;
        return false;
      }
    }
    this.#seen.set(key, (this.#seen.get(key) ?? 0) + 1);
    this.#order.push({ ns, key });
    if (this.maxNs === undefined || ns > this.maxNs) this.maxNs = ns;
    this.#prune();
    return true;
  }

  #prune(): void {
    const floor = (this.maxNs ?? 0n) - this.#windowNs;
    while (this.#head < this.#order.length && this.#order[this.#head]!.ns < floor) {
      const { key } = this.#order[this.#head]!;
      const n = (this.#seen.get(key) ?? 1) - 1;
      if (n <= 0) this.#seen.delete(key);
      else this.#seen.set(key, n);
      this.#head++;
    }
    // Compact now and then so the array does not grow without bound.
    if (this.#head > 4096 && this.#head * 2 > this.#order.length) {
      this.#order.splice(0, this.#head);
      this.#head = 0;
    }
  }
}
