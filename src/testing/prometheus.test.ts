import assert from 'node:assert/strict';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import http from 'node:http';
import { after, before, test } from 'node:test';
import { PeerError } from '../peers/index.ts';
import { freePort } from '../runtime/index.ts';
import { type PrometheusPeer, startPrometheus } from './prometheus.ts';

// A fixed text exposition, served on port 0 by plain node:http.
const EXPOSITION = [
  '# HELP capstan_test_widgets Widgets in stock.',
  '# TYPE capstan_test_widgets gauge',
  'capstan_test_widgets{color="blue"} 42',
  'capstan_test_widgets{color="red"} 7',
  '',
].join('\n');

let target: http.Server;
let targetPort: number;
let scrapes = 0;
let prom: PrometheusPeer;

before(async () => {
  target = http.createServer((req, res) => {
    if (req.url !== '/custom-metrics') {
      res.writeHead(404).end();
      return;
    }
    scrapes++;
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(EXPOSITION);
  });
  target.listen(0, '127.0.0.1');
  await once(target, 'listening');
  targetPort = (target.address() as { port: number }).port;
  prom = await startPrometheus({
    scrapeTargets: [
      { job: 'capstan-test', targets: [`127.0.0.1:${targetPort}`], metricsPath: '/custom-metrics' },
    ],
    scrapeIntervalMs: 500,
  });
});

after(async () => {
  const dir = prom?.dir;
  await prom?.stop();
  target?.close();
  if (dir) assert.equal(existsSync(dir), false, 'the temp dir is removed on stop');
});

test('Prometheus scrapes a target on port 0: up == 1 and the known series has its value', async () => {
  const up = await prom.waitFor('up{job="capstan-test"}', (s) => s.length === 1 && s[0]!.value === 1, {
    timeoutMs: 60_000,
  });
  assert.equal(up[0]!.labels.instance, `127.0.0.1:${targetPort}`);
  const widgets = await prom.query('capstan_test_widgets{job="capstan-test"}');
  assert.deepEqual(widgets.map((s) => [s.labels.color, s.value]).sort(), [
    ['blue', 42],
    ['red', 7],
  ]);
  const [sum] = await prom.query('sum(capstan_test_widgets)');
  assert.equal(sum!.value, 49);
  const [scalar] = await prom.query('scalar(capstan_test_widgets{color="red"}) * 2');
  assert.deepEqual([scalar!.labels, scalar!.value], [{}, 14]);
  assert.ok(scrapes >= 1);
});

test('a bad PromQL query fails with CAP_ERR_PEER_PROMETHEUS_QUERY, also through waitFor', async () => {
  await assert.rejects(prom.query('sum(('), (err: unknown) => {
    return (
      err instanceof PeerError && err.code === 'CAP_ERR_PEER_PROMETHEUS_QUERY' && /bad_data/.test(err.message)
    );
  });
  await assert.rejects(
    prom.waitFor('rate(up[', () => true, { timeoutMs: 60_000 }),
    (err: unknown) => err instanceof PeerError && err.code === 'CAP_ERR_PEER_PROMETHEUS_QUERY',
  );
  await assert.rejects(
    prom.waitFor('up{job="nope"}', (s) => s.length > 0, { timeoutMs: 600, intervalMs: 100 }),
    (err: unknown) =>
      err instanceof PeerError &&
      err.code === 'CAP_ERR_PEER_PROMETHEUS_TIMEOUT' &&
      err.message.includes('"job":"capstan-test"'),
  );
});

test('reloadTargets swaps the scrape jobs: a dead target shows up == 0', async () => {
  const deadPort = await freePort();
  await prom.reloadTargets([
    { job: 'capstan-test', targets: [`127.0.0.1:${targetPort}`], metricsPath: '/custom-metrics' },
    { job: 'dead', targets: [`127.0.0.1:${deadPort}`] },
  ]);
  const up = await prom.waitFor('up{job="dead"}', (s) => s.length === 1, { timeoutMs: 60_000 });
  assert.equal(up[0]!.value, 0);
  const dead = (await prom.targets()).find((t) => t.job === 'dead');
  assert.equal(dead?.instance, `127.0.0.1:${deadPort}`);
  assert.equal(dead?.health, 'down');
  assert.match(dead?.lastError ?? '', /connection refused/);
  await assert.rejects(
    prom.reloadTargets([{ job: '', targets: [] }]),
    (err: unknown) => err instanceof PeerError && err.code === 'CAP_ERR_PEER_CONFIG',
  );
});

test('bad options are refused before anything starts', async () => {
  const code = (c: string) => (err: unknown) => err instanceof PeerError && err.code === c;
  await assert.rejects(
    startPrometheus({ scrapeTargets: [{ job: 'x', targets: ['not a target'] }] }),
    code('CAP_ERR_PEER_CONFIG'),
  );
  await assert.rejects(
    startPrometheus({
      scrapeTargets: [
        { job: 'x', targets: [] },
        { job: 'x', targets: [] },
      ],
    }),
    code('CAP_ERR_PEER_CONFIG'),
  );
  await assert.rejects(startPrometheus({ scrapeIntervalMs: 0 }), code('CAP_ERR_PEER_CONFIG'));
});

test('a config Prometheus rejects fails startup with a PeerError carrying Prometheus own log lines', async () => {
  await assert.rejects(
    startPrometheus({
      rawConfig: 'scrape_configs:\n  - job_name: broken\n    scrape_interval: not-a-duration\n',
    }),
    (err: unknown) => {
      assert.ok(err instanceof PeerError);
      assert.equal(err.code, 'CAP_ERR_PEER_EXITED');
      assert.match(err.logTail, /Error loading config/i);
      assert.match(err.logTail, /not-a-duration/);
      assert.match(err.message, /--- peer log \(tail\) ---/);
      return true;
    },
  );
});
