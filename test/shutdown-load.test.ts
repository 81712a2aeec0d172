// SIGTERM under load: a Capstan HTTP service (child process) is loaded by a second process over
// keep-alive connections and told to stop mid-run. Nothing accepted may fail: every request the
// service accepted is completed and answered 2xx, the only client-side failures allowed are
// ECONNREFUSED on reconnects after the listener closed (requests that were never accepted).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fixture, spawnJson } from './fixtures/json-process.ts';

const CONNECTIONS = 16;

test('SIGTERM mid-load: zero failed requests, every accepted request completed and answered', async () => {
  const service = spawnJson(fixture('shutdown-service.ts'), [], {
    MODE: 'capstan',
    DRAIN_DELAY_MS: '500',
    DRAIN_TIMEOUT_MS: '10000',
    IDLE_GRACE_MS: '1000',
    HANDLER_MS: '5',
  });
  let load: ReturnType<typeof spawnJson> | undefined;
  try {
    const { port } = (await service.waitFor((l) => l.event === 'listening')) as { port: number };
    load = spawnJson(fixture('load-client.ts'), [`http://127.0.0.1:${port}`], {
      CONNECTIONS: String(CONNECTIONS),
      DURATION_MS: '20000', // upper bound; the workers stop once the listener refuses them
    });
    await load.waitFor((l) => l.event === 'started');
    await sleep(1500); // steady load before the signal
    service.child.kill('SIGTERM');

    const { code } = await service.exited;
    assert.equal(code, 0, service.stderr());
    const result = (await load.waitFor((l) => l.event === 'done', 60_000)) as {
      ok: number;
      non2xx: number;
      refused: number;
      errors: number;
      connectionClose: number;
      errorCodes: Record<string, number>;
    };
    const counts = service.lines.find((l) => l.event === 'counts') as { accepted: number; completed: number };
    const stopped = service.lines.find((l) => l.phase === 'stopped') as {
      servers: Array<{ inFlightAtClose: number; acceptedWhileDraining: number; cut: number }>;
    };

    assert.deepEqual(result.errorCodes, {});
    assert.equal(result.errors, 0, 'no resets, timeouts or closed sockets on accepted requests');
    assert.equal(result.non2xx, 0);
    assert.ok(result.ok > 100, `load was running (${result.ok} responses)`);
    assert.equal(counts.accepted, counts.completed, 'every accepted request completed');
    assert.equal(
      result.ok,
      counts.completed,
      'the client got an answer for every request the service completed',
    );
    assert.equal(
      result.refused,
      CONNECTIONS,
      'each worker ended on a refused reconnect, after the listener closed',
    );
    assert.ok(result.connectionClose >= 1, 'responses after the listener closed carried Connection: close');
    assert.equal(stopped.servers[0]!.cut, 0);
  } finally {
    service.kill();
    load?.kill();
  }
});
