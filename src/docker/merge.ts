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
