// SIGTERM under load: a Capstan HTTP service (child process) is loaded by a second process over
// keep-alive connections and told to stop mid-run. Nothing accepted may fail: every request the
// service accepted is completed and answered 2xx, the only client-side failures allowed are
// ECONNREFUSED on reconnects after the listener closed (requests that were never accepted).
// Also: Health readiness wired to the lifecycle, in process.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import http from 'node:http';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Health, Lifecycle } from 'capstan/runtime';
import { ensurePeers } from 'capstan/testing';
import { fixture, spawnJson } from './fixtures/json-process.ts';

const CONNECTIONS = 16;

/** The Capstan service under load: 5 ms handler, 500 ms drain delay, 1 s idle grace. */
function startLoadedService(): ReturnType<typeof spawnJson> {
  return spawnJson(fixture('shutdown-service.ts'), [], {
    MODE: 'capstan',
    DRAIN_DELAY_MS: '500',
    DRAIN_TIMEOUT_MS: '10000',
    IDLE_GRACE_MS: '1000',
    HANDLER_MS: '5',
  });
}

test('SIGTERM mid-load: zero failed requests, every accepted request completed and answered', async () => {
  const service = startLoadedService();
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

test('SIGTERM under load from wrk (Debian): no read errors or timeouts; wrk got every request the service accepted', async () => {
  ensurePeers(['wrk']);
  const service = startLoadedService();
  let wrk: ReturnType<typeof spawn> | undefined;
  try {
    const { port } = (await service.waitFor((l) => l.event === 'listening')) as { port: number };
    // Runs past the shutdown on purpose: once the listener is closed its reconnects are refused. wrk connects
    // without blocking and meets the refusal at its first write, so those count as write errors: requests
    // that never reached the service. A lost response would be a read error or a timeout.
    wrk = spawn('wrk', ['-t2', `-c${CONNECTIONS}`, '-d6s', '--timeout', '10s', `http://127.0.0.1:${port}/`], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    wrk.stdout!.setEncoding('utf8').on('data', (c: string) => (out += c));
    wrk.stderr!.setEncoding('utf8').on('data', (c: string) => (out += c));
    const wrkExit = once(wrk, 'close');
    await sleep(2000); // steady load before the signal
    service.child.kill('SIGTERM');
    const { code } = await service.exited;
    assert.equal(code, 0, service.stderr());
    const [wrkCode] = await wrkExit;
    assert.equal(wrkCode, 0, out);
    const counts = service.lines.find((l) => l.event === 'counts') as { accepted: number; completed: number };
    const requests = Number(/(\d+) requests in/.exec(out)?.[1]);
    const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
    assert.deepEqual(
      { read: Number(socket?.[2] ?? 0), timeout: Number(socket?.[4] ?? 0) },
      { read: 0, timeout: 0 },
      out,
    );
    assert.doesNotMatch(out, /Non-2xx or 3xx responses/);
    assert.ok(requests > 100, `load was running (${requests} requests)\n${out}`);
    assert.equal(counts.accepted, counts.completed, 'every accepted request completed');
    assert.equal(requests, counts.completed, `wrk counted every completed request\n${out}`);
  } finally {
    service.kill();
    wrk?.kill();
  }
});

test('with Health wired to onPhase: /readyz turns 503 at stopping while the app keeps serving through the drain delay', async () => {
  const health = new Health();
  health.markReady();
  const server = http.createServer((req, res) => {
    if (health.handle(req, res)) return;
    res.end('app');
  });
  const lifecycle = new Lifecycle({ drainDelayMs: 1000, idleGraceMs: 100 });
  lifecycle.addServer(server);
  lifecycle.onShutdown('close health', () => health.close());
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  const status = async (path: string) => {
    const res = await fetch(`http://127.0.0.1:${port}${path}`);
    await res.text();
    return res.status;
  };
  try {
    assert.equal(await status('/readyz'), 200);
    let during: Promise<[number, number]> | undefined;
    lifecycle.onPhase(({ phase }) => {
      if (phase !== 'stopping') return;
      health.markStopping();
      during = Promise.all([status('/readyz'), status('/work')]);
    });
    const report = await lifecycle.shutdown('test');
    assert.ok(during);
    assert.deepEqual(await during, [503, 200], 'not ready, still serving');
    assert.equal(report.exitCode, 0);
    assert.equal(health.markReady(), false, 'nothing flips readiness back during shutdown');
  } finally {
    server.close();
    health.close();
  }
});
