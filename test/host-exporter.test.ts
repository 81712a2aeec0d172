// The example exporter, run as users run it (a separate process), scraped by a real Prometheus.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { startPrometheus } from 'capstan/testing';

const example = new URL('../examples/host-exporter.ts', import.meta.url).pathname;

interface Running {
  child: ChildProcess;
  url: string;
  lines: string[];
  exit: Promise<number | null>;
}

async function startExporter(env: Record<string, string>): Promise<Running> {
  const child = spawn(process.execPath, ['--conditions=capstan-source', example], {
    env: { ...process.env, LOG_FORMAT: 'json', PORT: '0', HOST: '127.0.0.1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  let buffer = '';
  // 'close' comes after stdout ended, so every log line has been read by then.
  const exit = once(child, 'close').then(([code]) => code as number | null);
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      buffer += chunk;
      let nl = buffer.indexOf('\n');
      while (nl >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        lines.push(line);
        const parsed = JSON.parse(line) as { msg?: string; url?: string };
        if (parsed.msg === 'listening' && parsed.url) resolve(parsed.url);
        nl = buffer.indexOf('\n');
      }
    });
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (c: string) => {
      stderr += c;
    });
    void exit.then((code) => reject(new Error(`exporter exited ${code} before listening: ${stderr}`)));
  });
  return { child, url, lines, exit };
}

let exporter: Running;
before(async () => {
  exporter = await startExporter({ EXPORTER_INTERVAL: '1s', EXPORTER_MOUNTS: '/,/tmp' });
});
after(async () => {
  if (exporter.child.exitCode === null) {
    exporter.child.kill('SIGKILL');
    await exporter.exit;
  }
});

test('Prometheus scrapes the example exporter: up == 1 and MemTotal matches /proc/meminfo', async () => {
  const port = new URL(exporter.url).port;
  await using prometheus = await startPrometheus({
    scrapeTargets: [{ job: 'host', targets: [`127.0.0.1:${port}`] }],
  });
  await prometheus.waitFor('up{job="host"}', (s) => s.length === 1 && s[0]!.value === 1);
  const memTotalKb = Number(/^MemTotal:\s+(\d+)/m.exec(readFileSync('/proc/meminfo', 'utf8'))![1]);
  const mem = await prometheus.waitFor('node_memory_MemTotal_bytes{job="host"}', (s) => s.length === 1);
  assert.equal(mem[0]!.value, memTotalKb * 1024);
  const fs = await prometheus.waitFor('node_filesystem_size_bytes{job="host"}', (s) => s.length === 2);
  assert.deepEqual(fs.map((s) => s.labels.mountpoint).sort(), ['/', '/tmp']);
  const age = await prometheus.query('host_metrics_last_collect_age_seconds{job="host"}');
  assert.equal(age.length, 1);
  assert.ok(age[0]!.value < 60, `collector age ${age[0]!.value}`);
});

test('promtool check metrics passes on the exporter exposition', async () => {
  const body = await (await fetch(`${exporter.url}/metrics`)).text();
  assert.match(body, /^node_cpu_seconds_total\{cpu="0",mode="idle"\} \d/m);
  const r = spawnSync('promtool', ['check', 'metrics'], { input: body, encoding: 'utf8' });
  // Exit 1 is a parse error. Exit 3 means lint hints only: node_exporter's own camelCase names
  // (node_memory_MemTotal_bytes, kept so dashboards work) and prom-client's default gauges.
  assert.ok(r.status === 0 || r.status === 3, `promtool exit ${r.status}: ${r.stdout}\n${r.stderr}`);
  const hints = `${r.stdout}${r.stderr}`.split('\n').filter((l) => l.trim() !== '');
  for (const hint of hints) {
    assert.match(
      hint,
      /^(node_memory_\w+ metric names should be written in 'snake_case'|nodejs_\w+ non-counter metrics should not have "_total" suffix)/,
    );
  }
});

test('readiness reports the procfs check and the service answers 404 with a reason', async () => {
  const ready = await fetch(`${exporter.url}/readyz?verbose`);
  assert.equal(ready.status, 200);
  assert.match(await ready.text(), /\[\+\]procfs ok/);
  const missing = await fetch(`${exporter.url}/does-not-exist`);
  assert.equal(missing.status, 404);
  assert.deepEqual(await missing.json(), { error: 'not found', path: '/does-not-exist' });
});

test('SIGTERM drains and exits 0 with a stop report in the logs', async () => {
  exporter.child.kill('SIGTERM');
  assert.equal(await exporter.exit, 0);
  const stopped = exporter.lines
    .map((l) => JSON.parse(l) as { msg: string; exitCode?: number })
    .find((l) => l.msg === 'stopped');
  assert.ok(stopped, exporter.lines.join('\n'));
  assert.equal(stopped.exitCode, 0);
});

test('invalid configuration lists every problem and exits 78 before listening', () => {
  const r = spawnSync(process.execPath, ['--conditions=capstan-source', example], {
    env: {
      ...process.env,
      PORT: '70000',
      EXPORTER_INTERVAL: 'soon',
      DATABASE_URL: 'mysql://admin:hunter2@db:3306/x',
    },
    encoding: 'utf8',
    timeout: 30_000,
  });
  assert.equal(r.status, 78, r.stderr);
  assert.match(r.stderr, /PORT/);
  assert.match(r.stderr, /EXPORTER_INTERVAL/);
  assert.match(r.stderr, /DATABASE_URL/);
  assert.doesNotMatch(r.stderr, /hunter2/);
  assert.equal(r.stdout, '');
});
