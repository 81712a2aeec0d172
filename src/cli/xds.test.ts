// `capstan xds serve` as a program: exit 78 listing every problem of a bad mesh file; a good one serves over
// ADS, a change of the file pushes a new snapshot, SIGTERM ends the streams cleanly and exits 0. (Routing
// with the real gRPC client and reloads in detail: src/traffic/xds/run.test.ts.)
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { envoyTypes, TYPE_URLS } from '../traffic/index.ts';

const main = join(import.meta.dirname, 'main.ts');
const children = new Set<ChildProcess>();
let dir: string;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'capstan-xds-cli-'));
});
after(() => {
  for (const c of children) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

function start(args: string[]) {
  const child = spawn(process.execPath, ['--conditions=capstan-source', main, 'xds', ...args], {
    env: { ...process.env, LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (c) => {
    stdout += c;
  });
  child.stderr!.on('data', (c) => {
    stderr += c;
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, exited, out: () => stdout, err: () => stderr };
}

async function until(what: string, cond: () => boolean | Promise<boolean>, limitMs = 30_000): Promise<void> {
  const end = Date.now() + limitMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('a bad mesh file: exit 78 with every problem and where it is', async () => {
  const file = join(dir, 'bad.yaml');
  writeFileSync(
    file,
    [
      'listen: nowhere',
      'services:',
      '  api:',
      '    versions:',
      '      v1: { endpoints: ["api.internal:80"] }',
      '    weights: { v1: 50, v3: 50 }',
      '  web:',
      '    versions:',
      '      main: { endpoints: ["10.0.0.1:80"] }',
      '    weights: { main: 0 }',
      '    colour: blue',
    ].join('\n'),
  );
  const run = start(['serve', '--config', file]);
  assert.equal(await run.exited, 78);
  const err = run.err();
  assert.match(err, /invalid mesh configuration/);
  assert.match(err, /services\.web: Unrecognized key: "colour"/);
  assert.match(err, /listen: expected host:port/);

  // The same file without the unknown key: the checks zod cannot express come out, all of them.
  writeFileSync(
    file,
    [
      'services:',
      '  api:',
      '    versions:',
      '      v1: { endpoints: ["api.internal:80", { address: "::1", port: 70000 }] }',
      '    weights: { v1: 50, v3: 50 }',
      '  web:',
      '    versions:',
      '      main: { endpoints: ["10.0.0.1:80"] }',
      '    weights: { main: 0 }',
    ].join('\n'),
  );
  const again = start(['serve', '--config', file]);
  assert.equal(await again.exited, 78);
  const e2 = again.err();
  assert.match(e2, /4 problems/);
  assert.match(e2, /services\.api\.versions\.v1\.endpoints\[0\]: "api\.internal" is not an IP address/);
  assert.match(e2, /services\.api\.versions\.v1\.endpoints\[1\]\.port: expected 1\.\.65535, got 70000/);
  assert.match(e2, /services\.api\.weights\.v3: no such version \(v1\)/);
  assert.match(e2, /services\.web\.weights: the weights add up to 0/);
});

test('serves the mesh over ADS; a change of the file pushes a new snapshot; SIGTERM exits 0', async () => {
  const file = join(dir, 'mesh.yaml');
  const mesh = (services: string[]) =>
    `listen: 127.0.0.1:0\nservices:\n${services.map((s) => `  ${s}: { versions: { v1: { endpoints: ["10.0.0.1:80"] } } }\n`).join('')}`;
  writeFileSync(file, mesh(['api']));
  const run = start(['serve', '--config', file]);
  await until('listening', () => /capstan xds: /.test(run.out()) || run.child.exitCode !== null);
  const address = /capstan xds: (\S+)/.exec(run.out())?.[1];
  assert.ok(address, run.err());

  const Ads = grpc.makeGenericClientConstructor(
    envoyTypes()['envoy.service.discovery.v3.AggregatedDiscoveryService'] as grpc.ServiceDefinition,
    'Ads',
  );
  const client = new Ads(address, grpc.credentials.createInsecure());
  const call = (
    client as unknown as {
      StreamAggregatedResources(): grpc.ClientDuplexStream<object, Record<string, unknown>>;
    }
  ).StreamAggregatedResources();
  const responses: Array<Record<string, unknown>> = [];
  call.on('data', (r: Record<string, unknown>) => responses.push(r));
  const status = new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));
  call.on('error', () => {});
  const names = (r: Record<string, unknown>) =>
    (r['resources'] as Array<{ name: string }>).map((l) => l.name).sort();
  call.write({ node: { id: 'cli' }, type_url: TYPE_URLS.listener });
  await until('the listeners', () => responses.length === 1);
  assert.deepEqual(names(responses[0]!), ['api']);
  call.write({ type_url: TYPE_URLS.listener, response_nonce: responses[0]!['nonce'] });

  writeFileSync(file, mesh(['api', 'web']));
  await until('the new listeners', () => responses.length === 2);
  assert.deepEqual(names(responses[1]!), ['api', 'web']);

  run.child.kill('SIGTERM');
  assert.equal(await run.exited, 0, run.err());
  assert.equal((await status).code, grpc.status.OK);
  client.close();
});
