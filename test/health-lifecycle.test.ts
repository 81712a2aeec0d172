import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { Health, Lifecycle, redisCheck } from 'capstan/runtime';
import { startRedis } from 'capstan/testing';

// The wiring docs/runtime/health.md recommends: Lifecycle's `stopping` phase flips readiness to 503
// while the server still answers, and the registry is closed as a shutdown hook.
test('graceful shutdown: readiness turns 503 while the server still serves, then health closes', async () => {
  await using redis = await startRedis();
  const health = new Health({ eventLoop: false });
  health.register({ name: 'redis', check: redisCheck(redis.url), timeoutMs: 5_000, intervalMs: 60_000 });
  const server = createServer((req, res) => {
    if (health.handle(req, res)) return;
    res.writeHead(200).end('app');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const probe = async (path: string) => {
    const res = await fetch(base + path, { headers: { connection: 'close' } });
    return { status: res.status, body: await res.text() };
  };

  const lifecycle = new Lifecycle({ drainDelayMs: 0, idleGraceMs: 0 });
  lifecycle.addServer(server);
  const during: Array<{ phase: string; readyz: number; app: number }> = [];
  lifecycle.onPhase(async ({ phase }) => {
    if (phase !== 'stopping') return;
    health.markStopping();
    during.push({ phase, readyz: (await probe('/readyz')).status, app: (await probe('/')).status });
  });
  lifecycle.onShutdown('health', () => health.close());

  assert.equal((await probe('/readyz')).status, 503, 'starting');
  await health.runNow();
  health.markReady();
  const ready = await probe('/readyz?verbose');
  assert.equal(ready.status, 200);
  assert.equal(ready.body, '[+]phase ok\n[+]redis ok\nreadyz check passed\n');

  const report = await lifecycle.shutdown('test');
  assert.deepEqual(during, [{ phase: 'stopping', readyz: 503, app: 200 }]);
  assert.equal(health.phase, 'stopping');
  assert.equal(health.markReady(), false);
  assert.ok(report, 'shutdown returns a report');
  assert.equal(server.listening, false);
});
