import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { createLogger, type Logger } from '../log/logger.ts';
import { createService, type ServiceOptions } from './service.ts';

function memoryLogger() {
  const lines: Array<Record<string, unknown>> = [];
  const destination = new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split('\n')) if (l) lines.push(JSON.parse(l));
      cb();
    },
  });
  return { logger: createLogger({ name: 'svc', format: 'json', destination }), lines };
}

async function rawRequest(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1' }, () => socket.end(text));
    let out = '';
    socket.setEncoding('utf8').on('data', (c: string) => {
      out += c;
    });
    socket.on('end', () => resolve(out));
    socket.on('error', reject);
  });
}

/** A service on a free loopback port with no drain delay, as most tests here want; `options` adds or overrides. */
function loopbackService(logger: Logger, options: Partial<ServiceOptions> = {}) {
  return createService({
    name: 'svc',
    port: 0,
    host: '127.0.0.1',
    logger,
    lifecycle: { drainDelayMs: 0 },
    ...options,
  });
}

test('built-in endpoints, routes, request ids and HTTP metrics', async () => {
  const { logger } = memoryLogger();
  await using service = loopbackService(logger, {
    routes: { '/hello': (_req, res, ctx) => res.end(`hello ${ctx.requestId}`) },
  });
  const url = await service.start();
  assert.equal((await fetch(`${url}/livez`)).status, 200);
  assert.equal((await fetch(`${url}/readyz`)).status, 200);
  const hello = await fetch(`${url}/hello`, { headers: { 'x-request-id': 'abc-123' } });
  assert.equal(await hello.text(), 'hello abc-123');
  assert.equal(hello.headers.get('x-request-id'), 'abc-123');
  // An id that could inject into logs is replaced by a generated one.
  const odd = await fetch(`${url}/hello`, { headers: { 'x-request-id': 'a b\tc' } });
  assert.match(odd.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/);
  const metrics = await (await fetch(`${url}/metrics`)).text();
  assert.match(metrics, /^http_server_requests_total\{method="GET",code="2xx"\} [3-9]/m);
  assert.match(metrics, /^process_cpu_user_seconds_total /m);
});

test('a throwing handler answers 500 with the request id and logs the error', async () => {
  const { logger, lines } = memoryLogger();
  await using service = loopbackService(logger, {
    routes: {
      '/sync': () => {
        throw new Error('boom');
      },
      '/async': async () => {
        throw new Error('async boom');
      },
    },
  });
  const url = await service.start();
  for (const path of ['/sync', '/async']) {
    const r = await fetch(`${url}${path}`);
    assert.equal(r.status, 500);
    const body = (await r.json()) as { error: string; requestId: string };
    assert.equal(body.error, 'internal error');
    assert.equal(body.requestId, r.headers.get('x-request-id'));
  }
  const failures = lines.filter((l) => l.msg === 'request failed');
  assert.equal(failures.length, 2);
  assert.equal((failures[1]!.err as { message: string }).message, 'async boom');
});

test('malformed requests get a 4xx with a reason, not a reset', async () => {
  const { logger } = memoryLogger();
  await using service = loopbackService(logger);
  const url = await service.start();
  const port = Number(new URL(url).port);
  const garbage = await rawRequest(port, 'NOT HTTP AT ALL\r\n\r\n');
  assert.match(garbage, /^HTTP\/1\.1 400 Bad Request/);
  assert.match(garbage, /"reason":"HPE_/);
  const badLength = await rawRequest(port, 'POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: abc\r\n\r\n');
  assert.match(badLength, /^HTTP\/1\.1 400/);
  assert.match(badLength, /Content-Length/i);
  const huge = await rawRequest(port, `GET / HTTP/1.1\r\nHost: a\r\nX-Big: ${'x'.repeat(20_000)}\r\n\r\n`);
  assert.match(huge, /^HTTP\/1\.1 431/);
  const missing = await fetch(`${url}/nope`);
  assert.equal(missing.status, 404);
});

test('readiness turns 503 while stopping, before listeners close', async () => {
  const { logger } = memoryLogger();
  const service = createService({
    name: 'svc',
    port: 0,
    host: '127.0.0.1',
    logger,
    lifecycle: { drainDelayMs: 400 },
  });
  const url = await service.start();
  assert.equal((await fetch(`${url}/readyz`)).status, 200);
  const stopping = service.stop('test');
  // During the propagation delay the listener still answers, but readiness says 503.
  const during = await fetch(`${url}/readyz`, { headers: { connection: 'close' } });
  assert.equal(during.status, 503);
  const report = await stopping;
  assert.equal(report.exitCode, 0);
  await assert.rejects(fetch(`${url}/livez`));
});

test('a service without a name is refused', () => {
  assert.throws(() => createService({ name: '' }), { code: 'CAP_ERR_RUNTIME_SERVICE_INVALID' });
});

test('createService reads no environment: a bad PORT, HOST or LOG_LEVEL there breaks nothing', async () => {
  const saved = { PORT: process.env['PORT'], HOST: process.env['HOST'], LOG_LEVEL: process.env['LOG_LEVEL'] };
  Object.assign(process.env, { PORT: 'abc', HOST: 'no such host', LOG_LEVEL: 'verbose' });
  try {
    const { logger } = memoryLogger();
    await using service = loopbackService(logger);
    const url = await service.start();
    assert.equal((await fetch(`${url}/livez`)).status, 200);
    // Not listening at all (no port given) does not read PORT either; nor does the default logger.
    await using idle = createService({ name: 'idle', lifecycle: { drainDelayMs: 0 } });
    assert.equal(idle.url, '');
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
});

test('a failing check: /readyz?verbose withholds the reason, the log carries it once per change, redacted', async () => {
  const { logger, lines } = memoryLogger();
  let failing = true;
  await using service = loopbackService(logger);
  service.health.register({
    name: 'db',
    check: async () => {
      if (failing) throw new Error('cannot reach postgres://app:hunter2@db:5432/app');
    },
  });
  const url = await service.start();
  await service.health.runNow('db');
  await service.health.runNow('db');
  const verbose = await (await fetch(`${url}/readyz?verbose`)).text();
  assert.match(verbose, /^\[-\]db failed: reason withheld$/m);
  for (const path of ['/readyz', '/readyz?verbose', '/readyz/db', '/healthz?verbose']) {
    assert.doesNotMatch(await (await fetch(`${url}${path}`)).text(), /hunter2|postgres:/, path);
  }
  const failures = lines.filter((l) => l['msg'] === 'health check failing');
  assert.equal(failures.length, 1, 'logged once per change of state, not per run');
  assert.equal(failures[0]!['check'], 'db');
  assert.equal(failures[0]!['level'], 'warn');
  assert.match(String(failures[0]!['reason']), /cannot reach postgres:\/\/app:\[REDACTED\]@db/);
  assert.doesNotMatch(JSON.stringify(lines), /hunter2/);
  failing = false;
  await service.health.runNow('db');
  assert.equal(lines.filter((l) => l['msg'] === 'health check recovered').length, 1);

  await using exposed = loopbackService(logger, {
    name: 'svc2',
    exposeCheckErrors: true,
  });
  exposed.health.register({ name: 'db', check: async () => Promise.reject(new Error('refused')) });
  const url2 = await exposed.start();
  await exposed.health.runNow('db');
  assert.match(await (await fetch(`${url2}/readyz?verbose`)).text(), /^\[-\]db failed: refused$/m);
});

test('tls: serves HTTPS with the holder certificate, a rotation reaches new connections, client certificates reach handlers', async () => {
  const { createCertAuthority } = await import('../tls/certificate-authority.ts');
  const { CertificateHolder } = await import('../tls/certificate-holder.ts');
  const { request } = await import('node:https');
  const ca = await createCertAuthority('svc-test-ca');
  const clientCa = await createCertAuthority('svc-test-client-ca');
  const [first, second, client] = await Promise.all([
    ca.issue({ commonName: 'first', ipAddresses: ['127.0.0.1'], usage: 'server' }),
    ca.issue({ commonName: 'second', ipAddresses: ['127.0.0.1'], usage: 'server' }),
    clientCa.issue({ commonName: 'caller', usage: 'client' }),
  ]);
  const holder = new CertificateHolder({ ...first, caPem: clientCa.certPem });
  const { logger } = memoryLogger();
  await using service = loopbackService(logger, {
    tls: { certificate: holder, requestCert: true },
    routes: {
      '/who': (req, res) => {
        const socket = req.socket as import('node:tls').TLSSocket;
        const cn = socket.authorized
          ? socket.getPeerCertificate().subject.CN
          : `none (${socket.authorizationError})`;
        res.end(String(cn));
      },
    },
  });
  const url = await service.start();
  assert.match(url, /^https:\/\/127\.0\.0\.1:\d+$/);
  const get = (path: string, withCert: boolean) =>
    new Promise<{ body: string; servedBy: string }>((resolve, reject) => {
      const req = request(
        `${url}${path}`,
        { ca: ca.certPem, agent: false, ...(withCert ? { cert: client.certPem, key: client.keyPem } : {}) },
        (res) => {
          const servedBy = String(
            (res.socket as import('node:tls').TLSSocket).getPeerCertificate().subject.CN,
          );
          let body = '';
          res.setEncoding('utf8').on('data', (c: string) => {
            body += c;
          });
          res.on('end', () => resolve({ body, servedBy }));
        },
      );
      req.on('error', reject);
      req.end();
    });
  assert.deepEqual(await get('/who', true), { body: 'caller', servedBy: 'first' });
  const anonymous = await get('/who', false);
  assert.match(anonymous.body, /^none \(/);
  // Built-in endpoints are served over TLS too.
  assert.equal((await get('/readyz', false)).body.length > 0, true);
  holder.update({ ...second, caPem: clientCa.certPem });
  assert.deepEqual(await get('/who', true), { body: 'caller', servedBy: 'second' });
});

test('the request signal aborts when the client goes away, also when first read after it went; its log carries the request id', async () => {
  const { logger, lines } = memoryLogger();
  const seen: Array<{ when: string; aborted: boolean; code?: string }> = [];
  let gone!: () => void;
  const clientGone = new Promise<void>((resolve) => {
    gone = resolve;
  });
  const service = loopbackService(logger, {
    routes: {
      '/early': (_req, res, ctx) => {
        // Read before the client leaves: aborted when it does.
        ctx.signal.addEventListener('abort', () => {
          seen.push({ when: 'early', aborted: true, code: (ctx.signal.reason as { code?: string }).code });
        });
        res.once('close', () => setTimeout(gone, 10));
      },
      '/late': (_req, res, ctx) => {
        // First read only after the client left: already aborted.
        res.once('close', () => {
          seen.push({
            when: 'late',
            aborted: ctx.signal.aborted,
            code: (ctx.signal.reason as { code?: string }).code,
          });
          ctx.log.info('late request saw its client go');
          gone();
        });
      },
    },
  });
  await service.start();
  const port = Number(new URL(service.url).port);
  try {
    for (const path of ['/early', '/late']) {
      const socket = connect({ port, host: '127.0.0.1' }, () =>
        socket.write(`GET ${path} HTTP/1.1\r\nhost: x\r\nx-request-id: req-${path.slice(1)}\r\n\r\n`),
      );
      socket.on('error', () => {});
      await new Promise((resolve) => setTimeout(resolve, 100));
      socket.destroy();
      await clientGone;
      gone = () => {};
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.deepEqual(seen, [
      { when: 'early', aborted: true, code: 'CAP_ERR_RUNTIME_SERVICE_CLIENT_GONE' },
      { when: 'late', aborted: true, code: 'CAP_ERR_RUNTIME_SERVICE_CLIENT_GONE' },
    ]);
    assert.ok(
      lines.some((l) => l['msg'] === 'late request saw its client go' && l['requestId'] === 'req-late'),
    );
  } finally {
    await service.stop();
  }
});

test('tls.http2: HTTP/2 and HTTP/1.1 clients on one port, the same routes and built-in endpoints', async () => {
  const { createCertAuthority } = await import('../tls/certificate-authority.ts');
  const { CertificateHolder } = await import('../tls/certificate-holder.ts');
  const { connect: h2connect } = await import('node:http2');
  const { request } = await import('node:https');
  const ca = await createCertAuthority('svc-test-ca');
  const pair = await ca.issue({ commonName: 'svc', ipAddresses: ['127.0.0.1'], usage: 'server' });
  const { logger } = memoryLogger();
  await using service = loopbackService(logger, {
    tls: { certificate: new CertificateHolder(pair), http2: true },
    routes: { '/v': (req, res) => res.end(`HTTP/${req.httpVersion}`) },
  });
  const url = await service.start();
  const session = h2connect(url, { ca: ca.certPem });
  const h2get = (path: string) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const stream = session.request({ ':path': path });
      let status = 0;
      let body = '';
      stream.on('response', (h) => {
        status = Number(h[':status']);
      });
      stream.setEncoding('utf8').on('data', (c: string) => {
        body += c;
      });
      stream.on('end', () => resolve({ status, body }));
      stream.on('error', reject);
      stream.end();
    });
  assert.deepEqual(await h2get('/v'), { status: 200, body: 'HTTP/2.0' });
  assert.equal((await h2get('/readyz')).status, 200);
  session.close();
  const h1 = await new Promise<string>((resolve, reject) => {
    const req = request(`${url}/v`, { ca: ca.certPem, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => {
        body += c;
      });
      res.on('end', () => resolve(body));
    });
    req.on('error', reject);
    req.end();
  });
  assert.equal(h1, 'HTTP/1.1');
});

test('builtinRoutes: false leaves /metrics and the probes to the handler', async () => {
  const { logger } = memoryLogger();
  await using service = loopbackService(logger, {
    builtinRoutes: false,
    handler: (req, res) => res.end(`handler ${req.url}`),
  });
  const url = await service.start();
  for (const path of ['/metrics', '/readyz', '/livez']) {
    const res = await fetch(`${url}${path}`);
    assert.equal(await res.text(), `handler ${path}`);
  }
});
