import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MetricsRegistry } from '../metrics/registry.ts';
import { Health } from './health.ts';
import { healthCollector } from './metrics.ts';

/** `name{labels} value` lines of an exposition, without comments. */
function lines(text: string, prefix: string): string[] {
  return text.split('\n').filter((l) => l.startsWith(prefix));
}

test('healthCollector exposes cached check results through a real MetricsRegistry', async () => {
  const health = new Health({ eventLoop: { thresholdMs: 60_000 } });
  await using registry = new MetricsRegistry();
  try {
    health.register({ name: 'db', check: async () => {}, intervalMs: 600_000 });
    health.register({
      name: 'cache',
      critical: false,
      intervalMs: 600_000,
      check: async () => {
        throw new Error('down');
      },
    });
    health.register({ name: 'never', check: () => new Promise(() => {}), timeoutMs: 600_000, kind: 'both' });
    await health.runNow('db');
    await health.runNow('cache');
    health.markReady();
    registry.registerCollector(healthCollector(health, { prefix: 'svc_health', intervalMs: 600_000 }));
    await registry.collectNow('svc_health');
    const text = await registry.metrics();

    assert.deepEqual(lines(text, 'svc_health_check_ok{'), [
      'svc_health_check_ok{check="db",kind="readiness",critical="true"} 1',
      'svc_health_check_ok{check="cache",kind="readiness",critical="false"} 0',
      'svc_health_check_ok{check="never",kind="both",critical="true"} 0',
      'svc_health_check_ok{check="eventloop",kind="liveness",critical="true"} 1',
    ]);
    assert.ok((health.check('cache')?.consecutiveFailures ?? 0) >= 1);
    assert.deepEqual(
      lines(text, 'svc_health_check_consecutive_failures{').map((l) =>
        l.replace(/^.*check="([^"]+)"\} /, '$1 '),
      ),
      ['db 0', `cache ${health.check('cache')?.consecutiveFailures}`, 'never 0', 'eventloop 0'],
    );
    // Only checks that completed a run have a latency.
    assert.deepEqual(
      lines(text, 'svc_health_check_latency_seconds{').map((l) => /check="([^"]+)"/.exec(l)?.[1]),
      ['db', 'cache'],
    );
    // "never" is pending and critical: not ready. Liveness has "never" (kind both) too.
    assert.deepEqual(lines(text, 'svc_health_ready '), ['svc_health_ready 0']);
    assert.deepEqual(lines(text, 'svc_health_live '), ['svc_health_live 0']);
    assert.deepEqual(lines(text, 'svc_health_phase{'), [
      'svc_health_phase{phase="starting"} 0',
      'svc_health_phase{phase="serving"} 1',
      'svc_health_phase{phase="stopping"} 0',
    ]);

    health.unregister('never');
    health.markStopping();
    await registry.collectNow('svc_health');
    const after = await registry.metrics();
    assert.deepEqual(lines(after, 'svc_health_live '), ['svc_health_live 1']);
    assert.deepEqual(lines(after, 'svc_health_ready '), ['svc_health_ready 0']);
    assert.match(after, /^svc_health_phase\{phase="stopping"\} 1$/m);
    assert.doesNotMatch(after, /check="never"/);
  } finally {
    health.close();
  }
});
