// End to end with a real Prometheus server: it scrapes our /metrics with its own Accept header
// (OpenMetrics preferred), parses the result and answers queries about it.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ensurePeers, freePort, startPeerProcess } from '../../testing/index.ts';
import {
  Counter,
  collectDefaultMetrics,
  Gauge,
  Histogram,
  instrumentHttpServer,
  MetricsRegistry,
  OPENMETRICS_CONTENT_TYPE,
} from './index.ts';

interface PromVector {
  metric: Record<string, string>;
  value: [number, string];
}

test('a real Prometheus scrapes OpenMetrics from us and reads every value back', {
  timeout: 110_000,
}, async () => {
  ensurePeers(['prometheus']);
  await using reg = new MetricsRegistry();
  collectDefaultMetrics({ register: reg });
  const c = new Counter({
    name: 'e2e_jobs_total',
    help: 'Jobs "done".\nSecond line.',
    labelNames: ['tricky'],
    registers: [reg],
  });
  c.inc({ tricky: 'back\\slash "quoted"\nnewline' }, 3);
  c.inc({ tricky: 'plain' });
  new Gauge({ name: 'e2e_temperature_celsius', help: 'T.', unit: 'celsius', registers: [reg] }).set(-12.5);
  const h = new Histogram({
    name: 'e2e_wait_seconds',
    help: 'W.',
    unit: 'seconds',
    buckets: [0.1, 1],
    registers: [reg],
  });
  h.observe(0.05);
  h.observe(0.5);
  h.observe(7);
  reg.registerCollector({
    name: 'e2e_src',
    intervalMs: 200,
    describe: () => [{ name: 'e2e_src_items', help: 'Items.', type: 'gauge', labelNames: ['kind'] }],
    collect: () => [{ name: 'e2e_src_items', labels: { kind: 'a' }, value: 9 }],
  });

  const served: string[] = [];
  const server = createServer((req, res) => {
    if (req.url?.startsWith('/metrics')) {
      served.push(String(req.headers.accept));
      res.once('finish', () => served.push(`served:${res.getHeader('content-type')}`));
    }
    if (!reg.handle(req, res)) res.writeHead(404).end();
  });
  instrumentHttpServer(server, reg, { ignorePaths: [] });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const target = `127.0.0.1:${(server.address() as AddressInfo).port}`;

  const dir = mkdtempSync(join(tmpdir(), 'capstan-prometheus-'));
  writeFileSync(
    join(dir, 'prometheus.yml'),
    `global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: capstan\n    static_configs:\n      - targets: ['${target}']\n`,
  );
  const webPort = await freePort();
  const base = `http://127.0.0.1:${webPort}`;
  const prometheus = await startPeerProcess({
    name: 'prometheus',
    command: '/usr/bin/prometheus',
    dir,
    args: [
      `--config.file=${join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${webPort}`,
    ],
    ready: async () => (await fetch(`${base}/-/ready`).catch(() => undefined))?.ok === true,
    readyTimeoutMs: 60_000,
  });
  try {
    const query = async (q: string): Promise<PromVector[]> => {
      const r = await fetch(`${base}/api/v1/query?query=${encodeURIComponent(q)}`);
      const body = (await r.json()) as { status: string; data: { result: PromVector[] } };
      assert.equal(body.status, 'success');
      return body.data.result;
    };
    // Wait (bounded) for a successful scrape; a parse error shows up as the target's lastError.
    let health = '';
    let lastError = '';
    for (let i = 0; i < 400 && health !== 'up'; i++) {
      const r = await fetch(`${base}/api/v1/targets`);
      const t = (
        (await r.json()) as { data: { activeTargets: Array<{ health: string; lastError: string }> } }
      ).data.activeTargets[0];
      health = t?.health ?? '';
      lastError = t?.lastError ?? '';
      if (health === 'down') break;
      if (health !== 'up') await sleep(100);
    }
    assert.equal(health, 'up', `target health ${health}: ${lastError}\n${prometheus.logTail(20)}`);
    let items: PromVector[] = [];
    for (let i = 0; i < 200 && items.length === 0; i++) {
      items = await query('e2e_src_items');
      if (items.length === 0) await sleep(100);
    }

    assert.match(served[0] ?? '', /application\/openmetrics-text/);
    assert.ok(served.includes(`served:${OPENMETRICS_CONTENT_TYPE}`), served.join('\n'));

    const jobs = await query('e2e_jobs_total');
    const byLabel = new Map(jobs.map((v) => [v.metric.tricky, v.value[1]]));
    assert.equal(byLabel.get('back\\slash "quoted"\nnewline'), '3');
    assert.equal(byLabel.get('plain'), '1');
    assert.equal((await query('e2e_temperature_celsius'))[0]?.value[1], '-12.5');
    assert.equal((await query('e2e_wait_seconds_bucket{le="1"}'))[0]?.value[1], '2');
    assert.equal((await query('e2e_wait_seconds_bucket{le="+Inf"}'))[0]?.value[1], '3');
    assert.equal((await query('e2e_wait_seconds_count'))[0]?.value[1], '3');
    assert.equal(items[0]?.metric.kind, 'a');
    assert.equal(items[0]?.value[1], '9');
    assert.equal((await query('e2e_src_last_collect_success'))[0]?.value[1], '1');
    assert.ok((await query('process_cpu_user_seconds_total')).length === 1);
    // A scrape is counted once it has finished, so it shows up from the next scrape on.
    let scrapes: PromVector[] = [];
    for (let i = 0; i < 200 && scrapes.length === 0; i++) {
      scrapes = await query('http_server_requests_total{method="GET",code="2xx"}');
      if (scrapes.length === 0) await sleep(100);
    }
    assert.ok(Number(scrapes[0]?.value[1]) >= 1, 'the scrapes themselves were counted');
    // Prometheus's own view of the scrape: samples ingested and no parse failures.
    assert.ok(Number((await query('scrape_samples_scraped'))[0]?.value[1]) > 50);
  } finally {
    await prometheus.stop();
    server.closeAllConnections();
    server.close();
  }
});
