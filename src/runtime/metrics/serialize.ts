// The exposition serializer: reads prom-client metrics (and cached collector families) and writes
// the text or OpenMetrics format in slices, so a 100k-series scrape never holds the event loop for
// long. prom-client builds an object per sample and joins arrays of strings (prom-client 543); here
// each series' label block is rendered once, cached on the series entry, and reused on every scrape.
import { setImmediate as nextTick } from 'node:timers/promises';
import { type ExpositionFormat, escapeHelp, formatValue, renderLabelPairs } from './format.ts';
import { rawSeries } from './guard.ts';

/** The parts of a prom-client metric the serializer reads. */
export interface PromMetricLike {
  name: string;
  help: string;
  type: string;
  unit?: string;
  hashMap?: unknown;
  upperBounds?: readonly number[];
  enableExemplars?: boolean;
  collect?: () => unknown;
  get(): Promise<{
    values?: ReadonlyArray<{ value: number; labels?: Record<string, unknown>; metricName?: string }>;
  }>;
}

/** One pre-rendered sample of a cached family: name suffix, rendered label pairs, value. */
export interface CachedSample {
  suffix: string;
  labels: string;
  value: number;
  /** The label object `labels` was rendered from; re-rendered when the registry has default labels. */
  raw?: Readonly<Record<string, unknown>>;
}

/** A metric family held outside prom-client (collector caches, collector health gauges). */
export interface CachedFamily {
  name: string;
  help: string;
  type: 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';
  unit?: string;
  samples: readonly CachedSample[];
}

/** Inputs of one scrape. */
export interface SerializeInput {
  metrics: readonly PromMetricLike[];
  families: () => readonly CachedFamily[];
  defaultLabels?: Readonly<Record<string, unknown>>;
  /**
   * Symbol under which rendered text is cached on series entries (one per registry): the whole
   * `name{labels} ` prefix for counters and gauges, the label block for histograms.
   */
  cacheKey: symbol;
  /** Second cache symbol, for OpenMetrics counters whose sample name differs from the text one. */
  altCacheKey: symbol;
}

/** How one scrape is written. */
export interface SerializeOptions {
  format: ExpositionFormat;
  /** Longest synchronous stretch before yielding to the event loop (ms). */
  sliceMs?: number;
  /** Target chunk size in characters. */
  chunkSize?: number;
  /** Encode chunks to UTF-8 Buffers (default true); false yields the strings, for callers that join them. */
  encode?: boolean;
  signal?: AbortSignal;
}

interface SeriesEntry {
  labels?: Record<string, unknown>;
  value: number;
  bucketValues?: Record<string, number>;
  sum?: number;
  count?: number;
  [key: symbol]: string | undefined;
}

const CHECK_EVERY = 128;

/**
 * Serialize a registry snapshot as an async iterable of UTF-8 chunks. Each chunk is built as a
 * string and encoded at once: the string's rope nodes die young instead of surviving into the old
 * generation, which kept GC pauses long when a whole 7 MB exposition was held as one rope. Between slices it yields with
 * `setImmediate`, so requests and timers run while a large exposition is written.
 */
export function serialize(
  input: SerializeInput,
  options: SerializeOptions & { encode: false },
): AsyncGenerator<string>;
export function serialize(input: SerializeInput, options: SerializeOptions): AsyncGenerator<Buffer>;
export async function* serialize(
  input: SerializeInput,
  options: SerializeOptions,
): AsyncGenerator<Buffer | string> {
  const om = options.format === 'openmetrics';
  const sliceMs = options.sliceMs ?? 5;
  const chunkSize = options.chunkSize ?? 64 * 1024;
  const signal = options.signal;
  const key = input.cacheKey;
  const defaults =
    input.defaultLabels && Object.keys(input.defaultLabels).length > 0 ? input.defaultLabels : undefined;
  let buf = '';
  let sliceStart = performance.now();

  // Called every CHECK_EVERY series: hands out a chunk when full, yields when the slice is spent.
  const out = options.encode === false ? (str: string) => str : (str: string) => Buffer.from(str, 'utf8');
  async function* checkpoint(): AsyncGenerator<Buffer | string> {
    if (buf.length >= chunkSize) {
      yield out(buf);
      buf = '';
    }
    if (performance.now() - sliceStart >= sliceMs) {
      if (buf) {
        yield out(buf);
        buf = '';
      }
      await nextTick();
      signal?.throwIfAborted();
      sliceStart = performance.now();
    }
  }

  const labelBlock = (e: SeriesEntry): string => {
    let ls = e[key];
    if (ls === undefined) {
      ls = renderLabelPairs(e.labels, defaults);
      e[key] = ls;
    }
    return ls;
  };

  // Run every piece of user code first (collect() hooks, get() of metrics without a fast path), all
  // at once as prom-client does. Once writing starts nothing can fail but an abort, so a failing hook
  // becomes an error before the first byte (a 500), never a truncated exposition.
  const fast = (m: PromMetricLike): boolean =>
    !m.enableExemplars &&
    rawSeries(m) !== undefined &&
    (m.type === 'counter' || m.type === 'gauge' || (m.type === 'histogram' && m.upperBounds !== undefined));
  const prepared = await Promise.all(
    input.metrics.map(async (m) => {
      if (!fast(m)) return (await m.get()).values ?? [];
      if (typeof m.collect === 'function') await m.collect();
      return undefined;
    }),
  );

  for (let mi = 0; mi < input.metrics.length; mi++) {
    const metric = input.metrics[mi]!;
    signal?.throwIfAborted();
    const type = metric.type;
    const series = rawSeries(metric);
    const family = om && type === 'counter' ? metric.name.replace(/_total$/, '') : metric.name;
    buf += header(family, metric.help, type, metric.unit, om);

    const generic = prepared[mi];
    if (generic === undefined && (type === 'counter' || type === 'gauge') && series) {
      const sampleName = om && type === 'counter' ? `${family}_total` : metric.name;
      // Caching the whole line prefix halves the strings made per line (GC is most of the cost).
      const k = sampleName === metric.name ? key : input.altCacheKey;
      const entries = Object.values(series) as SeriesEntry[];
      for (let i = 0; i < entries.length; i++) {
        const e = entries[i]!;
        let prefix = e[k];
        if (prefix === undefined) {
          const ls = renderLabelPairs(e.labels, defaults);
          prefix = ls ? `${sampleName}{${ls}} ` : `${sampleName} `;
          e[k] = prefix;
        }
        buf += prefix + formatValue(e.value) + '\n';
        if (i % CHECK_EVERY === CHECK_EVERY - 1) yield* checkpoint();
      }
    } else if (generic === undefined && type === 'histogram' && series && metric.upperBounds) {
      const bounds = metric.upperBounds;
      const boundKeys = bounds.map(String);
      const leValues = bounds.map(formatValue);
      const bucketName = `${metric.name}_bucket{`;
      const entries = Object.values(series) as SeriesEntry[];
      for (let i = 0; i < entries.length; i++) {
        const e = entries[i]!;
        const ls = labelBlock(e);
        const prefix = ls ? `${bucketName}${ls},le="` : `${bucketName}le="`;
        const bv = e.bucketValues ?? {};
        let cum = 0;
        for (let b = 0; b < boundKeys.length; b++) {
          cum += bv[boundKeys[b]!] ?? 0;
          buf += `${prefix}${leValues[b]}"} ${cum}\n`;
        }
        const braces = ls ? `{${ls}}` : '';
        buf += `${prefix}+Inf"} ${e.count ?? 0}\n${metric.name}_sum${braces} ${formatValue(e.sum ?? 0)}\n${metric.name}_count${braces} ${e.count ?? 0}\n`;
        if (i % 16 === 15) yield* checkpoint();
      }
    } else {
      // Summaries, exemplar-enabled metrics and foreign metric objects: their own get() output.
      const values = generic ?? [];
      for (let i = 0; i < values.length; i++) {
        const v = values[i]!;
        let name = v.metricName ?? metric.name;
        if (om && type === 'counter' && name === metric.name) name = `${family}_total`;
        const ls = renderLabelPairs(v.labels, defaults);
        buf += `${name}${ls ? `{${ls}}` : ''} ${formatValue(v.value)}\n`;
        if (i % CHECK_EVERY === CHECK_EVERY - 1) yield* checkpoint();
      }
    }
    yield* checkpoint();
  }

  for (const fam of input.families()) {
    signal?.throwIfAborted();
    const family = om && fam.type === 'counter' ? fam.name.replace(/_total$/, '') : fam.name;
    buf += header(family, fam.help, fam.type, fam.unit, om);
    const base = om && fam.type === 'counter' ? `${family}_total` : fam.name;
    const samples = fam.samples;
    for (let i = 0; i < samples.length; i++) {
      const s = samples[i]!;
      const ls = defaults ? renderLabelPairs(s.raw, defaults) : s.labels;
      buf += `${base}${s.suffix}${ls ? `{${ls}}` : ''} ${formatValue(s.value)}\n`;
      if (i % CHECK_EVERY === CHECK_EVERY - 1) yield* checkpoint();
    }
    yield* checkpoint();
  }

  if (om) buf += '# EOF\n';
  if (buf) yield out(buf);
}

function header(family: string, help: string, type: string, unit: string | undefined, om: boolean): string {
  const format = om ? 'openmetrics' : 'text';
  let out = `# HELP ${family} ${escapeHelp(help, format)}\n`;
  const t = type === 'untyped' || !KNOWN_TYPES.has(type) ? (om ? 'unknown' : 'untyped') : type;
  out += `# TYPE ${family} ${t}\n`;
  if (om && unit && family.endsWith(`_${unit}`)) out += `# UNIT ${family} ${unit}\n`;
  return out;
}

const KNOWN_TYPES = new Set(['counter', 'gauge', 'histogram', 'summary']);
