// Metrics exposition: Capstan vs prom-client vs client_golang on ~100k series, and /metrics latency
// while a collector's source takes 2 s. Each Node subject runs in its own process
// (bench/metrics-worker.ts); the Go peer is built from bench/peers/client_golang (pinned go.sum).
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Benchmark, type BenchResult, buildGoPeer, goModuleVersion, summarize } from './harness.ts';

const here = dirname(fileURLToPath(import.meta.url));
const goDir = join(here, 'peers', 'client_golang');

interface WorkerOutput {
  ms: number[];
  cpuMs: number[];
  maxGcPauseMs: number;
  bytes: number;
  maxLoopDelayMs: number;
  p99LoopDelayMs: number;
  maxLoopBlockCpuMs: number;
  peakRssMb: number;
}

function runWorker(mode: string, iterations: number): WorkerOutput {
  const out = execFileSync(
    process.execPath,
    ['--conditions=capstan-source', join(here, 'metrics-worker.ts'), mode, String(iterations)],
    { encoding: 'utf8', maxBuffer: 16 * 1024 * 1024, timeout: 15 * 60_000 },
  );
  return JSON.parse(out.trim().split('\n').pop()!) as WorkerOutput;
}

const metricsBench: Benchmark = {
  name: 'metrics',
  description:
    'Exposition of ~103k series (45 counters and 45 gauges x 1000 label sets, a 10-bucket histogram x 1000): ' +
    'Capstan MetricsRegistry vs prom-client Registry vs client_golang (Gather + text encode); event-loop ' +
    'delay during scrapes; /metrics latency over HTTP while a source takes 2 s per read.',
  ratios: [
    {
      label: 'exposition 100k, wall: prom-client / Capstan',
      numerator: { subject: 'prom-client', metric: 'exposition_100k' },
      denominator: { subject: 'capstan', metric: 'exposition_100k' },
      goal: { op: '>=', value: 3 },
    },
    {
      label: 'exposition 100k, CPU: prom-client / Capstan',
      numerator: { subject: 'prom-client', metric: 'exposition_100k_cpu' },
      denominator: { subject: 'capstan', metric: 'exposition_100k_cpu' },
      goal: { op: '>=', value: 3 },
    },
    {
      label: 'exposition 100k, CPU: prom-client / Capstan streamed',
      numerator: { subject: 'prom-client', metric: 'exposition_100k_cpu' },
      denominator: { subject: 'capstan', metric: 'exposition_100k_cpu_stream' },
      goal: { op: '>=', value: 3 },
    },
    {
      label: 'exposition 100k, wall: Capstan / client_golang',
      numerator: { subject: 'capstan', metric: 'exposition_100k' },
      denominator: { subject: 'client_golang', metric: 'exposition_100k' },
    },
    {
      label: 'exposition 100k, CPU: Capstan streamed / client_golang',
      numerator: { subject: 'capstan', metric: 'exposition_100k_cpu_stream' },
      denominator: { subject: 'client_golang', metric: 'exposition_100k_cpu' },
    },
    {
      label: 'loop blocked (thread CPU) during scrapes: prom-client / Capstan streamed',
      numerator: { subject: 'prom-client', metric: 'max_loop_block_cpu' },
      denominator: { subject: 'capstan', metric: 'max_loop_block_cpu_stream' },
    },
    {
      label: '/metrics p99 with a 2 s source: prom-client / Capstan',
      numerator: { subject: 'prom-client', metric: 'scrape_slow_source_p99' },
      denominator: { subject: 'capstan', metric: 'scrape_slow_source_p99' },
    },
  ],
  async run({ quick, log }) {
    const results: BenchResult[] = [];
    const iters = quick ? 5 : 7;

    const runs: Array<[subject: string, mode: string, label: string]> = [
      ['capstan', 'expose-capstan', 'registry.metrics() string'],
      ['capstan', 'expose-capstan-stream', 'expose() chunks, as the /metrics handler streams them'],
      ['prom-client', 'expose-prom-client', 'registry.metrics() string'],
    ];
    // The machine is shared and its load drifts over minutes: run the subjects in turn, several
    // rounds of a few scrapes each (one process per run), and pool the samples.
    const rounds = quick ? 1 : 3;
    const pooled = new Map<string, WorkerOutput>();
    for (let round = 0; round < rounds; round++) {
      for (const [, mode] of runs) {
        log(`${mode}: round ${round + 1}/${rounds}, x${iters}`);
        const w = runWorker(mode, iters);
        const p = pooled.get(mode);
        if (!p) pooled.set(mode, w);
        else {
          p.ms.push(...w.ms);
          p.cpuMs.push(...w.cpuMs);
          p.maxLoopDelayMs = Math.max(p.maxLoopDelayMs, w.maxLoopDelayMs);
          p.p99LoopDelayMs = Math.max(p.p99LoopDelayMs, w.p99LoopDelayMs);
          p.maxLoopBlockCpuMs = Math.max(p.maxLoopBlockCpuMs, w.maxLoopBlockCpuMs);
          p.maxGcPauseMs = Math.max(p.maxGcPauseMs, w.maxGcPauseMs);
          p.peakRssMb = Math.max(p.peakRssMb, w.peakRssMb);
        }
      }
    }
    // The 20 ms event-loop goal is the /metrics handler's, which streams: the `_stream` rows. metrics() ends
    // with one decode of the whole text, and prom-client is the peer compared with.
    const loopGoal = { op: '<=', value: 20, why: 'what /metrics may hold the event loop' } as const;
    for (const [subject, mode, label] of runs) {
      const w = pooled.get(mode)!;
      const suffix = mode === 'expose-capstan-stream' ? '_stream' : '';
      const goal = mode === 'expose-capstan-stream' ? { goal: loopGoal } : {};
      results.push(
        {
          subject,
          metric: `exposition_100k${suffix}`,
          unit: 'ms',
          ...summarize(w.ms),
          peakRssMb: w.peakRssMb,
          notes: `wall time; ${(w.bytes / 1e6).toFixed(1)} MB; ${label}; after five warm-up scrapes`,
        },
        {
          subject,
          metric: `exposition_100k_cpu${suffix}`,
          unit: 'ms',
          ...summarize(w.cpuMs),
          notes: 'main-thread CPU time per scrape (process.threadCpuUsage); robust to a loaded machine',
        },
        {
          subject,
          metric: `max_loop_delay${suffix}`,
          unit: 'ms',
          value: w.maxLoopDelayMs,
          p99: w.p99LoopDelayMs,
          notes: `wall (monitorEventLoopDelay); includes descheduled time; max GC pause ${w.maxGcPauseMs.toFixed(0)} ms`,
          ...goal,
        },
        {
          subject,
          metric: `max_loop_block_cpu${suffix}`,
          unit: 'ms',
          value: w.maxLoopBlockCpuMs,
          notes: 'longest main-thread CPU stretch between two 1 ms timer ticks (serializing + GC)',
          ...goal,
        },
      );
    }

    // The peer is part of the comparison: if it cannot be built or run, the benchmark fails (no silent NaN).
    {
      const bin = buildGoPeer(goDir, log);
      log(`client_golang: exposition x${iters}`);
      const out = JSON.parse(
        execFileSync(bin, ['-mode', 'encode', '-iters', String(quick ? 6 : 21)], { encoding: 'utf8' }),
      ) as {
        ms: number[];
        cpuMs: number[];
        bytes: number;
        maxRssKb: number;
      };
      results.push({
        subject: 'client_golang',
        metric: 'exposition_100k',
        unit: 'ms',
        ...summarize(out.ms.slice(1)),
        peakRssMb: out.maxRssKb / 1024,
        notes: `${(out.bytes / 1e6).toFixed(1)} MB text; Gather + expfmt text encode, client_golang ${goModuleVersion(goDir, 'github.com/prometheus/client_golang')}`,
      });
      results.push({
        subject: 'client_golang',
        metric: 'exposition_100k_cpu',
        unit: 'ms',
        ...summarize(out.cpuMs.slice(1)),
        notes: 'process CPU time per scrape, all threads (Go GC runs beside the encoder)',
      });
    }

    const capstanScrapes = quick ? 40 : 200;
    log(`capstan: ${capstanScrapes} scrapes over HTTP with a 2 s source`);
    const cs = runWorker('slow-capstan', capstanScrapes);
    results.push({
      subject: 'capstan',
      metric: 'scrape_slow_source_p99',
      unit: 'ms',
      ...summarize(cs.ms),
      value: summarize(cs.ms).p99,
      peakRssMb: cs.peakRssMb,
      notes: 'value = p99; collector reads a 2 s source every 100 ms in the background',
      goal: { op: '<', value: 10, why: 'a scrape never waits on a source' },
    });
    results.push({
      subject: 'capstan',
      metric: 'scrape_slow_source_max_loop_delay',
      unit: 'ms',
      value: cs.maxLoopDelayMs,
      p99: cs.p99LoopDelayMs,
      notes: 'event-loop delay (monitorEventLoopDelay) in the serving process during those scrapes',
    });
    const promScrapes = quick ? 2 : 4;
    log(`prom-client: ${promScrapes} scrapes over HTTP with a 2 s source in collect()`);
    const ps = runWorker('slow-prom-client', promScrapes);
    results.push({
      subject: 'prom-client',
      metric: 'scrape_slow_source_p99',
      unit: 'ms',
      ...summarize(ps.ms),
      value: summarize(ps.ms).p99,
      peakRssMb: ps.peakRssMb,
      notes:
        "value = p99; prom-client's pattern: the Gauge's async collect() reads the source during the scrape",
    });
    return results;
  },
};

export default metricsBench;
