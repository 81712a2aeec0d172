// runControlPlane with the real proxyless client (@grpc/grpc-js-xds) in another process: a mesh file with a
// static version and a discovered one; a change of the file, a change of the discovery file and SIGHUP each
// reach the client; a broken file is refused and the running mesh stays; after shutdown the client keeps
// routing on its last configuration.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type * as grpc from '@grpc/grpc-js';
import { EndpointSlice, KubeClient } from 'capstan/kube';
import { useSharedCluster } from 'capstan/testing';
import { createLogger, Lifecycle } from '../../runtime/index.ts';
import { grpcBootstrap } from './node.ts';
import { TYPE_URLS } from './resources.ts';
import { runControlPlane } from './run.ts';
import { XdsClientProcess } from './testdata/harness.ts';
import { RawAdsStream } from './testdata/raw-ads.ts';
import { startWho } from './testdata/who.ts';

const servers: grpc.Server[] = [];
const ports: Record<string, number> = {};
let dir: string;
let client: XdsClientProcess | undefined;
const lines: string[] = [];
const logger = createLogger({
  name: 'xds-run-test',
  level: 'info',
  destination: { write: (l: string) => lines.push(l) },
});

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'capstan-xds-run-'));
  for (const name of ['v1', 'v2', 'v2b']) {
    const s = await startWho(name);
    servers.push(s.server);
    ports[name] = s.port;
  }
});
after(async () => {
  await client?.close();
  for (const s of servers) s.forceShutdown();
  rmSync(dir, { recursive: true, force: true });
});

async function until(what: string, cond: () => boolean | Promise<boolean>, limitMs = 30_000): Promise<void> {
  const end = Date.now() + limitMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('a mesh file with a discovered version; file changes, discovery changes and SIGHUP reach the client', async () => {
  const endpoints = join(dir, 'v2-endpoints.yaml');
  writeFileSync(endpoints, `- { address: 127.0.0.1, port: ${ports['v2']} }\n`);
  const file = join(dir, 'mesh.yaml');
  const meshText = (weights: string) =>
    [
      'listen: 127.0.0.1:0',
      'services:',
      '  api:',
      '    versions:',
      `      v1: { endpoints: ["127.0.0.1:${ports['v1']}"] }`,
      '      v2: { discovery: { file: v2-endpoints.yaml } }',
      `    weights: ${weights}`,
    ].join('\n');
  writeFileSync(file, meshText('{ v1: 100 }'));
  const running = await runControlPlane({ configFile: file, logger });
  const address = running.controlPlane.address;
  client = new XdsClientProcess(grpcBootstrap({ server: address, nodeId: 'cli-test' }), 'xds:///api');
  assert.deepEqual((await client.call(50)).counts, { v1: 50 });

  const only = (name: string) => async () => {
    const r = await client!.call(20);
    return r.counts[name] === 20;
  };
  writeFileSync(file, meshText('{ v2: 100 }'));
  await until('v2 after the file changed', only('v2'));

  writeFileSync(endpoints, `- { address: 127.0.0.1, port: ${ports['v2b']} }\n`);
  await until('v2b after the discovery file changed', only('v2b'));

  // A broken file is refused (logged), the running mesh stays; SIGHUP with a good one applies it.
  writeFileSync(file, 'services: { api: { versions: {} } }');
  assert.equal(await running.reload('test'), false);
  assert.ok(lines.some((l) => /reload refused/.test(l)));
  assert.deepEqual((await client.call(20)).counts, { v2b: 20 });
  writeFileSync(file, meshText('{ v1: 1 }'));
  process.kill(process.pid, 'SIGHUP');
  await until('v1 after SIGHUP', only('v1'));

  const report = await running.controlPlane.service.stop('test');
  assert.equal(report.exitCode, 0, JSON.stringify(report.errors));
  // The client keeps its last configuration with the control plane gone.
  assert.deepEqual((await client.call(20)).counts, { v1: 20 });
});

test('a version from Kubernetes EndpointSlices (the shared cluster’s apiserver)', async (t) => {
  const cluster = await useSharedCluster(t);
  await using kube = await KubeClient.fromKubeconfig({ path: cluster.kubeconfigPath });
  const slices = kube.resource(EndpointSlice, cluster.namespace);
  const slice = (addresses: string[]): EndpointSlice => ({
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      name: 'api-v2',
      labels: {
        'kubernetes.io/service-name': 'api-v2',
        'endpointslice.kubernetes.io/managed-by': 'capstan-test',
      },
    },
    addressType: 'IPv4',
    ports: [{ name: 'grpc', port: 50051, protocol: 'TCP' }],
    // TEST-NET-1: the apiserver refuses loopback addresses in slices; no traffic is sent here.
    endpoints: addresses.map((a) => ({ addresses: [a], conditions: { ready: true } })),
  });
  await slices.create(slice(['192.0.2.10']));
  const file = join(dir, 'mesh-kube.yaml');
  writeFileSync(
    file,
    [
      'listen: 127.0.0.1:0',
      'services:',
      '  api:',
      '    versions:',
      `      v1: { endpoints: ["127.0.0.1:${ports['v1']}"] }`,
      `      v2: { discovery: { kubernetes: { service: api-v2, namespace: ${cluster.namespace}, port: grpc, kubeconfig: ${cluster.kubeconfigPath} } } }`,
    ].join('\n'),
  );
  const running = await runControlPlane({
    configFile: file,
    logger,
    reloadOnSighup: false,
    lifecycle: new Lifecycle({ drainDelayMs: 0, idleGraceMs: 0 }),
  });
  const stream = new RawAdsStream(running.controlPlane.address, 'delta');
  try {
    stream.send({ node: { id: 'kube' }, type_url: TYPE_URLS.endpoint, resource_names_subscribe: ['api/v2'] });
    const first = await stream.next();
    assert.match(JSON.stringify(first['resources']), /"address":"192\.0\.2\.10","port_value":50051/);
    stream.send({ type_url: TYPE_URLS.endpoint, response_nonce: first['nonce'] });
    const current = await slices.get('api-v2');
    current.endpoints = slice(['192.0.2.11', '192.0.2.12']).endpoints!;
    await slices.replace(current);
    const next = JSON.stringify((await stream.next())['resources']);
    assert.match(next, /192\.0\.2\.11/);
    assert.match(next, /192\.0\.2\.12/);
    assert.doesNotMatch(next, /192\.0\.2\.10/);
  } finally {
    stream.close();
    await running.controlPlane.stop();
  }
});
