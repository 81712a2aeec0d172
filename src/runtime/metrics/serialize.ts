// The exposition serializer: reads prom-client metrics (and cached collector families) and writes
// the text or OpenMetrics format in slices, so a 100k-series scrape never holds the event loop for
// long. prom-client builds an object per sample and joins arrays of strings (prom-client 543); here
// each series' line prefix (`name{labels} `) is rendered and UTF-8 encoded once, cached on the series
// entry, and copied into 64 KiB chunk buffers on every scrape with the value's digits written in
// place: a scrape allocates almost nothing, so it costs no GC.
//
// A slice ends when it has taken `sliceMs` or written `sliceBytes`, whichever comes first: the time bound
// keeps the loop responsive on a slow machine, the byte bound makes the largest synchronous run a fixed
// amount of work on any machine (and lets a test check it without timing anything).
import { setImmediate as nextTick } from 'node:timers/promises';
import { type ExpositionFormat, escapeHelp, formatValue, renderLabelPairs } from './format.ts';
import { rawSeries, type SeriesSlot, seriesIndex } from './guard.ts';

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
  /** Longest synchronous stretch before yielding to the event loop (ms, default 5). */
  sliceMs?: number;
  /**
   * Most bytes written in one synchronous stretch before yielding (default {@link DEFAULT_SLICE_BYTES}); a
   * stretch ends at the first series boundary past it, so it may exceed it by one metric's header and one
   * series' lines.
   */
  sliceBytes?: number;
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
}

/** The rendered parts of one histogram series' lines. */
interface HistogramPrefix {
  /** `name_bucket{labels,` */
  bucket: Uint8Array;
  /** `name_sum{labels} ` */
  sum: Uint8Array;
  /** `name_count{labels} ` */
  count: Uint8Array;
}

/** The series of a metric with a place to cache rendered text: the guard's slots, else throwaway ones. */
function slotsOf(metric: PromMetricLike, series: Record<string, unknown>): Iterable<SeriesSlot> {
  return seriesIndex(metric)?.values() ?? Object.values(series).map((entry) => ({ entry }));
}

const utf8 = new TextEncoder();

/**
 * Appends bytes to fixed-size chunks. `need(n)` guarantees n free bytes (starting a new chunk when the
 * current one is short), so the writers below never check bounds per byte.
 */
class ChunkWriter {
  readonly #size: number;
  #chunk: Buffer;
  #pos = 0;
  /** Bytes already moved out of the current chunk (into `full` or handed out). */
  #moved = 0;
  readonly full: Buffer[] = [];

  constructor(size: number) {
    this.#size = size;
    this.#chunk = Buffer.allocUnsafe(size);
  }

  /** Bytes written since the writer was made. */
  get total(): number {
    return this.#moved + this.#pos;
  }

  need(n: number): void {
    if (this.#pos + n <= this.#chunk.length) return;
    if (this.#pos > 0) this.full.push(this.#chunk.subarray(0, this.#pos));
    this.#moved += this.#pos;
    this.#chunk = Buffer.allocUnsafe(Math.max(this.#size, n));
    this.#pos = 0;
  }

  /** Hand out everything written so far. */
  take(): Buffer[] {
    if (this.#pos > 0) {
      this.full.push(this.#chunk.subarray(0, this.#pos));
      this.#moved += this.#pos;
      this.#chunk = this.#chunk.subarray(this.#pos);
      this.#pos = 0;
      if (this.#chunk.length < 1024) this.#chunk = Buffer.allocUnsafe(this.#size);
    }
    return this.full.splice(0);
  }

  bytes(b: Uint8Array): void {
    this.need(b.length);
    this.#chunk.set(b, this.#pos);
    this.#pos += b.length;
  }

  /** Any string (label values may be any Unicode). */
  text(s: string): void {
    this.need(s.length * 3);
    this.#pos += this.#chunk.write(s, this.#pos, 'utf8');
  }

  /** A string known to be ASCII (numbers, fixed syntax): no encoder call. */
  ascii(s: string): void {
    this.need(s.length);
    const c = this.#chunk;
    let p = this.#pos;
    for (let i = 0; i < s.length; i++) c[p++] = s.charCodeAt(i);
    this.#pos = p;
  }

  byte(b: number): void {
    this.need(1);
    this.#chunk[this.#pos++] = b;
  }

  /** A sample value; integers (the common case: counters, bucket counts) are written digit by digit. */
  value(v: number): void {
    if (Number.isInteger(v) && v >= 0 && v < 1e15) {
      this.need(15);
      const c = this.#chunk;
      let p = this.#pos;
      if (v < 10) {
        c[p++] = 48 + v;
      } else {
        let digits = 1;
        for (let t = v; t >= 10; t = Math.floor(t / 10)) digits++;
        let q = v;
        for (let i = p + digits - 1; i >= p; i--) {
          const next = Math.floor(q / 10);
          c[i] = 48 + (q - next * 10);
          q = next;
        }
        p += digits;
      }
      this.#pos = p;
    } else if (v > -1e11 && v < 1e11 && Math.round(v * 1e4) / 1e4 === v) {
      // At most four decimals (0.25, 12.5): integer and fraction digits, no string. The decimal is the one
      // JavaScript prints: any two decimals of four places differ by more than a double's spacing here.
      if (v < 0 || Object.is(v, -0)) {
        if (v !== 0) this.byte(0x2d);
        v = -v;
      }
      const scaled = Math.round(v * 1e4);
      const int = Math.floor(scaled / 1e4);
      let frac = scaled - int * 1e4;
      this.value(int);
      if (frac !== 0) {
        this.need(5);
        const c = this.#chunk;
        let p = this.#pos;
        c[p++] = 0x2e;
        let div = 1000;
        while (frac !== 0) {
          const d = Math.floor(frac / div);
          c[p++] = 48 + d;
          frac -= d * div;
          div /= 10;
        }
        this.#pos = p;
      }
    } else {
      this.ascii(formatValue(v));
    }
  }
}

const NEWLINE = 0x0a;
const SPACE = 0x20;

/** Default of {@link SerializeOptions.sliceBytes}: about 1 ms of writing on the benchmarks' 2-core VM. */
export const DEFAULT_SLICE_BYTES = 256 * 1024;

/** Bytes written between two checkpoints (about 128 counter lines): how often the clock is read. */
const CHECK_BYTES = 8 * 1024;

/** A metric's samples as its own `get()` returned them (metrics without a fast path). */
type GetValues = NonNullable<Awaited<ReturnType<PromMetricLike['get']>>['values']>;

/**
 * The state of one scrape shared by the writing steps: the chunk writer, the format, the cache keys and
 * the slice. The writers call {@link Scrape.checkpoint} after a series once {@link Scrape.due} says so; it
 * hands out full chunks and yields to the event loop once the slice is spent (in time or in bytes).
 */
class Scrape {
  readonly w: ChunkWriter;
  readonly om: boolean;
  readonly defaults: Readonly<Record<string, unknown>> | undefined;
  readonly key: symbol;
  readonly altKey: symbol;
  readonly #sliceMs: number;
  readonly #sliceBytes: number;
  readonly #signal: AbortSignal | undefined;
  readonly #out: (b: Buffer) => Buffer | string;
  #sliceStart = performance.now();
  /** `w.total` at which the slice's bytes are spent. */
  #sliceEnd: number;
  /** `w.total` at which the next checkpoint is due. */
  #nextCheck: number;

  constructor(input: SerializeInput, options: SerializeOptions) {
    this.w = new ChunkWriter(options.chunkSize ?? 64 * 1024);
    this.om = options.format === 'openmetrics';
    this.defaults =
      input.defaultLabels && Object.keys(input.defaultLabels).length > 0 ? input.defaultLabels : undefined;
    this.key = input.cacheKey;
    this.altKey = input.altCacheKey;
    this.#sliceMs = options.sliceMs ?? 5;
    this.#sliceBytes = options.sliceBytes ?? DEFAULT_SLICE_BYTES;
    this.#signal = options.signal;
    this.#out = options.encode === false ? (b) => b.toString('utf8') : (b) => b;
    this.#sliceEnd = this.#sliceBytes;
    this.#nextCheck = Math.min(CHECK_BYTES, this.#sliceEnd);
  }

  /** Whether enough was written since the last checkpoint to call {@link checkpoint} (cheap: per series). */
  due(): boolean {
    return this.w.total >= this.#nextCheck;
  }

  throwIfAborted(): void {
    this.#signal?.throwIfAborted();
  }

  /** Hand out full chunks; when the slice is spent, also the partial one, then yield to the event loop. */
  async *checkpoint(): AsyncGenerator<Buffer | string> {
    const w = this.w;
    if (w.full.length > 0) for (const b of w.full.splice(0)) yield this.#out(b);
    if (w.total >= this.#sliceEnd || performance.now() - this.#sliceStart >= this.#sliceMs) {
      for (const b of w.take()) yield this.#out(b);
      await nextTick();
      this.throwIfAborted();
      this.#sliceStart = performance.now();
      this.#sliceEnd = w.total + this.#sliceBytes;
    }
    this.#nextCheck = Math.min(w.total + CHECK_BYTES, this.#sliceEnd);
  }

  /** Everything still buffered, at the end of the scrape. */
  *rest(): Generator<Buffer | string> {
    for (const b of this.w.take()) yield this.#out(b);
  }
}

/**
 * Serialize a registry snapshot as an async iterable of chunks (UTF-8 Buffers, or strings with
 * `encode: false`). The steps: run the metrics' user code ({@link prepare}), then write each prom-client
 * metric ({@link writeMetric}) and each cached family ({@link writeFamily}) into fixed-size chunk buffers,
 * with a checkpoint after every metric and every {@link CHECK_BYTES} bytes of series that yields to the
 * event loop (`setImmediate`) once a slice of `sliceMs` or `sliceBytes` is spent, so requests and timers
 * run while a large exposition is written. No synchronous run writes more than `sliceBytes` plus one
 * series' lines (or one metric's header), whatever the registry's size.
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
  const scrape = new Scrape(input, options);
  const prepared = await prepare(input.metrics);
  for (let i = 0; i < input.metrics.length; i++) {
    scrape.throwIfAborted();
    yield* writeMetric(scrape, input.metrics[i]!, prepared[i]);
    yield* scrape.checkpoint();
  }
  for (const family of input.families()) {
    scrape.throwIfAborted();
    yield* writeFamily(scrape, family);
    yield* scrape.checkpoint();
  }
  if (scrape.om) scrape.w.ascii('# EOF\n');
  yield* scrape.rest();
}

/** Counters, gauges and histograms whose series the serializer reads directly (no exemplars). */
function hasFastPath(m: PromMetricLike): boolean {
  return (
    !m.enableExemplars &&
    rawSeries(m) !== undefined &&
    (m.type === 'counter' || m.type === 'gauge' || (m.type === 'histogram' && m.upperBounds !== undefined))
  );
}

/**
 * Run every piece of user code first (collect() hooks, get() of metrics without a fast path), all at once as
 * prom-client does. Once writing starts nothing can fail but an abort, so a failing hook becomes an error
 * before the first byte (a 500), never a truncated exposition. Returns each metric's `get()` values, or
 * undefined for a metric on the fast path.
 */
function prepare(metrics: readonly PromMetricLike[]): Promise<Array<GetValues | undefined>> {
  return Promise.all(
    metrics.map(async (m) => {
      if (!hasFastPath(m)) return (await m.get()).values ?? [];
      if (typeof m.collect === 'function') await m.collect();
      return undefined;
    }),
  );
}

/** One prom-client metric: its header, then its series by the fastest path that fits it. */
async function* writeMetric(
  scrape: Scrape,
  metric: PromMetricLike,
  values: GetValues | undefined,
): AsyncGenerator<Buffer | string> {
  const type = metric.type;
  const family = scrape.om && type === 'counter' ? metric.name.replace(/_total$/, '') : metric.name;
  scrape.w.text(header(family, metric.help, type, metric.unit, scrape.om));
  const series = values === undefined ? rawSeries(metric) : undefined;
  if (series && (type === 'counter' || type === 'gauge')) {
    yield* writeScalarSeries(scrape, metric, series, family);
  } else if (series && type === 'histogram' && metric.upperBounds) {
    yield* writeHistogramSeries(scrape, metric, series, metric.upperBounds);
  } else {
    // Summaries, exemplar-enabled metrics and foreign metric objects: their own get() output.
    yield* writeValues(scrape, metric, values ?? [], family);
  }
}

/** Counter and gauge series: the cached `name{labels} ` prefix, then the value. */
async function* writeScalarSeries(
  scrape: Scrape,
  metric: PromMetricLike,
  series: Record<string, unknown>,
  family: string,
): AsyncGenerator<Buffer | string> {
  const { w, defaults } = scrape;
  const sampleName = scrape.om && metric.type === 'counter' ? `${family}_total` : metric.name;
  const k = sampleName === metric.name ? scrape.key : scrape.altKey;
  for (const slot of slotsOf(metric, series)) {
    let prefix = slot[k] as Uint8Array | undefined;
    const e = slot.entry as SeriesEntry;
    if (prefix === undefined) {
      const ls = renderLabelPairs(e.labels, defaults);
      prefix = utf8.encode(ls ? `${sampleName}{${ls}} ` : `${sampleName} `);
      slot[k] = prefix;
    }
    w.bytes(prefix);
    w.value(e.value);
    w.byte(NEWLINE);
    if (scrape.due()) yield* scrape.checkpoint();
  }
}

/** Histogram series: cumulative buckets, `+Inf`, sum and count, from cached per-series prefixes. */
async function* writeHistogramSeries(
  scrape: Scrape,
  metric: PromMetricLike,
  series: Record<string, unknown>,
  bounds: readonly number[],
): AsyncGenerator<Buffer | string> {
  const { w, defaults, key } = scrape;
  const boundKeys = bounds.map(String);
  // `le="0.5"} ` per bound, shared by every series of the metric.
  const leTails = bounds.map((b) => utf8.encode(`le="${formatValue(b)}"} `));
  const infTail = utf8.encode('le="+Inf"} ');
  for (const slot of slotsOf(metric, series)) {
    const e = slot.entry as SeriesEntry;
    let p = slot[key] as HistogramPrefix | undefined;
    if (p === undefined) {
      const ls = renderLabelPairs(e.labels, defaults);
      const braces = ls ? `{${ls}}` : '';
      p = {
        bucket: utf8.encode(`${metric.name}_bucket{${ls ? `${ls},` : ''}`),
        sum: utf8.encode(`${metric.name}_sum${braces} `),
        count: utf8.encode(`${metric.name}_count${braces} `),
      };
      slot[key] = p;
    }
    const bv = e.bucketValues ?? {};
    let cum = 0;
    for (let b = 0; b < boundKeys.length; b++) {
      cum += bv[boundKeys[b]!] ?? 0;
      w.bytes(p.bucket);
      w.bytes(leTails[b]!);
      w.value(cum);
      w.byte(NEWLINE);
    }
    w.bytes(p.bucket);
    w.bytes(infTail);
    w.value(e.count ?? 0);
    w.byte(NEWLINE);
    w.bytes(p.sum);
    w.value(e.sum ?? 0);
    w.byte(NEWLINE);
    w.bytes(p.count);
    w.value(e.count ?? 0);
    w.byte(NEWLINE);
    if (scrape.due()) yield* scrape.checkpoint();
  }
}

/** The samples a metric's own `get()` returned, rendered line by line (no cache). */
async function* writeValues(
  scrape: Scrape,
  metric: PromMetricLike,
  values: GetValues,
  family: string,
): AsyncGenerator<Buffer | string> {
  const { w, defaults } = scrape;
  const total = scrape.om && metric.type === 'counter';
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    let name = v.metricName ?? metric.name;
    if (total && name === metric.name) name = `${family}_total`;
    const ls = renderLabelPairs(v.labels, defaults);
    w.text(ls ? `${name}{${ls}}` : name);
    w.byte(SPACE);
    w.value(v.value);
    w.byte(NEWLINE);
    if (scrape.due()) yield* scrape.checkpoint();
  }
}

/** A family cached outside prom-client (collector caches and health gauges): pre-rendered samples. */
async function* writeFamily(scrape: Scrape, fam: CachedFamily): AsyncGenerator<Buffer | string> {
  const { w, defaults, om } = scrape;
  const family = om && fam.type === 'counter' ? fam.name.replace(/_total$/, '') : fam.name;
  w.text(header(family, fam.help, fam.type, fam.unit, om));
  const base = om && fam.type === 'counter' ? `${family}_total` : fam.name;
  const samples = fam.samples;
  for (let i = 0; i < samples.length; i++) {
    const s = samples[i]!;
    const ls = defaults ? renderLabelPairs(s.raw, defaults) : s.labels;
    w.text(ls ? `${base}${s.suffix}{${ls}}` : `${base}${s.suffix}`);
    w.byte(SPACE);
    w.value(s.value);
    w.byte(NEWLINE);
    if (scrape.due()) yield* scrape.checkpoint();
  }
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
