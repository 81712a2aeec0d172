import assert from 'node:assert/strict';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { TrafficError, TrafficErrorCode } from '../errors.ts';
import { normalizeEndpoints, toBackendEndpoints } from './endpoint.ts';
import { parseEndpointsFile, staticFileSource } from './static-file.ts';
import { readEvents, summary } from './testdata/events.ts';

const dir = mkdtempSync(join(tmpdir(), 'capstan-static-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('a YAML file: the set, an edit, a rename over it, a broken edit (last good kept), a fix', async () => {
  const path = join(dir, 'web.yaml');
  writeFileSync(
    path,
    'endpoints:\n  - { address: 127.0.0.1, port: 9001, weight: 2, tags: [v1, a], metadata: { zone: a } }\n  - { address: 127.0.0.2, port: 9002 }\n',
  );
  // No poll: changes must come from the folder watch.
  const events = readEvents(staticFileSource({ path, pollMs: 0, backoff: { initialMs: 20, maxMs: 50 } }));
  try {
    const first = await events.next();
    assert.deepEqual(summary(first), ['127.0.0.1:9001/2/healthy', '127.0.0.2:9002/1/healthy']);
    assert.ok(first.type === 'snapshot');
    assert.deepEqual(first.endpoints[0]!.tags, ['a', 'v1']);
    assert.deepEqual(first.endpoints[0]!.metadata, { zone: 'a' });

    const snapshot = async () => (await events.until((e) => e.type === 'snapshot')).at(-1)!;
    writeFileSync(path, '- { address: 127.0.0.2, port: 9002, health: draining }\n');
    assert.deepEqual(summary(await snapshot()), ['127.0.0.2:9002/1/draining']);

    const tmp = join(dir, '.web.yaml.tmp');
    writeFileSync(tmp, '- { address: 127.0.0.3, port: 9003 }\n');
    renameSync(tmp, path);
    assert.deepEqual(summary(await snapshot()), ['127.0.0.3:9003/1/healthy']);

    writeFileSync(path, '- { address: 127.0.0.3, port: 99999 }\n');
    const bad = (await events.until((e) => e.type === 'error')).at(-1)!;
    assert.equal(bad.type, 'error');
    assert.ok(bad.type === 'error');
    assert.equal(bad.error.code, TrafficErrorCode.discovery);
    assert.match(bad.error.message, /port 99999/);
    assert.deepEqual(
      bad.lastGood?.map((e) => e.port),
      [9003],
    );

    writeFileSync(path, '- { address: 127.0.0.4, port: 9004 }\n');
    const fixed = await events.until((e) => e.type === 'snapshot');
    assert.deepEqual(summary(fixed.at(-1)!), ['127.0.0.4:9004/1/healthy']);
  } finally {
    await events.stop();
  }
});

test('JSON, the poll finds a change, and a missing file is an error until it appears', async () => {
  const path = join(dir, 'later.json');
  const events = readEvents(staticFileSource({ path, pollMs: 50, backoff: { initialMs: 20, maxMs: 50 } }));
  try {
    const missing = await events.next();
    assert.equal(missing.type, 'error');
    assert.equal(missing.type === 'error' && missing.lastGood, undefined);
    writeFileSync(path, JSON.stringify({ endpoints: [{ address: 'api.internal', port: 80 }] }));
    const found = await events.until((e) => e.type === 'snapshot');
    assert.deepEqual(summary(found.at(-1)!), ['api.internal:80/1/healthy']);
  } finally {
    await events.stop();
  }
});

test('bad entries are each named; duplicates keep the first; order is stable', () => {
  assert.throws(
    () =>
      parseEndpointsFile(
        '- { address: "not an address", port: 80 }\n- { address: 10.0.0.1, port: 0 }\n- { address: 10.0.0.1, port: 80, weight: 0 }\n- { address: 10.0.0.1, port: 80, health: sick }\n- { address: 10.0.0.1, port: 80, tags: [1] }\n',
        'x.yaml',
      ),
    (e: unknown) =>
      e instanceof TrafficError && e.code === TrafficErrorCode.discovery && e.problems.length === 5,
  );
  assert.throws(() => parseEndpointsFile('endpoints: 3', 'x.yaml'), /want a list/);
  assert.throws(
    () => parseEndpointsFile('{', 'x.json'),
    (e: unknown) => e instanceof TrafficError,
  );
  const list = normalizeEndpoints(
    [
      { address: '10.0.0.2', port: 80 },
      { address: '10.0.0.1', port: 81, weight: 5 },
      { address: '10.0.0.1', port: 81, weight: 9 },
      { address: 'fd00::1', port: 80, health: 'unhealthy' },
    ],
    'test',
  );
  assert.deepEqual(
    list.map((e) => `${e.address}:${e.port}/${e.weight}`),
    ['10.0.0.1:81/5', '10.0.0.2:80/1', 'fd00::1:80/1'],
  );
  assert.deepEqual(toBackendEndpoints(list), [
    { url: 'http://10.0.0.1:81', weight: 5 },
    { url: 'http://10.0.0.2:80', weight: 1 },
  ]);
  // No healthy endpoint: the draining ones, never the unhealthy.
  const draining = normalizeEndpoints(
    [
      { address: '10.0.0.1', port: 80, health: 'draining' },
      { address: 'fd00::2', port: 80, health: 'draining' },
      { address: '10.0.0.3', port: 80, health: 'unhealthy' },
    ],
    'test',
  );
  assert.deepEqual(
    toBackendEndpoints(draining, { scheme: 'https' }).map((b) => b.url),
    ['https://10.0.0.1:80', 'https://[fd00::2]:80'],
  );
  assert.throws(
    () => staticFileSource({ path: 'x', pollMs: -1 }),
    (e: unknown) => e instanceof TrafficError && e.code === TrafficErrorCode.invalid,
  );
});
