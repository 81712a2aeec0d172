// Reading a discovery source's events in tests: one watch, `next()` for the next event, `until()` for the
// first event that satisfies a predicate (the ones before it are returned too, for assertions).
import type { DiscoveryEvent, DiscoverySource } from '../source.ts';

export interface EventReader {
  next(): Promise<DiscoveryEvent>;
  until(predicate: (e: DiscoveryEvent) => boolean, max?: number): Promise<DiscoveryEvent[]>;
  stop(): Promise<void>;
}

export function readEvents(source: DiscoverySource): EventReader {
  const stop = new AbortController();
  const it = source.watch({ signal: stop.signal })[Symbol.asyncIterator]();
  const next = async () => {
    const r = await it.next();
    if (r.done) throw new Error(`${source.description}: watch ended`);
    return r.value;
  };
  return {
    next,
    async until(predicate, max = 1000) {
      const seen: DiscoveryEvent[] = [];
      for (let i = 0; i < max; i++) {
        const e = await next();
        seen.push(e);
        if (predicate(e)) return seen;
      }
      throw new Error(`${source.description}: no matching event in ${max}`);
    },
    async stop() {
      stop.abort();
      await it.return?.();
    },
  };
}

/** `address:port/weight/health` of each endpoint of a snapshot, for compact assertions. */
export function summary(e: DiscoveryEvent): string[] {
  if (e.type !== 'snapshot') throw new Error(`expected a snapshot, got ${e.type}: ${e.error.message}`);
  return e.endpoints.map((x) => `${x.address}:${x.port}/${x.weight}/${x.health}`);
}
