// HTTPS and TLS HTTP/2: the drainers track TLS sockets and the raw TCP sockets under them.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http2 from 'node:http2';
import https from 'node:https';
import { connect } from 'node:net';
import { before, test } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import { createTestCertificates } from 'capstan/testing';
import { Lifecycle } from './lifecycle.ts';

let key: Buffer;
let cert: Buffer;
let ca: string;

before(async () => {
  const certs = await createTestCertificates();
  key = Buffer.from(certs.keyPem);
  cert = Buffer.from(certs.certPem);
  ca = certs.caPem;
});

async function listen(server: https.Server | http2.Http2SecureServer): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as { port: number }).port;
}

test('HTTPS: in-flight request finishes with Connection: close; idle TLS and half-open TCP sockets are closed after the grace', async () => {
  let entered!: () => void;
  const enteredP = new Promise<void>((r) => {
    entered = r;
  });
  let open!: () => void;
  const gate = new Promise<void>((r) => {
    open = r;
  });
  const server = https.createServer({ key, cert }, async (req, res) => {
    if (req.url === '/slow') {
      entered();
      await gate;
    }
    res.end('secure ok');
  });
  const lifecycle = new Lifecycle({ drainDelayMs: 0, idleGraceMs: 300, drainTimeoutMs: 30_000 });
  lifecycle.addServer(server, { name: 'tls' });
  const port = await listen(server);
  const agent = new https.Agent({ keepAlive: true, ca });
  const events: string[] = [];
  // A TCP connection that never starts its TLS handshake.
  const halfOpen = connect({ port, host: '127.0.0.1' });
  halfOpen.on('error', () => {});
  halfOpen.on('close', () => events.push('half-open closed'));
  await once(halfOpen, 'connect');
  // An idle TLS keep-alive connection (one request done).
  const get = (path: string) =>
    new Promise<{ status: number; connection: string | undefined; body: string }>((resolve, reject) => {
      https
        .get({ host: '127.0.0.1', port, path, agent }, (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (c) => {
            body += c;
          });
          res.on('end', () => resolve({ status: res.statusCode!, connection: res.headers.connection, body }));
        })
        .on('error', reject);
    });
  const idle = tlsConnect({ port, host: '127.0.0.1', ca });
  idle.on('error', () => {});
  idle.on('close', () => events.push('idle tls closed'));
  await once(idle, 'secureConnect');
  try {
    const slow = get('/slow');
    await enteredP;
    let draining!: () => void;
    const drainingP = new Promise<void>((r) => {
      draining = r;
    });
    lifecycle.onPhase(({ phase }) => {
      events.push(phase);
      if (phase === 'draining') draining();
    });
    const reportPromise = lifecycle.shutdown('test');
    await drainingP;
    await new Promise((r) => setImmediate(r));
    open();
    const res = await slow;
    assert.deepEqual(res, { status: 200, connection: 'close', body: 'secure ok' });
    const report = await reportPromise;
    assert.equal(report.exitCode, 0, JSON.stringify(report.errors));
    assert.equal(report.servers[0]!.kind, 'https');
    assert.equal(report.servers[0]!.inFlightAtClose, 1);
    assert.equal(report.servers[0]!.forced, false);
    assert.equal(report.servers[0]!.idleClosed, 1, 'the idle TLS socket');
    assert.deepEqual(events.filter((e) => e !== 'closing' && e !== 'stopped').slice(0, 2), [
      'stopping',
      'draining',
    ]);
    assert.ok(events.includes('half-open closed') && events.includes('idle tls closed'), events.join(', '));
    assert.ok(events.indexOf('half-open closed') > events.indexOf('draining'));
  } finally {
    agent.destroy();
    halfOpen.destroy();
    idle.destroy();
    server.close();
  }
});

test('HTTP/2 over TLS: a stream past the drain deadline is cut and counted', async () => {
  let entered!: () => void;
  const enteredP = new Promise<void>((r) => {
    entered = r;
  });
  const server = http2.createSecureServer({ key, cert });
  server.on('stream', () => entered()); // never responds
  const lifecycle = new Lifecycle({ drainDelayMs: 0, drainTimeoutMs: 300 });
  lifecycle.addServer(server);
  const port = await listen(server);
  const client = http2.connect(`https://127.0.0.1:${port}`, { ca });
  client.on('error', () => {});
  try {
    const req = client.request({ ':path': '/forever' });
    const failed = new Promise<string>((resolve) => {
      req.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
      req.on('close', () => resolve(`closed rstCode=${req.rstCode}`));
    });
    req.end();
    await enteredP;
    const report = await lifecycle.shutdown('test');
    assert.ok((await failed).length > 0);
    assert.equal(report.exitCode, 1);
    assert.equal(report.servers[0]!.name, 'http2-1');
    assert.equal(report.servers[0]!.cut, 1);
    assert.equal(report.servers[0]!.forced, true);
    assert.equal(report.errors[0]!.code, 'CAP_ERR_RUNTIME_LIFECYCLE_DRAIN_TIMEOUT');
  } finally {
    client.destroy();
    server.close();
  }
});

test('HTTP/2 with allowHTTP1: an idle HTTP/1.1 keep-alive client does not hold the drain', async () => {
  const server = http2.createSecureServer({ key, cert, allowHTTP1: true }, (_req, res) => {
    res.end('either');
  });
  const lifecycle = new Lifecycle({ drainDelayMs: 0, idleGraceMs: 200, drainTimeoutMs: 5000 });
  lifecycle.addServer(server, { name: 'mixed' });
  const port = await listen(server);
  const agent = new https.Agent({ keepAlive: true, ca });
  const h2 = http2.connect(`https://127.0.0.1:${port}`, { ca });
  h2.on('error', () => {});
  try {
    const body = await new Promise<string>((resolve, reject) => {
      https
        .get({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c) => {
            text += c;
          });
          res.on('end', () => resolve(text));
        })
        .on('error', reject);
    });
    assert.equal(body, 'either');
    const h2req = h2.request({ ':path': '/' });
    h2req.setEncoding('utf8');
    let h2body = '';
    h2req.on('data', (c: string) => {
      h2body += c;
    });
    await once(h2req, 'end');
    assert.equal(h2body, 'either');
    const report = await lifecycle.shutdown('test');
    assert.equal(report.exitCode, 0, JSON.stringify(report.errors.map((e) => e.message)));
    assert.equal(report.servers[0]!.forced, false);
    assert.equal(report.servers[0]!.idleClosed, 1, 'the HTTP/1.1 socket, closed after the grace');
  } finally {
    agent.destroy();
    h2.destroy();
    server.close();
  }
});
