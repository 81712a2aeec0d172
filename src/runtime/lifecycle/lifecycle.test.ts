import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import http2 from 'node:http2';
import { connect, type Socket } from 'node:net';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { canConnect } from '../net/ports.ts';
import { LifecycleError } from './errors.ts';
import { Lifecycle, type LifecyclePhase } from './lifecycle.ts';

async function listen(server: http.Server | http2.Http2Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  assert.ok(address && typeof address === 'object');
  return address.port;
}

/** GET / with the given agent; resolves with status, headers and body, rejects on socket errors. */
function get(
  port: number,
  agent: http.Agent | false,
  path = '/',
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => {
        body += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/** Macrotask boundary: lets the lifecycle finish the synchronous part of a phase. */
const tick = () => new Promise((resolve) => setImmediate(resolve));

test('in-flight request completes after shutdown, new connections are refused, the response says Connection: close', async () => {
  const entered = deferred();
  const gate = deferred();
  const server = http.createServer(async (_req, res) => {
    entered.resolve();
    await gate.promise;
    res.end('done');
  });
  const lifecycle = new Lifecycle({ drainDelayMs: 0, idleGraceMs: 200, drainTimeoutMs: 30_000 });
  lifecycle.addServer(server, { name: 'api' });
  const port = await listen(server);
  const agent = new http.Agent({ keepAlive: true });
  try {
    const response = get(port, agent);
    await entered.promise;
    const draining = deferred();
    lifecycle.onPhase(({ phase }) => {
      if (phase === 'draining') draining.resolve();
    });
    assert.equal(lifecycle.signal.aborted, false);
    const reportPromise = lifecycle.shutdown('test');
    assert.equal(lifecycle.signal.aborted, true);
    await draining.promise;
    await tick();
    assert.equal(await canConnect(port), false, 'listener must be closed while the request is in flight');
    gate.resolve();
    const { status, headers, body } = await response;
    assert.equal(status, 200);
    assert.equal(body, 'done');
    assert.equal(headers.connection, 'close');
    const report = await reportPromise;
    assert.equal(report.exitCode, 0);
    assert.deepEqual(report.errors, []);
    assert.deepEqual(report.servers, [
      {
        name: 'api',
        kind: 'http',
        inFlightAtClose: 1,
        acceptedWhileDraining: 0,
        idleClosed: 0,
        cut: 0,
        forced: false,
      },
    ]);
    assert.equal(lifecycle.phase, 'stopped');
    assert.equal(await lifecycle.shutdown('again'), report, 'shutdown is idempotent');
  } finally {
    agent.destroy();
    server.close();
  }
});

/** A raw keep-alive HTTP/1.1 client socket that records what happens to it. */
function rawClient(port: number, label: string, events: string[]) {
  const socket: Socket = connect({ port, host: '127.0.0.1' });
  let buffer = '';
  let waiter: ((text: string) => void) | undefined;
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    buffer += chunk;
    // Responses here are small and end with the fixed body "ok".
    if (buffer.endsWith('\r\n\r\nok') && waiter) {
      const text = buffer;
      buffer = '';
      const w = waiter;
      waiter = undefined;
      events.push(`${label} response`);
      w(text);
    }
  });
  socket.on('error', (err) => events.push(`${label} error ${(err as NodeJS.ErrnoException).code}`));
  socket.on('close', () => events.push(`${label} closed`));
  return {
    socket,
    request(): Promise<string> {
      const p = new Promise<string>((resolve) => {
        waiter = resolve;
      });
      socket.write('GET / HTTP/1.1\r\nHost: test\r\n\r\n');
      return p;
    },
  };
}

test('idle keep-alive sockets get a grace period: a request sent during it is served, the rest are closed after it', async () => {
  const server = http.createServer((_req, res) => res.end('ok'));
  const lifecycle = new Lifecycle({ drainDelayMs: 0, idleGraceMs: 1500, drainTimeoutMs: 30_000 });
  lifecycle.addServer(server, { name: 'api' });
  const port = await listen(server);
  const events: string[] = [];
  const a = rawClient(port, 'A', events);
  const b = rawClient(port, 'B', events);
  try {
    assert.match(await a.request(), /^HTTP\/1\.1 200[\s\S]*Connection: keep-alive/i);
    assert.match(await b.request(), /^HTTP\/1\.1 200[\s\S]*Connection: keep-alive/i);
    let second: Promise<string> | undefined;
    lifecycle.onPhase(({ phase }) => {
      events.push(phase);
      // A's next request races the listener closing, as a busy upstream proxy would.
      if (phase === 'draining') second = a.request();
    });
    const report = await lifecycle.shutdown('test');
    assert.ok(second);
    const text = await second;
    assert.match(text, /^HTTP\/1\.1 200/);
    assert.match(text, /Connection: close/i);
    await tick();
    assert.equal(a.socket.destroyed, true);
    assert.equal(b.socket.destroyed, true);
    assert.deepEqual(events, [
      'A response',
      'B response',
      'stopping',
      'draining',
      'A response',
      'A closed',
      'B closed',
      'closing',
      'stopped',
    ]);
    assert.ok(!events.some((e) => e.includes('error')), `no socket errors: ${events.join(', ')}`);
    assert.equal(report.exitCode, 0);
    assert.equal(report.servers[0]!.idleClosed, 1, 'only B was closed for being idle');
    assert.equal(report.servers[0]!.acceptedWhileDraining, 1);
  } finally {
    a.socket.destroy();
    b.socket.destroy();
    server.close();
  }
});

test('a request still running at the drain deadline is cut and reported', async () => {
  const entered = deferred();
  const server = http.createServer((_req, _res) => {
    entered.resolve(); // never answers
  });
  const lifecycle = new Lifecycle({ drainDelayMs: 0, idleGraceMs: 50, drainTimeoutMs: 300 });
  lifecycle.addServer(server, { name: 'slow' });
  const port = await listen(server);
  try {
    const response = get(port, false);
    await entered.promise;
    const report = await lifecycle.shutdown('test');
    await assert.rejects(response, (err: NodeJS.ErrnoException) => err.code === 'ECONNRESET');
    assert.equal(report.exitCode, 1);
    assert.equal(report.errors.length, 1);
    assert.equal(report.errors[0]!.code, 'CAP_ERR_RUNTIME_LIFECYCLE_DRAIN_TIMEOUT');
    assert.match(report.errors[0]!.message, /1 request\(s\) cut/);
    assert.equal(report.servers[0]!.cut, 1);
    assert.equal(report.servers[0]!.forced, true);
  } finally {
    server.close();
  }
});

test('jobs see their signal aborted after the drain; hooks run in reverse order; failures are reported', async () => {
  const events: string[] = [];
  const lifecycle = new Lifecycle({ drainDelayMs: 0, jobTimeoutMs: 300, hookTimeoutMs: 300 });
  let politeSignal: AbortSignal | undefined;
  lifecycle.onPhase(({ phase }) => {
    events.push(phase);
    if (phase === 'draining') events.push(`job signal aborted while draining: ${politeSignal?.aborted}`);
  });
  lifecycle
    .addJob('polite', async (signal) => {
      politeSignal = signal;
      await once(signal, 'abort');
      events.push('polite saw abort');
    })
    .addJob('throws on abort', async (signal) => {
      await once(signal, 'abort');
      signal.throwIfAborted();
    })
    .addJob('sleeps with the signal', async (signal) => {
      await sleep(3_600_000, undefined, { signal });
    })
    .addJob('stubborn', () => new Promise(() => {}))
    .addJob('crash', async () => {
      throw new Error('boom');
    })
    .onShutdown('flush logs', () => {
      events.push('hook flush logs');
    })
    .onShutdown('close pool', async () => {
      await new Promise((resolve) => setImmediate(resolve));
      events.push('hook close pool');
    })
    .onShutdown('bad', () => {
      events.push('hook bad');
      throw new Error('hook broke');
    })
    .onShutdown('hangs', async (signal) => {
      events.push('hook hangs');
      await once(signal, 'abort');
    });
  const report = await lifecycle.shutdown('test');
  assert.deepEqual(events, [
    'stopping',
    'draining',
    'job signal aborted while draining: false',
    'closing',
    'polite saw abort',
    'hook hangs',
    'hook bad',
    'hook close pool',
    'hook flush logs',
    'stopped',
  ]);
  assert.deepEqual(
    report.jobs.map((j) => [j.name, j.outcome, j.error?.code]),
    [
      ['polite', 'done', undefined],
      ['throws on abort', 'done', undefined],
      ['sleeps with the signal', 'done', undefined],
      ['stubborn', 'timeout', 'CAP_ERR_RUNTIME_LIFECYCLE_JOB_TIMEOUT'],
      ['crash', 'failed', 'CAP_ERR_RUNTIME_LIFECYCLE_JOB_FAILED'],
    ],
  );
  assert.equal((report.jobs[4]!.error!.cause as Error).message, 'boom');
  assert.deepEqual(
    report.hooks.map((h) => [h.name, h.outcome, h.error?.code]),
    [
      ['hangs', 'timeout', 'CAP_ERR_RUNTIME_LIFECYCLE_HOOK_FAILED'],
      ['bad', 'failed', 'CAP_ERR_RUNTIME_LIFECYCLE_HOOK_FAILED'],
      ['close pool', 'done', undefined],
      ['flush logs', 'done', undefined],
    ],
  );
  assert.equal(report.exitCode, 1);
  assert.equal(report.errors.length, 4);
});

test('bad input is rejected with CAP_ERR_RUNTIME_LIFECYCLE_* codes', async () => {
  const code = (c: string) => (err: unknown) => err instanceof LifecycleError && err.code === c;
  assert.throws(() => new Lifecycle({ drainTimeoutMs: -1 }), code('CAP_ERR_RUNTIME_LIFECYCLE_INVALID'));
  assert.throws(() => new Lifecycle({ drainDelayMs: Number.NaN }), code('CAP_ERR_RUNTIME_LIFECYCLE_INVALID'));
  const lifecycle = new Lifecycle({ drainDelayMs: 0 });
  const twice = http.createServer();
  lifecycle.addServer(twice);
  assert.throws(() => lifecycle.addServer(twice), code('CAP_ERR_RUNTIME_LIFECYCLE_INVALID'));
  // @ts-expect-error: not a server
  assert.throws(() => lifecycle.addServer({ close() {} }), code('CAP_ERR_RUNTIME_LIFECYCLE_INVALID'));
  assert.throws(() => lifecycle.addJob('', async () => {}), code('CAP_ERR_RUNTIME_LIFECYCLE_INVALID'));
  // @ts-expect-error: not a function
  assert.throws(() => lifecycle.onShutdown('x', 'nope'), code('CAP_ERR_RUNTIME_LIFECYCLE_INVALID'));
  const phases: LifecyclePhase[] = [];
  const unsubscribe = lifecycle.onPhase(({ phase }) => {
    phases.push(phase);
  });
  lifecycle.onPhase(() => {
    throw new Error('a broken listener must not stop shutdown');
  });
  const first = lifecycle.shutdown('one');
  unsubscribe();
  const report = await first;
  assert.equal(report.exitCode, 0);
  assert.deepEqual(phases, ['stopping']);
  assert.throws(() => lifecycle.addJob('late', async () => {}), code('CAP_ERR_RUNTIME_LIFECYCLE_CLOSED'));
  assert.throws(() => lifecycle.addServer(http.createServer()), code('CAP_ERR_RUNTIME_LIFECYCLE_CLOSED'));
  assert.throws(() => lifecycle.onShutdown('late', () => {}), code('CAP_ERR_RUNTIME_LIFECYCLE_CLOSED'));
  assert.equal(await lifecycle.shutdown('two'), report);
});

test('HTTP/2: sessions get GOAWAY, the in-flight stream completes, new streams are refused', async () => {
  const entered = deferred();
  const gate = deferred();
  const server = http2.createServer();
  server.on('stream', async (stream) => {
    entered.resolve();
    await gate.promise;
    stream.respond({ ':status': 200 });
    stream.end('h2 done');
  });
  const lifecycle = new Lifecycle({ drainDelayMs: 0, drainTimeoutMs: 30_000 });
  lifecycle.addServer(server, { name: 'h2' });
  const port = await listen(server);
  const client = http2.connect(`http://127.0.0.1:${port}`);
  client.on('error', () => {});
  try {
    const goaway = once(client, 'goaway');
    const req = client.request({ ':path': '/' });
    req.setEncoding('utf8');
    let body = '';
    req.on('data', (c: string) => {
      body += c;
    });
    const ended = once(req, 'end');
    const status = once(req, 'response').then(([headers]) => headers[':status']);
    await entered.promise;
    const reportPromise = lifecycle.shutdown('test');
    const [code] = await goaway;
    assert.equal(code, http2.constants.NGHTTP2_NO_ERROR);
    const late = client.request({ ':path': '/late' });
    const [lateError] = (await once(late, 'error')) as [NodeJS.ErrnoException];
    assert.match(lateError.code ?? '', /^ERR_HTTP2_(STREAM_CANCEL|GOAWAY_SESSION)$/);
    assert.equal(await canConnect(port), false);
    gate.resolve();
    await ended;
    assert.equal(await status, 200);
    assert.equal(body, 'h2 done');
    const report = await reportPromise;
    assert.equal(report.exitCode, 0);
    assert.equal(report.servers[0]!.kind, 'http2');
    assert.equal(report.servers[0]!.inFlightAtClose, 1);
    assert.equal(report.servers[0]!.cut, 0);
  } finally {
    client.destroy();
    server.close();
  }
});

test('during the drain delay the service still accepts and serves normally (keep-alive, no Connection: close)', async () => {
  const server = http.createServer((_req, res) => res.end('ok'));
  const lifecycle = new Lifecycle({ drainDelayMs: 1000, idleGraceMs: 100 });
  lifecycle.addServer(server);
  const port = await listen(server);
  const agent = new http.Agent({ keepAlive: true });
  try {
    let during: ReturnType<typeof get> | undefined;
    lifecycle.onPhase(({ phase }) => {
      if (phase === 'stopping') during = get(port, agent);
    });
    const report = await lifecycle.shutdown('test');
    assert.ok(during);
    const res = await during;
    assert.equal(res.status, 200);
    assert.equal(res.headers.connection, 'keep-alive');
    assert.equal(report.exitCode, 0);
    assert.equal(report.servers[0]!.idleClosed, 1, 'its keep-alive socket was closed after the grace');
  } finally {
    agent.destroy();
    server.close();
  }
});

test('handleSignals({ exit: false }) shuts down on the signal, reports it as the reason and removes its handlers', async () => {
  const lifecycle = new Lifecycle({ drainDelayMs: 0 });
  const before = process.listenerCount('SIGWINCH');
  const remove = lifecycle.handleSignals({ signals: ['SIGWINCH'], exit: false });
  assert.equal(process.listenerCount('SIGWINCH'), before + 1);
  const stopped = new Promise<string>((resolve) => {
    lifecycle.onPhase(({ phase, report }) => {
      if (phase === 'stopped') resolve(report!.reason);
    });
  });
  process.kill(process.pid, 'SIGWINCH');
  assert.equal(await stopped, 'SIGWINCH');
  assert.equal((await lifecycle.shutdown()).reason, 'SIGWINCH');
  assert.equal(process.listenerCount('SIGWINCH'), before, 'handlers removed once stopped');
  remove(); // idempotent
  assert.equal(process.listenerCount('SIGWINCH'), before);
});

test('aborting the signal given to shutdown() turns every remaining wait into its deadline', async () => {
  let entered!: () => void;
  const enteredP = new Promise<void>((r) => {
    entered = r;
  });
  const server = http.createServer(() => entered()); // never answers
  const minute = 60_000;
  const lifecycle = new Lifecycle({
    drainDelayMs: minute,
    drainTimeoutMs: minute,
    jobTimeoutMs: minute,
    hookTimeoutMs: minute,
  });
  lifecycle.addServer(server).addJob('stubborn', () => new Promise(() => {}));
  const ran: string[] = [];
  lifecycle.onShutdown('sync hook', () => {
    ran.push('sync hook');
  });
  lifecycle.onShutdown('hanging hook', () => new Promise(() => {}));
  const port = await listen(server);
  try {
    const response = get(port, false);
    await enteredP;
    const hurry = new AbortController();
    lifecycle.onPhase(({ phase }) => {
      if (phase === 'stopping') hurry.abort();
    });
    const report = await lifecycle.shutdown('test', { signal: hurry.signal });
    await assert.rejects(response);
    assert.equal(report.exitCode, 1);
    assert.deepEqual(
      report.errors.map((e) => e.code),
      [
        'CAP_ERR_RUNTIME_LIFECYCLE_DRAIN_TIMEOUT',
        'CAP_ERR_RUNTIME_LIFECYCLE_JOB_TIMEOUT',
        'CAP_ERR_RUNTIME_LIFECYCLE_HOOK_FAILED',
      ],
    );
    assert.equal(report.servers[0]!.cut, 1);
    assert.deepEqual(ran, ['sync hook'], 'hooks are still called, only not awaited');
  } finally {
    server.close();
  }
});

test('the log option receives phase changes and a warning for a server registered after it listens', async () => {
  const lines: string[] = [];
  const lifecycle = new Lifecycle({
    drainDelayMs: 0,
    log: (level, msg) => {
      lines.push(`${level}: ${msg}`);
    },
  });
  const server = http.createServer((_req, res) => res.end('ok'));
  await listen(server);
  lifecycle.addServer(server, { name: 'late' });
  await lifecycle.close();
  assert.deepEqual(lines, [
    'warn: server "late" was registered after it started listening',
    'info: lifecycle stopping',
    'info: lifecycle draining',
    'info: lifecycle closing',
    'info: lifecycle stopped',
  ]);
  assert.equal(server.listening, false);
});
