import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { createServer as createHttp2Server, connect as http2Connect } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { after, describe, test } from 'node:test';
import { HealthError } from './errors.ts';
import { Health } from './health.ts';
import type { CheckState, HealthOptions, HealthReport } from './types.ts';

/** A promise whose settlement the test controls. */
function deferred<T = void>() {
  let resolve!: (value: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

const open: Array<{ health: Health; server: Server }> = [];
after(async () => {
  for (const { health, server } of open) {
    health.close();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
});

/** A Health mounted on a real HTTP server on 127.0.0.1:0; other paths answer 404 "app". */
async function serve(options: HealthOptions = {}) {
  const health = new Health({ eventLoop: false, ...options });
  const server = createServer((req, res) => {
    if (health.handle(req, res)) return;
    res.writeHead(404).end('app');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  open.push({ health, server });
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const get = async (path: string, init: RequestInit = {}) => {
    const res = await fetch(base + path, init);
    const text = await res.text();
    return { status: res.status, text, type: res.headers.get('content-type') ?? '', headers: res.headers };
  };
  const json = async (path: string) => {
    const r = await get(path);
    return { status: r.status, body: JSON.parse(r.text) as HealthReport & CheckState };
  };
  return { health, get, json };
}

const ok = async () => {};
const fail = (message: string) => async () => {
  throw new Error(message);
};

describe('Health registry and probes', () => {
  test('readiness is 503 while starting and stopping, whatever the checks say; livez ignores the phase', async () => {
    const { health, json, get } = await serve();
    health.register({ name: 'db', check: ok });
    await health.runNow();
    let r = await json('/readyz');
    assert.equal(r.status, 503);
    assert.equal(r.body.phase, 'starting');
    assert.equal(r.body.status, 'failing');
    assert.match(r.body.reason ?? '', /phase is starting/);
    assert.equal(r.body.checks[0]?.status, 'ok');
    assert.equal((await get('/livez')).status, 200);

    assert.equal(health.markReady(), true);
    r = await json('/readyz');
    assert.equal(r.status, 200);
    assert.equal(r.body.status, 'ok');
    assert.equal((await get('/healthz')).status, 200);

    assert.equal(health.markStopping(), true);
    r = await json('/readyz');
    assert.equal(r.status, 503);
    assert.equal(r.body.phase, 'stopping');
    // Stopping is final: nothing may flip readiness back during shutdown.
    assert.equal(health.markReady(), false);
    assert.equal(health.phase, 'stopping');
    assert.equal((await get('/readyz')).status, 503);
    assert.equal((await get('/healthz')).status, 503);
    assert.equal((await get('/livez')).status, 200);
    const verbose = await get('/readyz?verbose');
    assert.match(verbose.text, /^\[-\]phase failed: stopping$/m);
  });

  test('a pending check counts as not ready until its first run completes', async () => {
    const { health, json, get } = await serve({ phase: 'serving' });
    const gate = deferred();
    health.register({ name: 'slow-start', check: () => gate.promise, timeoutMs: 60_000 });
    let r = await json('/readyz');
    assert.equal(r.status, 503);
    assert.equal(r.body.checks[0]?.status, 'pending');
    assert.equal(r.body.checks[0]?.lastRun, null);
    const text = await get('/readyz?verbose');
    assert.match(text.text, /^\[-\]slow-start failed: pending \(no result yet\)$/m);
    gate.resolve();
    await health.runNow('slow-start');
    r = await json('/readyz');
    assert.equal(r.status, 200);
    assert.equal(r.body.checks[0]?.status, 'ok');
    assert.equal(r.body.checks[0]?.runs, 1);
  });

  test('critical failure is 503; non-critical failure is 200 degraded and names the check', async () => {
    const { health, json, get } = await serve({ phase: 'serving', exposeCheckErrors: true });
    health.register({ name: 'db', check: ok });
    health.register({ name: 'cache', check: fail('cache unreachable'), critical: false });
    await health.runNow();
    let r = await json('/readyz');
    assert.equal(r.status, 200);
    assert.equal(r.body.status, 'degraded');
    assert.match(r.body.reason ?? '', /degraded \(non-critical failing\): cache/);
    const cache = r.body.checks.find((c) => c.name === 'cache');
    assert.equal(cache?.status, 'failing');
    assert.equal(cache?.critical, false);
    assert.equal(cache?.lastError, 'cache unreachable');
    assert.equal(typeof cache?.latencyMs, 'number');
    assert.ok(cache?.lastRun && !Number.isNaN(Date.parse(cache.lastRun)));
    let text = await get('/readyz?verbose');
    assert.equal(text.status, 200);
    assert.match(text.type, /^text\/plain/);
    assert.equal(
      text.text,
      '[+]phase ok\n[+]db ok\n[-]cache failed (non-critical): cache unreachable\nreadyz check passed (degraded)\n',
    );

    health.register({ name: 'queue', check: fail('broker down') });
    await health.runNow('queue');
    r = await json('/readyz');
    assert.equal(r.status, 503);
    assert.equal(r.body.status, 'failing');
    assert.match(r.body.reason ?? '', /failing: queue/);
    text = await get('/healthz?verbose');
    assert.equal(text.status, 503);
    assert.match(text.text, /^\[-\]queue failed: broker down$/m);
    assert.match(text.text, /healthz check failed\n$/);
  });

  test('probes answer from cache and never wait on a hanging check', async () => {
    const { health, json } = await serve({ phase: 'serving' });
    let calls = 0;
    // Never settles and ignores its signal: the worst kind of dependency client.
    health.register({
      name: 'stuck',
      check: () => {
        calls += 1;
        return new Promise(() => {});
      },
      timeoutMs: 120_000,
      intervalMs: 120_000,
    });
    health.register({ name: 'fine', check: ok });
    await health.runNow('fine');
    const results = await Promise.all([json('/readyz'), json('/readyz'), json('/readyz/stuck')]);
    for (const r of results.slice(0, 2)) {
      assert.equal(r.status, 503);
      assert.deepEqual(
        r.body.checks.map((c) => [c.name, c.status]),
        [
          ['stuck', 'pending'],
          ['fine', 'ok'],
        ],
      );
    }
    assert.equal(results[2]?.status, 503);
    assert.equal(results[2]?.body.status, 'pending');
    assert.equal(calls, 1);
  });

  test('a check that outlives its timeout is aborted and reported failing with a timeout error', async () => {
    const { health } = await serve({ phase: 'serving' });
    let sawAbort = false;
    health.register({
      name: 'slow',
      timeoutMs: 150,
      check: (signal) =>
        new Promise((_, reject) => {
          signal.addEventListener('abort', () => {
            sawAbort = true;
            reject(signal.reason);
          });
        }),
    });
    const [state] = await health.runNow('slow');
    assert.equal(sawAbort, true);
    assert.equal(state?.status, 'failing');
    assert.equal(state?.lastErrorCode, 'CAP_ERR_RUNTIME_HEALTH_TIMEOUT');
    assert.match(state?.lastError ?? '', /timed out after 150 ms/);
    assert.equal(health.status().httpStatus, 503);
  });

  test('a check ignoring its signal is not started again until its hung run settles', async () => {
    const { health } = await serve({ phase: 'serving' });
    const hung = deferred();
    let calls = 0;
    health.register({
      name: 'deaf',
      timeoutMs: 100,
      intervalMs: 600_000,
      check: () => {
        calls += 1;
        return calls === 1 ? hung.promise : Promise.resolve();
      },
    });
    let [state] = await health.runNow('deaf');
    assert.equal(state?.lastErrorCode, 'CAP_ERR_RUNTIME_HEALTH_TIMEOUT');
    [state] = await health.runNow('deaf');
    assert.equal(calls, 1);
    assert.equal(state?.status, 'failing');
    assert.match(state?.lastError ?? '', /still hanging/);
    hung.resolve();
    await hung.promise;
    await new Promise((r) => setImmediate(r));
    [state] = await health.runNow('deaf');
    assert.equal(calls, 2);
    assert.equal(state?.status, 'ok');
    assert.equal(state?.runs, 3);
    // The last error is kept for diagnosis after recovery.
    assert.match(state?.lastError ?? '', /still hanging/);
  });

  test('checks rerun on their interval and recover', async () => {
    const { health } = await serve({ phase: 'serving' });
    let n = 0;
    const third = deferred();
    health.register({
      name: 'flappy',
      intervalMs: 10,
      check: async () => {
        n += 1;
        if (n === 3) third.resolve();
        if (n < 3) throw new Error(`attempt ${n}`);
        return { detail: `attempt ${n}` };
      },
    });
    await third.promise;
    const [state] = await health.runNow('flappy');
    assert.equal(state?.status, 'ok');
    assert.ok((state?.runs ?? 0) >= 3);
    assert.match(state?.detail ?? '', /^attempt \d+$/);
    assert.equal(state?.consecutiveFailures, 0);
  });

  test('failureThreshold keeps an ok check ok until enough consecutive failures', async () => {
    const health = new Health({ eventLoop: false, phase: 'serving' });
    try {
      let healthy = true;
      health.register({
        name: 'dampened',
        failureThreshold: 3,
        intervalMs: 600_000,
        check: async () => {
          if (!healthy) throw new Error('blip');
        },
      });
      assert.equal((await health.runNow('dampened'))[0]?.status, 'ok');
      healthy = false;
      assert.equal((await health.runNow('dampened'))[0]?.status, 'ok');
      assert.equal((await health.runNow('dampened'))[0]?.status, 'ok');
      const [state] = await health.runNow('dampened');
      assert.equal(state?.status, 'failing');
      assert.equal(state?.consecutiveFailures, 3);
    } finally {
      health.close();
    }
  });

  test('onChange reports status transitions and phase changes, not every run', async () => {
    const health = new Health({ eventLoop: false });
    const seen: string[] = [];
    health.onChange(() => {
      throw new Error('a broken listener must not matter');
    });
    const off = health.onChange((c) => {
      seen.push(
        c.type === 'check' ? `${c.name}:${c.from}->${c.to}:${c.state.runs}` : `phase:${c.from}->${c.to}`,
      );
    });
    try {
      let healthy = true;
      health.register({
        name: 'dep',
        intervalMs: 600_000,
        check: async () => {
          if (!healthy) throw new Error('down');
        },
      });
      await health.runNow();
      await health.runNow();
      health.markReady();
      healthy = false;
      await health.runNow();
      await health.runNow();
      healthy = true;
      await health.runNow();
      health.markStopping();
      health.markReady();
      off();
      healthy = false;
      await health.runNow();
      assert.deepEqual(seen, [
        'dep:pending->ok:1',
        'phase:starting->serving',
        'dep:ok->failing:3',
        'dep:failing->ok:5',
        'phase:serving->stopping',
      ]);
    } finally {
      health.close();
    }
  });

  test('exclude drops checks like kube-apiserver and warns about unknown names', async () => {
    const { health, json, get } = await serve({ phase: 'serving' });
    health.register({ name: 'db', check: fail('down') });
    health.register({ name: 'cache', check: fail('down') });
    health.register({ name: 'disk', check: ok });
    await health.runNow();
    assert.equal((await json('/readyz?exclude=db')).status, 503);
    const r = await json('/readyz?exclude=db&exclude=cache');
    assert.equal(r.status, 200);
    assert.deepEqual(
      r.body.checks.map((c) => c.name),
      ['disk'],
    );
    assert.equal((await json('/readyz?exclude=db,cache')).status, 200);
    const text = await get('/readyz?verbose&exclude=db&exclude=cache&exclude=nope');
    assert.equal(text.status, 200);
    assert.equal(
      text.text,
      '[+]phase ok\n[+]disk ok\nwarn: some health checks cannot be excluded: no matches for "nope"\nreadyz check passed\n',
    );
    assert.deepEqual(health.status('readiness', { exclude: ['nope'] }).unknownExcludes, ['nope']);
  });

  test('per-check endpoints, kinds, unknown names, methods and HEAD', async () => {
    const { health, json, get } = await serve({ phase: 'serving', exposeCheckErrors: true });
    health.register({ name: 'db', check: fail('refused') });
    health.register({ name: 'disk', check: ok, kind: 'both' });
    health.register({ name: 'deadlock', check: ok, kind: 'liveness' });
    await health.runNow();
    const db = await json('/readyz/db');
    assert.equal(db.status, 503);
    assert.equal(db.body.name, 'db');
    assert.equal(db.body.lastError, 'refused');
    assert.equal((await json('/readyz/disk')).status, 200);
    assert.equal((await json('/healthz/disk')).status, 200);
    assert.equal((await json('/livez/disk')).status, 200);
    assert.equal((await json('/livez/deadlock')).status, 200);
    assert.equal((await get('/readyz/deadlock')).status, 404, 'liveness-only check is not under /readyz');
    assert.equal((await get('/livez/db')).status, 404, 'readiness-only check is not under /livez');
    assert.equal((await get('/readyz/nope')).status, 404);
    assert.equal((await get('/readyz/db?verbose')).text, '[-]db failed: refused\n');
    assert.equal((await get('/readyz/%E0%A4%A')).status, 400);

    const live = await json('/livez');
    assert.equal(live.status, 200);
    assert.deepEqual(
      live.body.checks.map((c) => c.name),
      ['disk', 'deadlock'],
    );

    const post = await get('/readyz', { method: 'POST' });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get('allow'), 'GET, HEAD');
    const head = await get('/readyz', { method: 'HEAD' });
    assert.equal(head.status, 503);
    assert.equal(head.text, '');
    assert.equal(head.headers.get('cache-control'), 'no-store');

    assert.equal((await get('/other')).text, 'app');
    assert.equal((await get('/readyzz')).text, 'app');
    assert.equal((await get('/readyz/db/extra')).text, 'app');
  });

  test('basePath; reasons withheld by default on every endpoint, shown only when the service opts in', async () => {
    assert.equal(new Health({ eventLoop: false, basePath: 'ops/' }).basePath, '/ops');
    const { health, get, json } = await serve({ phase: 'serving', basePath: '/-/' });
    health.register({ name: 'db', check: fail('connect postgres://app:hunter2@db/app: password=hunter2') });
    health.register({ name: 'cache', check: fail('token tok-hunter2 refused'), critical: false });
    health.register({ name: 'disk', check: ok });
    await health.runNow();
    assert.equal((await get('/readyz')).text, 'app');
    const r = await json('/-/readyz');
    assert.equal(r.status, 503);
    assert.deepEqual(
      r.body.checks.map((c) => [c.name, c.status, c.lastError]),
      [
        ['db', 'failing', 'reason withheld'],
        ['cache', 'failing', 'reason withheld'],
        ['disk', 'ok', null],
      ],
    );
    const text = await get('/-/readyz?verbose');
    assert.equal(
      text.text,
      '[+]phase ok\n[-]db failed: reason withheld\n[-]cache failed (non-critical): reason withheld\n[+]disk ok\nreadyz check failed\n',
    );
    // Every body a client can ask for, raw bytes: the secret is nowhere.
    for (const path of [
      '/-/readyz',
      '/-/readyz?verbose',
      '/-/healthz?verbose',
      '/-/readyz/db',
      '/-/readyz/db?verbose',
      '/-/readyz/cache',
    ]) {
      assert.doesNotMatch((await get(path)).text, /hunter2/, path);
    }
    // Programmatic status keeps the real reason, for logs.
    assert.match(health.status().checks[0]?.lastError ?? '', /hunter2/);

    const exposed = await serve({ phase: 'serving', exposeCheckErrors: true });
    exposed.health.register({ name: 'db', check: fail('refused by db') });
    await exposed.health.runNow();
    assert.match((await exposed.get('/readyz?verbose')).text, /^\[-\]db failed: refused by db$/m);
    assert.equal((await exposed.json('/readyz/db')).body.lastError, 'refused by db');
  });

  test('a non-Error rejection and a synchronous throw are both reported', async () => {
    const health = new Health({ eventLoop: false, phase: 'serving' });
    try {
      health.register({ name: 'weird', check: () => Promise.reject('just a string') });
      health.register({
        name: 'sync',
        check: () => {
          throw new TypeError('not async');
        },
      });
      const states = await health.runNow();
      assert.equal(states[0]?.lastErrorCode, 'CAP_ERR_RUNTIME_HEALTH_FAILED');
      assert.match(states[0]?.lastError ?? '', /just a string/);
      assert.equal(states[1]?.status, 'failing');
      assert.equal(states[1]?.lastError, 'not async');
    } finally {
      health.close();
    }
  });

  test('register rejects bad options with codes', async () => {
    const health = new Health({ eventLoop: false });
    try {
      const code = (c: string) => (err: unknown) => err instanceof HealthError && err.code === c;
      assert.throws(() => health.register({ name: '', check: ok }), code('CAP_ERR_RUNTIME_HEALTH_INVALID'));
      assert.throws(
        () => health.register({ name: 'a/b', check: ok }),
        code('CAP_ERR_RUNTIME_HEALTH_INVALID'),
      );
      assert.throws(
        () => health.register({ name: 'eventloop', check: ok }),
        code('CAP_ERR_RUNTIME_HEALTH_INVALID'),
      );
      assert.throws(
        () => health.register({ name: 'x', check: ok, timeoutMs: 0 }),
        code('CAP_ERR_RUNTIME_HEALTH_INVALID'),
      );
      assert.throws(
        () => health.register({ name: 'x', check: ok, intervalMs: Number.NaN }),
        code('CAP_ERR_RUNTIME_HEALTH_INVALID'),
      );
      assert.throws(
        () => health.register({ name: 'x', check: ok, intervalMs: 30 * 24 * 3600 * 1000 }),
        code('CAP_ERR_RUNTIME_HEALTH_INVALID'),
      );
      assert.throws(
        () => health.register({ name: 'x', check: ok, failureThreshold: -1 }),
        code('CAP_ERR_RUNTIME_HEALTH_INVALID'),
      );
      assert.throws(
        () => health.register({ name: 'x', check: ok, kind: 'startup' as never }),
        code('CAP_ERR_RUNTIME_HEALTH_INVALID'),
      );
      assert.throws(
        () => health.register({ name: 'x', check: 'nope' as never }),
        code('CAP_ERR_RUNTIME_HEALTH_INVALID'),
      );
      const remove = health.register({ name: 'x', check: ok });
      assert.throws(
        () => health.register({ name: 'x', check: ok }),
        code('CAP_ERR_RUNTIME_HEALTH_DUPLICATE'),
      );
      remove();
      assert.deepEqual(health.names(), []);
      assert.equal(health.unregister('x'), false);
      await assert.rejects(health.runNow('x'), code('CAP_ERR_RUNTIME_HEALTH_INVALID'));
      health.register({ name: 'x', check: ok });
      assert.deepEqual(health.names(), ['x']);
    } finally {
      health.close();
    }
    assert.throws(
      () => health.register({ name: 'late', check: ok }),
      (err: unknown) => err instanceof HealthError && err.code === 'CAP_ERR_RUNTIME_HEALTH_CLOSED',
    );
  });

  test('close aborts runs in flight, stops the schedule and reports stopping', async () => {
    const health = new Health({ eventLoop: false, phase: 'serving' });
    let aborted = false;
    let calls = 0;
    health.register({
      name: 'waits',
      timeoutMs: 120_000,
      intervalMs: 1,
      check: (signal) => {
        calls += 1;
        return new Promise((_, reject) =>
          signal.addEventListener('abort', () => {
            aborted = true;
            reject(signal.reason);
          }),
        );
      },
    });
    const run = health.runNow('waits');
    await health[Symbol.asyncDispose]();
    const [state] = await run;
    assert.equal(aborted, true);
    assert.equal(state?.lastErrorCode, 'CAP_ERR_RUNTIME_HEALTH_CLOSED');
    assert.equal(health.phase, 'stopping');
    assert.equal(health.status().httpStatus, 503);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(calls, 1, 'no run is scheduled after close');
  });

  test('/livez fails after the event loop was blocked past the threshold', async () => {
    const { health, json, get } = await serve({
      phase: 'serving',
      eventLoop: { thresholdMs: 1_000, sampleIntervalMs: 20, windowMs: 600_000 },
    });
    // Let the sampler take a few samples first.
    await new Promise((r) => setTimeout(r, 100));
    assert.equal((await get('/livez/eventloop')).status, 200);
    const until = Date.now() + 2_500;
    while (Date.now() < until) {
      // Busy-wait on purpose: this is the stuck loop /livez must notice.
    }
    const r = await json('/livez');
    assert.equal(r.status, 503);
    const loop = r.body.checks.find((c) => c.name === 'eventloop');
    assert.equal(loop?.status, 'failing');
    assert.equal(loop?.lastError, 'reason withheld');
    assert.match(health.check('eventloop')?.lastError ?? '', /event loop delay [\d.]+ ms exceeds 1000 ms/);
    assert.equal((await get('/livez?exclude=eventloop')).status, 200);
    assert.match((await get('/livez?verbose')).text, /^\[-\]eventloop failed: reason withheld/m);
    assert.equal((await get('/readyz/eventloop')).status, 404);
    // Readiness does not include the watchdog: a slow loop means restart, not "stop sending traffic".
    assert.equal((await get('/readyz')).status, 200);
    assert.equal(health.check('eventloop')?.status, 'failing');
  });

  test('works on an http2 server through the compat API', async () => {
    const health = new Health({ eventLoop: false, phase: 'serving' });
    health.register({ name: 'db', check: ok });
    await health.runNow();
    const server = createHttp2Server((req, res) => {
      if (!health.handle(req, res)) res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const client = http2Connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    try {
      const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = client.request({ ':path': '/readyz?verbose' });
        let body = '';
        let status = 0;
        req.on('response', (h) => {
          status = Number(h[':status']);
        });
        req.setEncoding('utf8');
        req.on('data', (c: string) => {
          body += c;
        });
        req.on('end', () => resolve({ status, body }));
        req.on('error', reject);
      });
      assert.equal(status, 200);
      assert.equal(body, '[+]phase ok\n[+]db ok\nreadyz check passed\n');
    } finally {
      client.close();
      health.close();
      await new Promise((r) => server.close(r));
    }
  });
});
