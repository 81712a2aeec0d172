import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { after, before, test } from 'node:test';
import { Pool } from 'undici';
import { createLogger } from '../../runtime/index.ts';
import { TrafficErrorCode } from '../errors.ts';
import { createLoadBalancer, type LoadBalancer, type LoadBalancerOptions } from './load-balancer.ts';
import { HEALTH_PATH, startBackends, type TestBackend } from './testdata/backends.ts';

const logger = createLogger({ name: 'lb-test', level: 'silent' });
let backends: TestBackend[];

before(async () => {
  backends = await startBackends(3);
});
after(async () => {
  for (const b of backends) await b.kill();
});

async function withLb(
  options: Partial<LoadBalancerOptions>,
  fn: (lb: LoadBalancer, client: Pool) => Promise<void>,
): Promise<void> {
  const lb = createLoadBalancer({
    port: 0,
    host: '127.0.0.1',
    logger,
    lifecycle: { drainDelayMs: 0, idleGraceMs: 50 },
    backends: backends.map((b) => b.url),
    healthCheck: { path: HEALTH_PATH, intervalMs: 200 },
    ...options,
  });
  const url = await lb.start();
  const client = new Pool(url, { connections: 4 });
  try {
    await fn(lb, client);
  } finally {
    await client.close();
    await lb.stop();
  }
}

async function get(client: Pool, path = '/', headers: Record<string, string> = {}) {
  const res = await client.request({ method: 'GET', path, headers });
  return { status: res.statusCode, headers: res.headers, body: await res.body.text() };
}

async function countBodies(client: Pool, n: number, headers: Record<string, string> = {}) {
  const counts: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const { status, body } = await get(client, '/', headers);
    assert.equal(status, 200);
    counts[body] = (counts[body] ?? 0) + 1;
  }
  return counts;
}

test('round robin spreads requests evenly over the backends', async () => {
  await withLb({ policy: 'round-robin' }, async (_lb, client) => {
    assert.deepEqual(await countBodies(client, 30), { b0: 10, b1: 10, b2: 10 });
  });
});

test('weighted sends in proportion to the weights, interleaved', async () => {
  await withLb(
    {
      policy: 'weighted',
      backends: [
        { url: backends[0]!.url, weight: 3 },
        { url: backends[1]!.url, weight: 1 },
      ],
    },
    async (_lb, client) => {
      const order: string[] = [];
      for (let i = 0; i < 8; i++) order.push((await get(client)).body);
      assert.deepEqual(
        { b0: order.filter((b) => b === 'b0').length, b1: order.filter((b) => b === 'b1').length },
        { b0: 6, b1: 2 },
      );
      // Smooth: never four of b0 in a row.
      assert.ok(!order.join(',').includes('b0,b0,b0,b0'), order.join(','));
    },
  );
});

test('consistent hash keeps a key on one backend, and only the keys of a removed backend move', async () => {
  await withLb({ policy: 'consistent-hash', hashHeader: 'X-User' }, async (lb, client) => {
    const before = new Map<string, string>();
    for (let i = 0; i < 60; i++) {
      const key = `user-${i}`;
      const first = (await get(client, '/', { 'x-user': key })).body;
      assert.equal((await get(client, '/', { 'x-user': key })).body, first, `${key} stays put`);
      before.set(key, first);
    }
    const owners = new Set(before.values());
    assert.equal(owners.size, 3, 'keys spread over all three');
    await lb.update({
      policy: 'consistent-hash',
      hashHeader: 'X-User',
      backends: [backends[0]!.url, backends[1]!.url],
      healthCheck: { path: HEALTH_PATH, intervalMs: 200 },
    });
    for (const [key, owner] of before) {
      const now = (await get(client, '/', { 'x-user': key })).body;
      if (owner !== 'b2') assert.equal(now, owner, `${key} did not move`);
      else assert.notEqual(now, 'b2');
    }
  });
});

test('least-request avoids a backend busy with slow requests', async () => {
  const slow = backends[0]!;
  const pending: Array<() => void> = [];
  slow.behaviour = (req, res) => {
    req.resume();
    if ((req.url ?? '').startsWith('/slow')) pending.push(() => res.end('b0'));
    else res.end('b0');
  };
  try {
    await withLb(
      { policy: 'least-request', backends: [backends[0]!.url, backends[1]!.url], random: mulberry(7) },
      async (_lb, client) => {
        const slowClient = new Pool(_lb.url, { connections: 20 });
        // Ten slow requests in flight: b0 gets its share (each pick compares two backends).
        const slowRequests = Array.from({ length: 10 }, () =>
          slowClient.request({ method: 'GET', path: '/slow' }),
        );
        while (pending.length === 0) await new Promise((r) => setTimeout(r, 10));
        const counts = await countBodies(client, 20);
        assert.equal(counts['b0'] ?? 0, 0, `b0 busy, yet got ${counts['b0']}`);
        for (const release of pending.splice(0)) release();
        await new Promise((r) => setTimeout(r, 50));
        for (const release of pending.splice(0)) release();
        for (const r of await Promise.all(slowRequests)) await r.body.dump();
        await slowClient.close();
      },
    );
  } finally {
    slow.behaviour = (req, res) => {
      req.resume();
      req.once('end', () => res.end('b0'));
    };
  }
});

test('X-Forwarded-* from an untrusted client are replaced; a trusted proxy’s chain is extended', async () => {
  await withLb({ backends: [backends[0]!.url] }, async (_lb, client) => {
    await get(client, '/', {
      'x-forwarded-for': '6.6.6.6',
      'x-forwarded-proto': 'https',
      forwarded: 'for=6.6.6.6',
    });
    const h = backends[0]!.lastHeaders!;
    assert.equal(h['x-forwarded-for'], '127.0.0.1');
    assert.equal(h['x-forwarded-proto'], 'http');
    assert.equal(h['forwarded'], undefined);
    assert.match(String(h['x-forwarded-host']), /^127\.0\.0\.1:\d+$/);
    assert.ok(h['x-request-id'], 'the request id travels to the backend');
  });
  await withLb({ backends: [backends[0]!.url], trustedProxies: ['127.0.0.0/8'] }, async (_lb, client) => {
    await get(client, '/', { 'x-forwarded-for': '203.0.113.9', 'x-forwarded-proto': 'https' });
    const h = backends[0]!.lastHeaders!;
    assert.equal(h['x-forwarded-for'], '203.0.113.9, 127.0.0.1');
    assert.equal(h['x-forwarded-proto'], 'https');
  });
});

test('hop-by-hop headers, and headers named in Connection, do not reach the backend', async () => {
  await withLb({ backends: [backends[0]!.url] }, async (lb) => {
    // node:http, not undici: undici keeps a Connection header to itself.
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(`${lb.url}/`, {
        headers: {
          connection: 'keep-alive, x-secret-hop',
          'x-secret-hop': '1',
          'proxy-authorization': 'Basic eA==',
          te: 'trailers',
          'x-kept': 'yes',
        },
        agent: false,
      });
      req.on('response', (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end();
    });
    assert.equal(status, 200);
    const h = backends[0]!.lastHeaders!;
    assert.equal(h['x-secret-hop'], undefined);
    assert.equal(h['proxy-authorization'], undefined);
    assert.equal(h['te'], undefined);
    assert.equal(h['x-kept'], 'yes');
  });
});

test('bad settings are refused with a code', () => {
  const bad: Array<Partial<LoadBalancerOptions>> = [
    { backends: ['ftp://127.0.0.1:1'] },
    { backends: ['http://127.0.0.1:1/path'] },
    { backends: [{ url: 'http://127.0.0.1:1', weight: 0 }] },
    { backends: ['http://127.0.0.1:1', 'http://127.0.0.1:1'] },
    { backends: [], policy: 'random' as never },
    { backends: [], policy: 'consistent-hash' },
    { backends: [], healthCheck: { intervalMs: -1 } },
    { backends: [], trustedProxies: ['10.0.0.0/33'] },
    { backends: [], retry: { retries: 11 } },
  ];
  for (const options of bad) {
    assert.throws(
      () => createLoadBalancer({ port: 0, logger, ...options, backends: options.backends ?? [] }),
      (err: { code?: string }) => err.code === TrafficErrorCode.invalid,
      JSON.stringify(options),
    );
  }
});

function mulberry(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
