// Readiness probe cost with a slow dependency: Capstan answers from cached check results, terminus
// runs the checks inside every probe request. A bare `res.end('ok')` handler is the floor.
import { execFile } from 'node:child_process';
import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createTerminus } from '@godaddy/terminus';
import { Health } from 'capstan/runtime';
import { Pool } from 'undici';
import { type Benchmark, type BenchResult, summarize } from './harness.ts';

const execFileAsync = promisify(execFile);
const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** The dependency checks: three instant ones and one that takes SLOW_MS (a remote database, say). */
const SLOW_MS = 20;
const checks: Array<{ name: string; run: () => Promise<void> }> = [
  { name: 'config', run: async () => {} },
  { name: 'disk', run: async () => {} },
  { name: 'cache', run: async () => {} },
  { name: 'db', run: () => sleep(SLOW_MS).then(() => {}) },
];

interface Load {
  rps: number;
  requests: number;
  non2xx: number;
}

/**
 * Probe latency as a kubelet sees it: one request at a time over a kept-alive connection, timed with
 * sub-millisecond resolution (autocannon reports whole milliseconds).
 */
async function probeLatency(url: string, count: number): Promise<ReturnType<typeof summarize>> {
  const pool = new Pool(url, { connections: 1 });
  const times: number[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const started = performance.now();
      const res = await pool.request({ path: '/readyz', method: 'GET' });
      await res.body.text();
      if (res.statusCode !== 200) throw new Error(`probe answered ${res.statusCode}`);
      times.push(performance.now() - started);
    }
  } finally {
    await pool.close();
  }
  return summarize(times.map((t) => Math.round(t * 1000) / 1000));
}

/** Load the URL with autocannon in a child process, so the load generator doesn't share our loop. */
async function load(url: string, seconds: number): Promise<Load> {
  const { stdout } = await execFileAsync(
    process.execPath,
    [join(root, 'node_modules', 'autocannon', 'autocannon.js'), '-j', '-c', '10', '-d', String(seconds), url],
    { maxBuffer: 16 * 1024 * 1024 },
  );
  const r = JSON.parse(stdout) as { requests: { average: number; total: number }; non2xx: number };
  return {
    rps: r.requests.average,
    requests: r.requests.total,
    non2xx: r.non2xx,
  };
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function close(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
}

/** Warm up, then measure sequential probe latency and loaded throughput of one subject. */
async function measure(subject: string, base: string, quick: boolean, notes: string): Promise<BenchResult[]> {
  const url = `${base}/readyz`;
  await load(url, 1);
  const latency = await probeLatency(base, quick ? 300 : 2_000);
  const l = await load(url, quick ? 2 : 6);
  if (l.non2xx > 0) throw new Error(`${subject} answered ${l.non2xx} non-2xx`);
  return [
    { subject, metric: 'readyz latency', unit: 'ms', ...latency, notes },
    {
      subject,
      metric: 'readyz throughput',
      unit: 'req/s',
      value: l.rps,
      samples: l.requests,
      notes: `${l.non2xx} non-2xx`,
    },
  ];
}

const bench: Benchmark = {
  name: 'health',
  description: `readiness probe latency and throughput, 4 checks of which one takes ${SLOW_MS} ms; 10 connections`,
  async run({ quick, log }) {
    const out: BenchResult[] = [];

    const bare: RequestListener = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    };
    let server = createServer(bare);
    let url = await listen(server);
    out.push(...(await measure('bare-handler', url, quick, 'res.end("ok"), no checks')));
    await close(server);
    log('bare handler done');

    const health = new Health();
    for (const c of checks) health.register({ name: c.name, check: c.run, intervalMs: 1_000 });
    await health.runNow();
    health.markReady();
    server = createServer((req, res) => {
      if (!health.handle(req, res)) res.writeHead(404).end();
    });
    url = await listen(server);
    out.push(...(await measure('capstan', url, quick, 'JSON body with 4 cached checks')));
    await close(server);
    health.close();
    log('capstan done');

    server = createServer((_req, res) => {
      res.writeHead(404).end();
    });
    createTerminus(server, {
      healthChecks: {
        '/readyz': async () => {
          await Promise.all(checks.map((c) => c.run()));
        },
      },
      signals: [],
    });
    url = await listen(server);
    out.push(...(await measure('terminus', url, quick, 'runs the 4 checks in every probe')));
    await close(server);
    log('terminus done');
    return out;
  },
  ratios: [
    {
      label: 'capstan / terminus readyz p50 latency',
      numerator: { subject: 'capstan', metric: 'readyz latency' },
      denominator: { subject: 'terminus', metric: 'readyz latency' },
      goal: { op: '<', value: 0.2, why: 'a probe never waits on a dependency' },
    },
    {
      label: 'capstan / bare handler readyz throughput',
      numerator: { subject: 'capstan', metric: 'readyz throughput' },
      denominator: { subject: 'bare-handler', metric: 'readyz throughput' },
      goal: { op: '>', value: 0.6 },
    },
  ],
};

export default bench;
