import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { TrafficError, TrafficErrorCode } from '../errors.ts';
import { dnsSource } from './dns.ts';
import { startDnsServer, type TestDnsServer } from './testdata/dns-server.ts';
import { readEvents, summary } from './testdata/events.ts';

let dns: TestDnsServer;
before(async () => {
  dns = await startDnsServer();
});
after(async () => {
  await dns.close();
});

const fast = {
  minRefreshMs: 50,
  maxRefreshMs: 5_000,
  timeoutMs: 300,
  tries: 1,
  backoff: { initialMs: 20, maxMs: 100 },
};

test('A records: the set, then the new set once the TTL runs out', async () => {
  dns.set('api.test', [
    { type: 'A', address: '10.0.0.2', ttl: 1 },
    { type: 'A', address: '10.0.0.1', ttl: 1 },
  ]);
  const events = readEvents(dnsSource({ name: 'api.test', port: 8080, servers: [dns.address], ...fast }));
  try {
    assert.deepEqual(summary(await events.next()), ['10.0.0.1:8080/1/healthy', '10.0.0.2:8080/1/healthy']);
    dns.set('api.test', [{ type: 'A', address: '10.0.0.3', ttl: 1 }]);
    // An unchanged answer yields nothing: the next event is the changed set.
    assert.deepEqual(summary(await events.next()), ['10.0.0.3:8080/1/healthy']);
    assert.ok(dns.queries.get('A api.test')! >= 2);
  } finally {
    await events.stop();
  }
});

test('a TTL of 0 is re-resolved no sooner than minRefreshMs, a long TTL at least every maxRefreshMs', async () => {
  dns.set('zero.test', [{ type: 'A', address: '10.0.1.1', ttl: 0 }]);
  dns.set('long.test', [{ type: 'A', address: '10.0.1.2', ttl: 86_400 }]);
  const zero = readEvents(
    dnsSource({ name: 'zero.test', port: 80, servers: [dns.address], ...fast, minRefreshMs: 200 }),
  );
  const long = readEvents(
    dnsSource({ name: 'long.test', port: 80, servers: [dns.address], ...fast, maxRefreshMs: 100 }),
  );
  try {
    await zero.next();
    await long.next();
    dns.set('zero.test', [{ type: 'A', address: '10.0.1.3', ttl: 0 }]);
    dns.set('long.test', [{ type: 'A', address: '10.0.1.4', ttl: 86_400 }]);
    assert.deepEqual(summary(await long.next()), ['10.0.1.4:80/1/healthy']);
    const before = dns.queries.get('A zero.test')!;
    assert.deepEqual(summary(await zero.next()), ['10.0.1.3:80/1/healthy']);
    // Between two snapshots at most a few queries: a TTL of 0 did not become a busy loop.
    assert.ok(dns.queries.get('A zero.test')! - before <= 3, `queries: ${dns.queries.get('A zero.test')}`);
  } finally {
    await zero.stop();
    await long.stop();
  }
});

test('A+AAAA gives both families; IPv6 endpoints keep their address', async () => {
  dns.set('dual.test', [
    { type: 'A', address: '10.0.2.1', ttl: 30 },
    { type: 'AAAA', address: 'fd00::1', ttl: 30 },
  ]);
  const events = readEvents(
    dnsSource({ name: 'dual.test', type: 'A+AAAA', port: 443, servers: [dns.address], ...fast }),
  );
  try {
    assert.deepEqual(summary(await events.next()), ['10.0.2.1:443/1/healthy', 'fd00::1:443/1/healthy']);
  } finally {
    await events.stop();
  }
});

test('SRV: two targets with their ports and weights, the lowest priority only, targets resolved', async () => {
  dns.set('_http._tcp.web.test', [
    { type: 'SRV', priority: 10, weight: 30, port: 9001, target: 'a.web.test', ttl: 30 },
    { type: 'SRV', priority: 10, weight: 10, port: 9002, target: 'b.web.test', ttl: 30 },
    { type: 'SRV', priority: 20, weight: 100, port: 9003, target: 'backup.web.test', ttl: 30 },
    { type: 'SRV', priority: 10, weight: 0, port: 9004, target: 'gone.web.test', ttl: 30 },
  ]);
  dns.set('a.web.test', [{ type: 'A', address: '127.0.0.11', ttl: 1 }]);
  dns.set('b.web.test', [{ type: 'A', address: '127.0.0.12', ttl: 1 }]);
  dns.set('backup.web.test', [{ type: 'A', address: '127.0.0.13', ttl: 1 }]);
  const events = readEvents(
    dnsSource({ name: '_http._tcp.web.test', type: 'SRV', servers: [dns.address], ...fast }),
  );
  try {
    const first = await events.next();
    // gone.web.test is NXDOMAIN: left out; backup has a higher priority number: not used.
    assert.deepEqual(summary(first), ['127.0.0.11:9001/30/healthy', '127.0.0.12:9002/10/healthy']);
    assert.equal(first.type === 'snapshot' && first.endpoints[0]!.metadata['dns.target'], 'a.web.test');
    // A target's address changes: seen at its A record's TTL, though node:dns hides the SRV TTL.
    dns.set('b.web.test', [{ type: 'A', address: '127.0.0.22', ttl: 1 }]);
    assert.deepEqual(summary(await events.next()), [
      '127.0.0.11:9001/30/healthy',
      '127.0.0.22:9002/10/healthy',
    ]);
  } finally {
    await events.stop();
  }
});

test('failures are reported with the last good set kept; NODATA is an empty set, NXDOMAIN an error', async () => {
  dns.set('flaky.test', [{ type: 'A', address: '10.0.3.1', ttl: 1 }]);
  const events = readEvents(dnsSource({ name: 'flaky.test', port: 80, servers: [dns.address], ...fast }));
  try {
    assert.deepEqual(summary(await events.next()), ['10.0.3.1:80/1/healthy']);
    dns.mode = 'servfail';
    const failed = await events.next();
    assert.equal(failed.type, 'error');
    assert.ok(failed.type === 'error' && failed.error instanceof TrafficError);
    assert.equal(failed.type === 'error' && failed.error.code, TrafficErrorCode.discovery);
    assert.deepEqual(failed.type === 'error' && failed.lastGood?.map((e) => e.address), ['10.0.3.1']);
    dns.mode = 'silent';
    const timedOut = await events.next();
    assert.equal(timedOut.type, 'error');
    assert.match(timedOut.type === 'error' ? timedOut.error.message : '', /TIMEOUT|timeout/i);
    dns.mode = 'ok';
    dns.set('flaky.test', []);
    const empty = await events.until((e) => e.type === 'snapshot');
    assert.deepEqual(summary(empty.at(-1)!), []);
    dns.remove('flaky.test');
    const gone = await events.next();
    assert.equal(gone.type, 'error');
    assert.match(gone.type === 'error' ? gone.error.message : '', /ENOTFOUND/);
  } finally {
    dns.mode = 'ok';
    await events.stop();
  }
});

test('abort ends the watch, even during a query that never gets an answer', async () => {
  dns.set('hang.test', [{ type: 'A', address: '10.0.4.1', ttl: 1 }]);
  dns.mode = 'silent';
  try {
    const stop = new AbortController();
    const it = dnsSource({ name: 'hang.test', port: 80, servers: [dns.address], timeoutMs: 60_000, tries: 1 })
      .watch({ signal: stop.signal })
      [Symbol.asyncIterator]();
    const pending = it.next();
    setTimeout(() => stop.abort(), 50);
    assert.deepEqual(await pending, { done: true, value: undefined });
  } finally {
    dns.mode = 'ok';
  }
});

test('bad options are refused up front', () => {
  const invalid = (fn: () => unknown) =>
    assert.throws(fn, (e: unknown) => e instanceof TrafficError && e.code === TrafficErrorCode.invalid);
  invalid(() => dnsSource({ name: 'x.test' }));
  invalid(() => dnsSource({ name: 'x.test', port: 70_000 }));
  invalid(() => dnsSource({ name: '', type: 'SRV' }));
  invalid(() => dnsSource({ name: 'x.test', type: 'MX' as 'SRV' }));
  invalid(() => dnsSource({ name: 'x.test', port: 80, minRefreshMs: 5_000, maxRefreshMs: 1_000 }));
  assert.throws(() => dnsSource({ name: 'x.test', port: 80, servers: ['not an address'] }));
});
