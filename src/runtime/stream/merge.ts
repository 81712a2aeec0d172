/**
 * Interleave several async iterables into one, yielding values as each source produces them. Ends when
 * all sources end; the first error ends the merge (the other sources are closed).
 */
export async function* mergeAsync<T>(sources: AsyncIterable<T>[]): AsyncGenerator<T> {
  const iterators = sources.map((s) => s[Symbol.asyncIterator]());
  type Step = { index: number; result: IteratorResult<T> };
  const pending = new Map<number, Promise<Step>>();
  const pull = (index: number) => {
    pending.set(
      index,
      iterators[index]!.next().then((result) => ({ index, result })),
    );
  };
  for (let i = 0; i < iterators.length; i++) pull(i);
  try {
    while (pending.size > 0) {
      const { index, result } = await Promise.race(pending.values());
      if (result.done) {
        pending.delete(index);
        continue;
      }
      pull(index);
      yield result.value;
    }
  } finally {
    // Close whatever is still running (consumer stopped early or one source threw). Not awaited: a
    // generator's return() waits for its pending next(), which may be blocked on a quiet stream until
    // the caller's AbortSignal fires.
    for (const i of pending.keys()) iterators[i]!.return?.()?.catch(() => {});
  }
}

/**
 * A merge whose sources can be added while it runs (containers that appear later). It ends when every source
 * has ended; sources added after that are closed unread. The first error ends it (the other sources are
 * closed).
 */
export class MergeSet<T> implements AsyncIterable<T> {
  readonly #iterators = new Map<number, AsyncIterator<T>>();
  readonly #pending = new Map<number, Promise<{ index: number; result: IteratorResult<T> }>>();
  #nextIndex = 0;
  #wake: (() => void) | undefined;
  #ended = false;

  /** Add a source; false when the merge already ended (the source is closed). */
  add(source: AsyncIterable<T>): boolean {
    const iterator = source[Symbol.asyncIterator]();
    if (this.#ended) {
      iterator.return?.()?.catch(() => {});
      return false;
    }
    const index = this.#nextIndex++;
    this.#iterators.set(index, iterator);
    this.#pull(index);
    this.#wake?.();
    return true;
  }

  #pull(index: number): void {
    this.#pending.set(
      index,
      this.#iterators
        .get(index)!
        .next()
        .then((result) => ({ index, result })),
    );
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<T> {
    try {
      while (this.#pending.size > 0) {
        // A source added while we wait must join the race: the wake promise restarts it.
        const woken = new Promise<undefined>((resolve) => {
          this.#wake = () => resolve(undefined);
        });
        const step = await Promise.race([...this.#pending.values(), woken]);
        this.#wake = undefined;
        if (step === undefined) continue;
        if (step.result.done) {
          this.#pending.delete(step.index);
          this.#iterators.delete(step.index);
          continue;
        }
        this.#pull(step.index);
        yield step.result.value;
      }
    } finally {
      this.#ended = true;
      for (const i of this.#pending.keys())
        this.#iterators
          .get(i)
          ?.return?.()
          ?.catch(() => {});
    }
  }
}
