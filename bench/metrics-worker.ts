// Child process of bench/metrics.bench.ts: one subject per process, so peak RSS and the event loop
// are its own. Usage: node --conditions=capstan-source bench/metrics-worker.ts <mode> <iterations>
//   expose-capstan | expose-prom-client   time registry.metrics() over the 100k-series registry
//   expose-capstan-stream                 the same through expose() chunks, as the HTTP handler does
//   slow-capstan | slow-prom-client        scrape /metrics over HTTP while a source takes 2 s
// Prints one JSON line with the samples (ms), loop delay (ms) and peak RSS (MiB).
import { once } from 'node:events';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import * as prom from 'prom-client';
import { collectDefaultMetrics, MetricsRegistry } from '../src/runtime/metrics/index.ts';
import { peakRssMb } from './harness.ts';

/** Series shape shared with bench/peers/client_golang (keep the two in step). */
export const SHAPE = { counters: 45, gauges: 45, perMetric: 1000, histSeries: 1000 };
const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

function populate(reg: prom.Registry): void {
  const labelNames = ['route', 'code'] as const;
  for (let m = 0; m < SHAPE.counters; m++) {
    const c = new prom.Counter({
      name: `bench_requests_${m}_total`,
      help: 'Requests handled, by route and code.',
      labelNames,
      registers: [reg],
    });
    for (let i = 0; i < SHAPE.perMetric; i++)
      c.inc({ route: `/api/v1/resource/${i}`, code: '200' }, i * 7 + m);
  }
  for (let m = 0; m < SHAPE.gauges; m++) {
    const g = new prom.Gauge({
      name: `bench_queue_depth_${m}`,
      help: 'Queue depth, by route and code.',
      labelNames,
      registers: [reg],
    });
    for (let i = 0; i < SHAPE.perMetric; i++)
      g.set({ route: `/api/v1/resource/${i}`, code: '200' }, i * 0.25 + m);
  }
  const h = new prom.Histogram({
    name: 'bench_request_duration_seconds',
    help: 'Request duration, by route and code.',
    labelNames,
    buckets: BUCKETS,
    registers: [reg],
  });
  for (let i = 0; i < SHAPE.histSeries; i++) {
    for (let k = 0; k < 5; k++)
      h.observe({ route: `/api/v1/resource/${i}`, code: '200' }, ((i + k) % 100) / 37);
  }
}

function get(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/metrics', agent: keepAlive }, (res) => {
      let n = 0;
      res.on('data', (c: Buffer) => {
        n += c.length;
      });
      res.on('end', () =>
        res.statusCode === 200 ? resolve(n) : reject(new Error(`status ${res.statusCode}`)),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

import { Agent } from 'node:http';

const keepAlive = new Agent({ keepAlive: true, maxSockets: 1 });

const [mode = 'expose-capstan', itersArg = '10'] = process.argv.slice(2);
const iterations = Number(itersArg);
const h = monitorEventLoopDelay({ resolution: 1 });
// The loop delay above is wall time, which on a shared, loaded machine includes time this process
// was not scheduled at all. This probe measures the main thread's CPU time between two 1 ms timer
// ticks instead: how long our own work (serializing, GC) held the loop.
let maxBlockCpuMs = 0;
let lastCpu = 0;
let probe: NodeJS.Timeout | undefined;
const threadCpuMs = () => {
  const u = process.threadCpuUsage();
  return (u.user + u.system) / 1000;
};
// GC pauses seen while measuring, to tell serializer slices from collector pauses in the max above.
let maxGcMs = 0;
let measuring = false;
new PerformanceObserver((list) => {
  if (!measuring) return;
  for (const e of list.getEntries()) maxGcMs = Math.max(maxGcMs, e.duration);
}).observe({ entryTypes: ['gc'] });
function startProbe(): void {
  measuring = true;
  lastCpu = threadCpuMs();
  probe = setInterval(() => {
    const now = threadCpuMs();
    maxBlockCpuMs = Math.max(maxBlockCpuMs, now - lastCpu);
    lastCpu = now;
  }, 1);
}
function stopProbe(): void {
  measuring = false;
  clearInterval(probe);
}
const ms: number[] = [];
const cpuMs: number[] = [];
let bytes = 0;

if (mode === 'expose-capstan' || mode === 'expose-prom-client' || mode === 'expose-capstan-stream') {
  const capstan = mode !== 'expose-prom-client';
  const reg = capstan
    ? new MetricsRegistry({ maxSeriesPerMetric: Number.POSITIVE_INFINITY })
    : new prom.Registry();
  populate(reg);
  const scrape = async () => {
    if (mode === 'expose-capstan-stream') {
      // What the /metrics handler does: chunks go to the socket and are dropped.
      bytes = 0;
      for await (const chunk of (reg as MetricsRegistry).expose()) bytes += chunk.length;
    } else {
      bytes = (await reg.metrics()).length;
    }
  };
  // Five warm-up scrapes each (the JIT optimizes the serializers only after a few runs; Capstan also
  // renders its label cache in the first), then measure: a server scraped every 15 s is warm.
  for (let i = 0; i < 5; i++) await scrape();
  // Timing pass without probes: the 1 ms probe below runs at every yield of a sliced scrape and
  // would charge its own cost to the subject that yields most.
  for (let i = 0; i < iterations; i++) {
    const t = performance.now();
    const c = threadCpuMs();
    await scrape();
    cpuMs.push(threadCpuMs() - c);
    ms.push(performance.now() - t);
    await sleep(5);
  }
  // Loop pass: the same scrapes again, watched by the loop-delay histogram and the CPU probe.
  h.enable();
  startProbe();
  for (let i = 0; i < iterations; i++) {
    await scrape();
    await sleep(5);
  }
  h.disable();
  stopProbe();
} else if (mode === 'slow-capstan' || mode === 'slow-prom-client') {
  // A source that takes 2 s per read. Capstan reads it in the background; prom-client's own
  // pattern (an async collect() on a Gauge) reads it during the scrape.
  const slowRead = async () => {
    await sleep(2000);
    return 42;
  };
  let handler: (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => void;
  if (mode === 'slow-capstan') {
    const reg = new MetricsRegistry();
    collectDefaultMetrics({ register: reg });
    reg.registerCollector({
      name: 'slow_source',
      intervalMs: 100,
      timeoutMs: 10_000,
      describe: () => [{ name: 'slow_source_items', help: 'Items in the slow source.', type: 'gauge' }],
      collect: async () => [{ name: 'slow_source_items', value: await slowRead() }],
    });
    handler = (req, res) => {
      if (!reg.handle(req, res)) res.writeHead(404).end();
    };
  } else {
    const reg = new prom.Registry();
    prom.collectDefaultMetrics({ register: reg });
    new prom.Gauge({
      name: 'slow_source_items',
      help: 'Items in the slow source.',
      registers: [reg],
      async collect() {
        this.set(await slowRead());
      },
    });
    handler = (_req, res) => {
      reg.metrics().then((text) => res.writeHead(200, { 'content-type': reg.contentType }).end(text));
    };
  }
  const server = createServer(handler);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  await get(port); // warm-up
  h.enable();
  startProbe();
  for (let i = 0; i < iterations; i++) {
    const t = performance.now();
    bytes = await get(port);
    ms.push(performance.now() - t);
    await sleep(20);
  }
  h.disable();
  stopProbe();
  keepAlive.destroy();
  server.closeAllConnections();
  server.close();
} else {
  throw new Error(`unknown mode ${mode}`);
}

process.stdout.write(
  `${JSON.stringify({
    ms,
    cpuMs,
    bytes,
    maxGcPauseMs: maxGcMs,
    maxLoopDelayMs: h.max / 1e6,
    p99LoopDelayMs: h.percentile(99) / 1e6,
    maxLoopBlockCpuMs: maxBlockCpuMs,
    peakRssMb: peakRssMb(),
  })}\n`,
);
process.exit(0);
