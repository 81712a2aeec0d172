// Cardinality guard: caps the number of label sets (series) a prom-client metric may hold.
//
// prom-client keeps every series in `metric.hashMap` and every write path (inc, set, observe,
// labels().x, startTimer, zero) ends in an assignment to `hashMap[hash]`. Trapping that assignment
// with a Proxy catches all of them, including paths that bypass the public methods (Histogram's
// labels().observe). Reads stay untrapped, so the hot path only pays for the Proxy indirection.

/** What a dropped write looked like, passed to `onDrop` callbacks. */
export interface DropInfo {
  /** Metric name. */
  metric: string;
  /** Label set that would have created a series beyond the limit. */
  labels: Readonly<Record<string, unknown>>;
  /** The series limit in force. */
  limit: number;
}

/** Called when a write is dropped by the cardinality guard. */
export type OnDrop = (info: DropInfo) => void;

interface GuardState {
  limit: number;
  reporters: Array<(labels: Record<string, unknown>) => void>;
}

const kRaw = Symbol('capstan.metrics.rawHashMap');
const kGuard = Symbol('capstan.metrics.guard');
const kIndex = Symbol('capstan.metrics.seriesIndex');

/**
 * One series of a guarded metric: prom-client's current entry object plus what the serializer cached for
 * it. prom-client replaces the entry on every `Gauge.set()`; the slot (keyed by prom-client's label hash)
 * survives that, so the rendered line prefix does too.
 */
export interface SeriesSlot {
  entry: unknown;
  [cache: symbol]: unknown;
}

interface Guardable {
  name: string;
  hashMap: Record<string, unknown>;
  [kRaw]?: Record<string, unknown>;
  [kGuard]?: GuardState;
  [kIndex]?: Map<string, SeriesSlot>;
}

/**
 * The guarded metric's series in insertion order, kept in step with its hash map by the guard (a Map
 * iterates several times faster than `Object.values` over prom-client's dictionary-mode map). Undefined for
 * unguarded metrics.
 */
export function seriesIndex(metric: object): Map<string, SeriesSlot> | undefined {
  return (metric as Partial<Guardable>)[kIndex];
}

/** The metric's series map without the guard's Proxy in front (fast iteration for exposition). */
export function rawSeries(metric: object): Record<string, unknown> | undefined {
  const raw = (metric as Partial<Guardable>)[kRaw];
  if (raw) return raw;
  const map = (metric as { hashMap?: unknown }).hashMap;
  return map && typeof map === 'object' ? (map as Record<string, unknown>) : undefined;
}

/**
 * Limit `metric` to `limit` series. Writes that would add a series beyond it are dropped and
 * `report` is called with their labels. Installing twice (a metric in two registries) keeps the
 * lower limit and reports to both.
 */
export function installSeriesGuard(
  metric: { name: string; hashMap?: unknown },
  limit: number,
  report: (labels: Record<string, unknown>) => void,
): void {
  const m = metric as Guardable;
  const existing = m[kGuard];
  if (existing) {
    existing.limit = Math.min(existing.limit, limit);
    existing.reporters.push(report);
    return;
  }
  const state: GuardState = { limit, reporters: [report] };
  // Series of the current target; rebuilt when prom-client swaps the map (reset()).
  let index = new Map<string, SeriesSlot>();
  let proxy: Record<string, unknown> = {};
  const handler: ProxyHandler<Record<string, unknown>> = {
    set(target, key, value) {
      if (typeof key === 'string') {
        const slot = index.get(key);
        if (slot) {
          slot.entry = value;
        } else {
          if (index.size >= state.limit) {
            const labels = (value as { labels?: Record<string, unknown> } | undefined)?.labels ?? {};
            for (const r of state.reporters) r(labels);
            return true;
          }
          index.set(key, { entry: value });
        }
      }
      target[key as string] = value;
      return true;
    },
    deleteProperty(target, key) {
      if (typeof key === 'string') index.delete(key);
      delete target[key as string];
      return true;
    },
  };
  const install = (map: unknown) => {
    const target = (map && typeof map === 'object' ? map : {}) as Record<string, unknown>;
    index = new Map(Object.entries(target).map(([k, entry]) => [k, { entry }]));
    proxy = new Proxy(target, handler);
    m[kRaw] = target;
    m[kIndex] = index;
  };
  install(m.hashMap);
  m[kGuard] = state;
  Object.defineProperty(m, 'hashMap', {
    configurable: true,
    enumerable: true,
    get: () => proxy,
    set: install,
  });
}
