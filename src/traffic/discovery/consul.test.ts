import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type ConsulPeer, startConsul } from 'capstan/testing';
import { request } from 'undici';
import { createHttpTransport, httpRequest } from '../../runtime/index.ts';
import { TrafficError, TrafficErrorCode } from '../errors.ts';
import { startBackends, type TestBackend } from '../lb/testdata/backends.ts';
import { createDiscoveryDispatcher, type DiscoveryDispatcher } from './client-balancer.ts';
import { type ConsulNotice, consulSource } from './consul.ts';
import type { DiscoveryEvent } from './source.ts';
import { readEvents, summary } from './testdata/events.ts';

const http = createHttpTransport({ retry: false });

async function consulPut(consul: ConsulPeer, path: string, body?: unknown): Promise<void> {
  const res = await httpRequest(http, {
    origin: consul.url,
    method: 'PUT',
    path,
    ...(body !== undefined ? { json: body } : {}),
  });
  const text = await res.body.text();
  assert.equal(res.status, 200, `PUT ${path}: ${res.status} ${text}`);
}

/** An instance of `web` on a test backend, with a TTL check we pass or fail by hand. */
function register(consul: ConsulPeer, id: string, port: number, extra: Record<string, unknown> = {}) {
  return consulPut(consul, '/v1/agent/service/register', {
    ID: id,
    Name: 'web',
    Address: '127.0.0.1',
    Port: port,
    Tags: ['v1'],
    Meta: { version: '1' },
    Check: { CheckID: `ttl-${id}`, TTL: '10m', Status: 'passing' },
    ...extra,
  });
}

/** A recorder of a dispatcher's discovery events and a Consul source's notices. */
function recorder() {
  const events: DiscoveryEvent[] = [];
  const notices: ConsulNotice[] = [];
  let wake: (() => void) | undefined;
  return {
    events,
    notices,
    onDiscoveryEvent: (e: DiscoveryEvent) => {
      events.push(e);
      wake?.();
    },
    onNotice: (n: ConsulNotice) => {
      notices.push(n);
      wake?.();
    },
    /** Wait until `ok()` holds, re-checking after every event or notice. */
    async until(ok: () => boolean) {
      while (!ok()) await new Promise<void>((r) => (wake = r));
    },
    snapshots: () => events.filter((e) => e.type === 'snapshot'),
    ports: (e: DiscoveryEvent | undefined) => (e?.type === 'snapshot' ? e.endpoints.map((x) => x.port) : []),
  };
}

async function send(d: DiscoveryDispatcher, n: number): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const res = await request('http://web.service.consul/', { dispatcher: d });
    assert.equal(res.statusCode, 200);
    const name = await res.body.text();
    counts[name] = (counts[name] ?? 0) + 1;
  }
  return counts;
}

describe('consul source against a real Consul agent (dev mode)', () => {
  let consul: ConsulPeer;
  let backends: TestBackend[];

  before(async () => {
    [consul, backends] = await Promise.all([startConsul(), startBackends(3)]);
  });
  after(async () => {
    await consul?.stop();
    for (const b of backends ?? []) await b.kill();
  });

  test('critical and deregistered instances get no more requests from the round that reports them', async () => {
    for (const [i, b] of backends.entries()) await register(consul, `web-${i}`, b.port);
    const seen = recorder();
    await using d = createDiscoveryDispatcher({
      source: consulSource({ url: consul.url, service: 'web', waitMs: 10_000, onNotice: seen.onNotice }),
      onDiscoveryEvent: seen.onDiscoveryEvent,
    });
    // Agent registrations reach the catalog by anti-entropy: wait for the snapshot with all three.
    await seen.until(() => seen.ports(seen.snapshots().at(-1)).length === 3);
    const first = seen.snapshots().at(-1)!;
    assert.ok(first.type === 'snapshot');
    assert.deepEqual(first.endpoints[0]!.tags, ['v1']);
    assert.equal(first.endpoints[0]!.metadata.version, '1');
    assert.equal(first.endpoints[0]!.metadata['consul.status'], 'passing');
    assert.deepEqual(await send(d, 30), { b0: 10, b1: 10, b2: 10 });

    // web-1's TTL check goes critical: the blocking query in flight returns with it.
    const roundsBefore = seen.notices.filter((n) => n.type === 'round' && n.changed).length;
    const snapshotsBefore = seen.snapshots().length;
    await consulPut(consul, '/v1/agent/check/fail/ttl-web-1?note=down');
    await seen.until(() => seen.snapshots().length > snapshotsBefore);
    assert.deepEqual(
      seen.ports(seen.snapshots().at(-1)).sort(),
      [backends[0]!.port, backends[2]!.port].sort(),
    );
    const rounds = seen.notices.filter((n) => n.type === 'round' && n.changed).length - roundsBefore;
    assert.equal(rounds, 1, 'the first answer with a new index already left web-1 out');
    const b1 = backends[1]!.served();
    const counts = await send(d, 20);
    assert.equal(backends[1]!.served(), b1, 'no request reached the critical instance');
    assert.deepEqual(counts, { b0: 10, b2: 10 });

    // Deregistered: the same.
    const before2 = seen.snapshots().length;
    const rounds2 = seen.notices.filter((n) => n.type === 'round' && n.changed).length;
    await consulPut(consul, '/v1/agent/service/deregister/web-2');
    await seen.until(() => seen.snapshots().length > before2);
    assert.equal(seen.notices.filter((n) => n.type === 'round' && n.changed).length - rounds2, 1);
    const b2 = backends[2]!.served();
    assert.deepEqual(await send(d, 10), { b0: 10 });
    assert.equal(backends[2]!.served(), b2);

    // Passing again: back in.
    const before3 = seen.snapshots().length;
    await consulPut(consul, '/v1/agent/check/pass/ttl-web-1');
    await seen.until(() => seen.snapshots().length > before3);
    assert.deepEqual(await send(d, 10), { b0: 5, b1: 5 });
    await consulPut(consul, '/v1/agent/service/deregister/web-0');
    await consulPut(consul, '/v1/agent/service/deregister/web-1');
  });

  test('warning instances: left out by default, in with their Warning weight when asked; catalog, tags, stale', async () => {
    await register(consul, 'api-1', 7001, { Name: 'api', Weights: { Passing: 5, Warning: 2 } });
    await register(consul, 'api-2', 7002, { Name: 'api', Tags: ['v2'] });
    await consulPut(consul, '/v1/agent/check/warn/ttl-api-1');
    const passing = readEvents(consulSource({ url: consul.url, service: 'api', waitMs: 2_000 }));
    const all = readEvents(
      consulSource({
        url: consul.url,
        service: 'api',
        waitMs: 2_000,
        onlyPassing: false,
        consistency: 'stale',
      }),
    );
    const catalog = readEvents(
      consulSource({
        url: consul.url,
        service: 'api',
        api: 'catalog',
        tags: ['v2'],
        consistency: 'consistent',
      }),
    );
    try {
      const last = async (events: typeof passing, n: number) =>
        summary((await events.until((e) => e.type === 'snapshot' && e.endpoints.length === n)).at(-1)!);
      assert.deepEqual(await last(passing, 1), ['127.0.0.1:7002/1/healthy']);
      assert.deepEqual(await last(all, 2), ['127.0.0.1:7001/2/healthy', '127.0.0.1:7002/1/healthy']);
      assert.deepEqual(await last(catalog, 1), ['127.0.0.1:7002/1/healthy']);
    } finally {
      await passing.stop();
      await all.stop();
      await catalog.stop();
      await consulPut(consul, '/v1/agent/service/deregister/api-1');
      await consulPut(consul, '/v1/agent/service/deregister/api-2');
    }
  });

  test('bad answers and bad options', async () => {
    const invalid = (fn: () => unknown) =>
      assert.throws(fn, (e: unknown) => e instanceof TrafficError && e.code === TrafficErrorCode.invalid);
    invalid(() => consulSource({ service: 'web/../x' }));
    invalid(() => consulSource({ service: 'web', url: 'not a url' }));
    invalid(() => consulSource({ service: 'web', waitMs: 601_000 }));
    invalid(() => consulSource({ service: 'web', rateLimit: { perSecond: 0, burst: 1 } }));
    invalid(() => consulSource({ service: 'web', consistency: 'eventual' as 'stale' }));
    // An unknown datacenter: Consul answers 500; reported, and retried.
    const events = readEvents(
      consulSource({
        url: consul.url,
        service: 'web',
        datacenter: 'nowhere',
        backoff: { initialMs: 10, maxMs: 20 },
      }),
    );
    try {
      const e = await events.next();
      assert.equal(e.type, 'error');
      assert.ok(e.type === 'error');
      assert.equal(e.error.code, TrafficErrorCode.discovery);
      assert.match(e.error.message, /500 .*datacenter/i);
      assert.equal((await events.next()).type, 'error');
    } finally {
      await events.stop();
    }
  });

  test('agent restart: errors keep the last set in use, then the index going backwards is reset and the source resumes', async () => {
    for (const [i, b] of backends.entries()) await register(consul, `web-${i}`, b.port);
    const seen = recorder();
    await using d = createDiscoveryDispatcher({
      source: consulSource({
        url: consul.url,
        service: 'web',
        waitMs: 10_000,
        onNotice: seen.onNotice,
        backoff: { initialMs: 50, maxMs: 200 },
      }),
      onDiscoveryEvent: seen.onDiscoveryEvent,
    });
    await seen.until(() => seen.ports(seen.snapshots().at(-1)).length === 3);
    // Push the index well past what a fresh agent starts at.
    for (let i = 0; i < 20; i++) await consulPut(consul, `/v1/kv/capstan/bump-${i}`, i);
    await consulPut(consul, '/v1/agent/check/fail/ttl-web-2');
    await seen.until(() => seen.ports(seen.snapshots().at(-1)).length === 2);
    const indexBefore = (seen.notices.filter((n) => n.type === 'round').at(-1) as { index: number }).index;

    const { httpPort, dnsPort, serverPort, serfLanPort, serfWanPort } = consul;
    await consul.stop();
    await seen.until(() => seen.events.some((e) => e.type === 'error'));
    const failure = seen.events.find((e) => e.type === 'error')!;
    assert.ok(failure.type === 'error');
    assert.equal(failure.lastGood?.length, 2);
    // Consul is down; the endpoints are not: requests still flow to the last good set.
    assert.deepEqual(await send(d, 4), { b0: 2, b1: 2 });

    consul = await startConsul({ ports: { httpPort, dnsPort, serverPort, serfLanPort, serfWanPort } });
    await register(consul, 'web-2', backends[2]!.port);
    await seen.until(() => {
      const last = seen.snapshots().at(-1);
      return seen.ports(last).length === 1 && seen.ports(last)[0] === backends[2]!.port;
    });
    const reset = seen.notices.find((n) => n.type === 'index-reset');
    assert.ok(reset, `no index reset in ${JSON.stringify(seen.notices.slice(-5))}`);
    assert.ok(reset.type === 'index-reset' && reset.from >= indexBefore && reset.to < reset.from);
    assert.deepEqual(await send(d, 3), { b2: 3 });
    // And it blocks again afterwards (rounds with an index >= 1), rather than spinning.
    const last = seen.notices.filter((n) => n.type === 'round').at(-1);
    assert.ok(last?.type === 'round' && last.index >= 1);
  });
});

/**
 * A server speaking just enough of Consul's health API to produce what a real agent rarely does: an index
 * of 0, no index, a body that is not JSON, an index that moves on every query (a flapping service).
 */
async function fakeConsul(answer: (query: URLSearchParams, n: number) => { index?: string; body: string }) {
  const { createServer } = await import('node:http');
  const queries: URLSearchParams[] = [];
  const server = createServer((req, res) => {
    const query = new URL(req.url ?? '/', 'http://x').searchParams;
    queries.push(query);
    const a = answer(query, queries.length);
    res.writeHead(200, {
      'content-type': 'application/json',
      ...(a.index !== undefined ? { 'x-consul-index': a.index } : {}),
    });
    res.end(a.body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    queries,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

const entry = (port: number) => ({
  Node: { Node: 'n1', Address: '127.0.0.1' },
  Service: { ID: `s${port}`, Service: 'web', Port: port, Tags: null, Meta: null },
  Checks: [{ Status: 'passing' }],
});

test('index rules: 0 is taken as 1, a missing index or a body that is not JSON is an error; rounds are rate limited', async () => {
  const fake = await fakeConsul((_q, n) => {
    if (n === 1) return { index: '0', body: JSON.stringify([entry(1000)]) };
    if (n === 2) return { body: '[]' };
    if (n === 3) return { index: '5', body: 'not json' };
    // From here on a new index every time: without the rate limit this would be a busy loop.
    return { index: String(n), body: JSON.stringify([entry(1000 + n)]) };
  });
  const notices: ConsulNotice[] = [];
  const events = readEvents(
    consulSource({
      url: fake.url,
      service: 'web',
      waitMs: 1_000,
      rateLimit: { perSecond: 10, burst: 2 },
      backoff: { initialMs: 1, maxMs: 1 },
      onNotice: (n) => notices.push(n),
    }),
  );
  try {
    assert.deepEqual(summary(await events.next()), ['127.0.0.1:1000/1/healthy']);
    assert.deepEqual(notices[0], { type: 'index-below-one', index: 0 });
    const missing = await events.next();
    assert.match(missing.type === 'error' ? missing.error.message : '', /X-Consul-Index/);
    const notJson = await events.next();
    assert.match(notJson.type === 'error' ? notJson.error.message : '', /not JSON/);
    // The query after the 0 asked to block on index 1, not 0 (which never blocks).
    assert.equal(fake.queries[1]!.get('index'), '1');
    assert.equal(fake.queries[1]!.get('passing'), 'true');
    const start = performance.now();
    for (let i = 0; i < 8; i++) assert.equal((await events.next()).type, 'snapshot');
    // After a failure the next query reads without blocking.
    assert.equal(fake.queries[3]!.get('index'), null);
    // 8 rounds at 10/s with a burst of 2: at least 0.6 s (a lower bound: a slow machine only adds to it).
    assert.ok(performance.now() - start >= 550, `8 rounds in ${performance.now() - start} ms`);
  } finally {
    await events.stop();
    await fake.close();
  }
});
