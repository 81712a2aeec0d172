// The autoscaler on a Prometheus instant query against a real Prometheus scraping a backlog gauge from
// this test, and the real apiserver: the query scales a Deployment; a query that is empty, has several
// series or does not parse holds; Prometheus stopped holds. `capstan autoscale --once` runs the same file a
// user would write, and refuses a bad one with every problem listed (exit 78).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { KubeClient } from 'capstan/kube';
import { type PrometheusPeer, type SharedCluster, startPrometheus, useSharedCluster } from 'capstan/testing';
import { Autoscaler, prometheusQuerySource, ScalingErrorCode } from './index.ts';
import { deployment } from './testdata/deployment.ts';

const mainTs = fileURLToPath(new URL('../cli/main.ts', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'capstan-autoscale-'));

/** What the exporter serves: a backlog per shard, changed by the tests. */
const backlog = new Map<string, number>([
  ['a', 30],
  ['b', 12],
]);
let exporter: Server;
let prometheus: PrometheusPeer;

before(async () => {
  exporter = createServer((_req, res) => {
    const lines = ['# TYPE capstan_test_backlog gauge'];
    for (const [shard, v] of backlog) lines.push(`capstan_test_backlog{shard="${shard}"} ${v}`);
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
    res.end(`${lines.join('\n')}\n`);
  });
  await new Promise<void>((resolve) => exporter.listen(0, '127.0.0.1', resolve));
  const { port } = exporter.address() as AddressInfo;
  prometheus = await startPrometheus({
    scrapeIntervalMs: 500,
    scrapeTargets: [{ job: 'backlog', targets: [`127.0.0.1:${port}`] }],
  });
  await prometheus.waitFor('sum(capstan_test_backlog)', (s) => s[0]?.value === 42, { timeoutMs: 60_000 });
});
after(async () => {
  await prometheus?.stop();
  await new Promise((resolve) => exporter?.close(resolve));
  rmSync(work, { recursive: true, force: true });
});

async function setUp(cluster: SharedCluster, name: string, replicas: number): Promise<string> {
  const ns = cluster.namespace;
  const r = await cluster.request(`/apis/apps/v1/namespaces/${ns}/deployments`, {
    method: 'POST',
    body: deployment(name, replicas),
  });
  assert.equal(r.status, 201, r.body);
  return `/apis/apps/v1/namespaces/${ns}/deployments/${name}`;
}

async function specReplicas(cluster: SharedCluster, path: string): Promise<number> {
  const r = await cluster.request(path);
  assert.equal(r.status, 200, r.body);
  return (JSON.parse(r.body) as { spec: { replicas: number } }).spec.replicas;
}

/** Run the CLI without blocking this process: its event loop serves the exporter Prometheus scrapes. */
function capstan(args: string[], env: Record<string, string> = {}) {
  return new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(process.execPath, ['--conditions=capstan-source', mainTs, ...args], {
      env: { PATH: process.env['PATH'] ?? '', ...env },
      timeout: 60_000,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

describe('autoscaler on a Prometheus query (real Prometheus, real apiserver)', () => {
  test('sum(backlog) = 42 at 10 per replica → 5 replicas; bad queries and a stopped Prometheus hold', async (t) => {
    const cluster = await useSharedCluster(t);
    const path = await setUp(cluster, 'api', 2);
    await using kube = await KubeClient.fromKubeconfig({ path: cluster.kubeconfigPath });
    const autoscaler = (query: string, emptyValue?: number) =>
      new Autoscaler(
        {
          name: 'api',
          scaleTargetRef: 'deployment/api',
          namespace: cluster.namespace,
          minReplicas: 1,
          maxReplicas: 10,
          metric: {
            source: prometheusQuerySource({
              url: prometheus.url,
              query,
              ...(emptyValue !== undefined ? { emptyValue } : {}),
            }),
            target: 10,
          },
        },
        { kube },
      );

    await using good = autoscaler('sum(capstan_test_backlog)');
    const up = await good.evaluate();
    assert.equal(up.metric, 42);
    assert.equal(up.action, 'scaled', up.message);
    assert.equal(await specReplicas(cluster, path), 5);

    // A scalar works too.
    await using scalar = autoscaler('scalar(sum(capstan_test_backlog))');
    assert.equal((await scalar.evaluate()).metric, 42);

    const holds: Array<[string, RegExp]> = [
      ['capstan_test_backlog', /2 series, not one/],
      ['capstan_test_backlog{shard="nope"}', /no series/],
      ['sum(capstan_test_backlog', /400|parse error/],
      ['-sum(capstan_test_backlog)', /not a finite number ≥ 0/],
    ];
    for (const [query, why] of holds) {
      await using scaler = autoscaler(query);
      const d = await scaler.evaluate();
      assert.equal(d.action, 'held', query);
      assert.equal(d.reason, 'FailedGetExternalMetric');
      assert.match(d.message, why, query);
      assert.equal(d.currentReplicas, 5);
    }
    // emptyValue: "no series" means a value, here 0 → down to minReplicas (no down window on a fresh scaler
    // would be the HPA's 5 minutes: the first evaluation records the current size, so it holds at 5).
    await using empty = autoscaler('capstan_test_backlog{shard="nope"}', 0);
    const e = await empty.evaluate();
    assert.equal(e.metric, 0);
    assert.equal(e.reason, 'ScaleDownStabilized');
    assert.equal(await specReplicas(cluster, path), 5);

    await prometheus.stop();
    const d = await good.evaluate();
    assert.equal(d.action, 'held');
    assert.equal(d.reason, 'FailedGetExternalMetric');
    assert.match(d.message, /prometheus http:\/\/127\.0\.0\.1:\d+ query sum\(capstan_test_backlog\)/);
    assert.equal(d.desiredReplicas, 5);
    assert.equal(await specReplicas(cluster, path), 5);
    await assert.rejects(prometheusQuerySource({ url: prometheus.url, query: 'up' }).read(), {
      code: ScalingErrorCode.source,
    });
  });

  test('capstan autoscale --once: a user file scales the Deployment; a bad file exits 78 listing every problem', async (t) => {
    const cluster = await useSharedCluster(t);
    // The Prometheus of this file was stopped by the test before: start a fresh one for this test.
    const { port } = exporter.address() as AddressInfo;
    await using prom = await startPrometheus({
      scrapeIntervalMs: 500,
      scrapeTargets: [{ job: 'backlog', targets: [`127.0.0.1:${port}`] }],
    });
    await prom.waitFor('sum(capstan_test_backlog)', (s) => s[0]?.value === 42, { timeoutMs: 60_000 });
    const path = await setUp(cluster, 'web', 1);
    const file = join(work, 'autoscalers.yaml');
    writeFileSync(
      file,
      `autoscalers:
  - name: web
    scaleTargetRef: deploy/web
    namespace: ${cluster.namespace}
    maxReplicas: 4
    metric:
      target: 5
      prometheus: { urlFromEnv: PROM_URL, query: "sum(capstan_test_backlog)" }
`,
    );
    const kc = ['--kubeconfig', cluster.kubeconfigPath];
    const ok = await capstan(['autoscale', file, '--once', ...kc], { PROM_URL: prom.url });
    assert.equal(ok.status, 0, ok.stderr + ok.stdout);
    assert.match(ok.stdout, /^web: scaled deployments\.apps\/web in namespace \S+ 1 → 4 \(metric 42\)/);
    assert.equal(await specReplicas(cluster, path), 4); // ceil(42 / 5) = 9, max 4

    const json = await capstan(['autoscale', file, '--once', '-o', 'json', ...kc], { PROM_URL: prom.url });
    assert.equal(json.status, 0, json.stderr + json.stdout);
    const decision = JSON.parse(json.stdout) as { action: string; proposal: number; desiredReplicas: number };
    assert.equal(decision.proposal, 9);
    assert.equal(decision.desiredReplicas, 4);

    // The source's variable unset: a configuration error (78), before anything is read or written.
    const unset = await capstan(['autoscale', file, '--once', ...kc]);
    assert.equal(unset.status, 78, unset.stderr);
    assert.match(unset.stderr, /autoscalers\[0\]\.metric\.prometheus\.urlFromEnv: PROM_URL is not set/);

    const bad = join(work, 'bad.yaml');
    writeFileSync(
      bad,
      'autoscalers:\n  - name: x\n    scaleTargetRef: deploy\n    minReplicas: 3\n    maxReplicas: 1\n    metric: { target: 0 }\n',
    );
    const refused = await capstan(['autoscale', bad, '--once', ...kc]);
    assert.equal(refused.status, 78, refused.stderr);
    assert.match(refused.stderr, /has 4 problems:/);
    for (const p of [
      'metric: give exactly one source',
      'scaleTargetRef',
      'minReplicas (3) is above maxReplicas (1)',
      'metric.target',
    ]) {
      assert.ok(refused.stderr.includes(`autoscalers[0].${p}`), `${p} in ${refused.stderr}`);
    }
    const missing = await capstan(['autoscale', join(work, 'nope.yaml'), ...kc]);
    assert.equal(missing.status, 2, missing.stderr);

    // Prometheus gone: --once says why and exits 1; nothing changes.
    await prom.stop();
    const down = await capstan(['autoscale', file, '--once', ...kc], { PROM_URL: prom.url });
    assert.equal(down.status, 1, down.stderr);
    assert.match(down.stdout, /^web: held .* 4 → 4 \(metric \?\): cannot read the metric/);
    assert.equal(await specReplicas(cluster, path), 4);
  });
});
