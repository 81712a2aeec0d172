import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Pool } from 'undici';
import { createLogger } from '../../runtime/index.ts';
import { createLoadBalancer } from '../lb/load-balancer.ts';
import { HEALTH_PATH, startBackends, type TestBackend } from '../lb/testdata/backends.ts';
import { dnsSource } from './dns.ts';
import { feedLoadBalancer } from './feed.ts';
import type { DiscoveryEvent } from './source.ts';
import { startDnsServer, type TestDnsServer } from './testdata/dns-server.ts';

const logger = createLogger({ name: 'feed-test', level: 'silent' });
let dns: TestDnsServer;
let backends: TestBackend[];
before(async () => {
  dns = await startDnsServer();
  backends = await startBackends(3);
});
after(async () => {
  for (const b of backends) await b.kill();
  await dns.close();
});

async function count(client: Pool, n: number): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const res = await client.request({ method: 'GET', path: '/' });
    assert.equal(res.statusCode, 200);
    const name = await res.body.text();
    counts[name] = (counts[name] ?? 0) + 1;
  }
  return counts;
}

test('the load balancer takes its backends from DNS SRV: two targets by weight, then a change', async () => {
  dns.set('_http._tcp.web.test', [
    { type: 'SRV', priority: 0, weight: 30, port: backends[0]!.port, target: 'a.web.test', ttl: 1 },
    { type: 'SRV', priority: 0, weight: 10, port: backends[1]!.port, target: 'b.web.test', ttl: 1 },
  ]);
  dns.set('a.web.test', [{ type: 'A', address: '127.0.0.1', ttl: 1 }]);
  dns.set('b.web.test', [{ type: 'A', address: '127.0.0.1', ttl: 1 }]);
  const lb = createLoadBalancer({
    port: 0,
    host: '127.0.0.1',
    logger,
    lifecycle: { drainDelayMs: 0, idleGraceMs: 50 },
    backends: [],
    policy: 'weighted',
    healthCheck: { path: HEALTH_PATH, intervalMs: 200 },
  });
  const snapshots: DiscoveryEvent[] = [];
  let wake: (() => void) | undefined;
  const feed = feedLoadBalancer(
    lb,
    dnsSource({
      name: '_http._tcp.web.test',
      type: 'SRV',
      servers: [dns.address],
      minRefreshMs: 50,
      maxRefreshMs: 1_000,
    }),
    {
      onDiscoveryEvent: (e) => {
        if (e.type === 'snapshot') snapshots.push(e);
        wake?.();
      },
    },
  );
  await feed.ready;
  const url = await lb.start();
  const client = new Pool(url, { connections: 2 });
  try {
    assert.deepEqual(await count(client, 40), { b0: 30, b1: 10 });

    dns.set('_http._tcp.web.test', [
      { type: 'SRV', priority: 0, weight: 10, port: backends[1]!.port, target: 'b.web.test', ttl: 1 },
      { type: 'SRV', priority: 0, weight: 10, port: backends[2]!.port, target: 'c.web.test', ttl: 1 },
    ]);
    dns.set('c.web.test', [{ type: 'A', address: '127.0.0.1', ttl: 1 }]);
    while (snapshots.length < 2) await new Promise<void>((r) => (wake = r));
    // The snapshot is in once setBackends ran its first check of the new backend: poll the set, not a clock.
    while (lb.backends.available.length !== 2 || lb.backends.get(backends[2]!.url)?.health !== 'healthy') {
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.deepEqual(await count(client, 20), { b1: 10, b2: 10 });

    // DNS fails: the backends stay.
    dns.mode = 'servfail';
    const failures = snapshots.length;
    await new Promise<void>((r) => (wake = r));
    assert.equal(snapshots.length, failures);
    assert.deepEqual(await count(client, 4), { b1: 2, b2: 2 });
  } finally {
    dns.mode = 'ok';
    await client.close();
    await lb.stop();
  }
});
