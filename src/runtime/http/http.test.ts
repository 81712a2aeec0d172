import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createCertAuthority } from '../tls/certificate-authority.ts';
import { HttpError, HttpErrorCode } from './errors.ts';
import type { HttpLogEntry } from './interceptors.ts';
import { createHttpTransport, type HttpTransport, httpJson, httpRequest } from './transport.ts';

type Handler = (req: IncomingMessage, res: ServerResponse, count: number) => void;

/** A real server on port 0 counting the requests it got. */
async function serve(handler: Handler): Promise<{ server: Server; origin: string; count: () => number }> {
  let n = 0;
  const server = createServer((req, res) => {
    n++;
    handler(req, res, n);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { server, origin: `http://127.0.0.1:${port}`, count: () => n };
}

const closers: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const close of closers.reverse()) await close().catch(() => {});
});
function track<T extends Server | HttpTransport>(x: T): T {
  closers.push(() =>
    'destroy' in x
      ? x.destroy()
      : new Promise((resolve) => {
          x.closeAllConnections();
          x.close(resolve);
        }),
  );
  return x;
}

const isCode = (code: HttpErrorCode) => (err: unknown) => err instanceof HttpError && err.code === code;
const fast = { initialMs: 5, maxMs: 20 };

describe('HttpTransport retry', () => {
  test('an idempotent request is retried on 503 and on a cut connection; POST is not, unless marked', async () => {
    const { server, origin, count } = await serve((req, res, n) => {
      if (req.url === '/cut' && n % 2 === 1) {
        req.socket.destroy();
        return;
      }
      if (req.url?.startsWith('/flaky') && n % 3 !== 0) {
        res.writeHead(503).end('busy');
        return;
      }
      res.end(`ok ${req.method}`);
    });
    track(server);
    const t = track(createHttpTransport({ origin, retry: { retries: 3, ...fast } }));

    let res = await httpRequest(t, { path: '/flaky' });
    assert.equal(res.status, 200);
    assert.equal(await res.body.text(), 'ok GET');
    assert.equal(count(), 3);

    res = await httpRequest(t, { method: 'PUT', path: '/flaky', body: 'x' });
    assert.equal(res.status, 200);
    assert.equal(count(), 6);

    // POST: sent once, the 503 comes back as the answer.
    res = await httpRequest(t, { method: 'POST', path: '/flaky', body: 'x' });
    assert.equal(res.status, 503);
    assert.equal(await res.body.text(), 'busy');
    assert.equal(count(), 7);

    // Marked idempotent: retried (requests 8 fails, 9 passes).
    res = await httpRequest(t, { method: 'POST', path: '/flaky', body: 'x', idempotent: true });
    assert.equal(res.status, 200);
    assert.equal(count(), 9);

    // A GET marked not idempotent is sent once.
    res = await httpRequest(t, { path: '/flaky', idempotent: false });
    assert.equal(res.status, 503);
    await res.body.dump();
    assert.equal(count(), 10);

    // Connection cut before any answer: GET retried, POST fails with CONNECT.
    const before = count();
    res = await httpRequest(t, { path: '/cut' });
    assert.equal(await res.body.text(), 'ok GET');
    assert.equal(count() - before, 2);
    await assert.rejects(httpRequest(t, { method: 'POST', path: '/cut' }), isCode(HttpErrorCode.connect));
    assert.equal(count() - before, 3);
  });

  test('gives up after the cap with CAP_ERR_RUNTIME_HTTP_STATUS; 500 and 404 are never retried', async () => {
    const { server, origin, count } = await serve((req, res) => {
      res.writeHead(Number(req.url?.slice(1))).end('nope');
    });
    track(server);
    const t = track(createHttpTransport({ origin, retry: { retries: 2, ...fast } }));
    await assert.rejects(httpRequest(t, { path: '/502' }), (err: unknown) => {
      assert.ok(isCode(HttpErrorCode.status)(err));
      assert.equal((err as HttpError).status, 502);
      return true;
    });
    assert.equal(count(), 3);
    for (const status of [500, 404]) {
      const res = await httpRequest(t, { path: `/${status}` });
      assert.equal(res.status, status);
      await res.body.dump();
    }
    assert.equal(count(), 5);
    // The JSON helper turns an unexpected status into STATUS with the server's words.
    await assert.rejects(httpJson(t, { path: '/404' }), (err: unknown) => {
      assert.ok(isCode(HttpErrorCode.status)(err));
      assert.equal((err as HttpError).status, 404);
      assert.equal((err as HttpError).responseText, 'nope');
      return true;
    });
  });

  test('an abort stops the retries at once, with the signal reason', async () => {
    const { server, origin, count } = await serve((_req, res) => res.writeHead(503).end());
    track(server);
    // A 10 s backoff: only the abort can end the wait early.
    const t = track(createHttpTransport({ origin, retry: { retries: 5, initialMs: 10_000, maxMs: 10_000 } }));
    const ac = new AbortController();
    const started = performance.now();
    const pending = httpRequest(t, { path: '/', signal: ac.signal });
    while (count() < 1) await sleep(5);
    await sleep(50);
    const reason = new Error('stop now');
    ac.abort(reason);
    await assert.rejects(pending, (err: unknown) => err === reason);
    assert.ok(performance.now() - started < 2_000, 'rejected during the backoff, not after it');
    await sleep(100);
    assert.equal(count(), 1, 'no attempt after the abort');
  });
});

describe('HttpTransport timeouts', () => {
  test('headers timeout and deadline fail with CAP_ERR_RUNTIME_HTTP_TIMEOUT; a stream has neither', async () => {
    const { server, origin, count } = await serve((req, res) => {
      if (req.url === '/slow-stream') {
        res.write('early ');
        setTimeout(() => res.end('late'), 2_500);
        return;
      }
      if (req.url === '/busy') {
        res.writeHead(503).end();
        return;
      }
      // /hang: never answers.
    });
    track(server);
    const t = track(
      createHttpTransport({
        origin,
        timeouts: { headersMs: 150 },
        retry: { retries: 100, initialMs: 50, maxMs: 50 },
      }),
    );
    let started = performance.now();
    await assert.rejects(httpRequest(t, { path: '/hang', method: 'POST' }), isCode(HttpErrorCode.timeout));
    assert.ok(performance.now() - started < 2_500);

    // The deadline bounds all attempts of a retried request.
    started = performance.now();
    const n = count();
    await assert.rejects(
      httpRequest(t, { path: '/busy', timeouts: { deadlineMs: 300 } }),
      (err: unknown) => isCode(HttpErrorCode.timeout)(err) && /300 ms/.test((err as Error).message),
    );
    const took = performance.now() - started;
    assert.ok(took >= 290 && took < 2_000, `deadline took ${took} ms`);
    assert.ok(count() - n >= 2, 'retried until the deadline');

    // Body timeout while streaming: the body stalls for 2.5 s (undici checks these timers about once a second).
    const res = await httpRequest(t, { path: '/slow-stream', timeouts: { bodyMs: 100 } });
    await assert.rejects(
      res.body.text(),
      (err: unknown) => (err as { code?: string }).code === 'UND_ERR_BODY_TIMEOUT',
    );
    // As a stream: no limit applies.
    const streamed = await httpRequest(t, {
      path: '/slow-stream',
      stream: true,
      timeouts: { deadlineMs: 50 },
    });
    assert.equal(await streamed.body.text(), 'early late');
  });
});

describe('HttpTransport logging', () => {
  test('one line per attempt: method, URL without query, status, timings; no Authorization value', async () => {
    const { server, origin } = await serve((req, res, n) => {
      res.writeHead(n === 1 ? 503 : 200).end(req.headers.authorization ?? '');
    });
    track(server);
    const lines: string[] = [];
    const entries: HttpLogEntry[] = [];
    const t = track(
      createHttpTransport({
        origin,
        retry: fast,
        log: (e) => {
          entries.push(e);
          lines.push(JSON.stringify(e));
        },
      }),
    );
    const res = await httpRequest(t, {
      path: '/things',
      query: { token: 'query-s3cret' },
      headers: { authorization: 'Bearer header-s3cret', 'x-registry-auth': 'registry-s3cret' },
    });
    assert.equal(await res.body.text(), 'Bearer header-s3cret', 'the header was sent');
    assert.equal(entries.length, 2);
    assert.deepEqual(
      entries.map((e) => [e.method, e.url, e.status]),
      [
        ['GET', `${origin}/things?…`, 503],
        ['GET', `${origin}/things?…`, 200],
      ],
    );
    for (const e of entries) assert.ok(e.durationMs >= 0 && (e.headersMs ?? 0) <= e.durationMs);
    assert.doesNotMatch(lines.join('\n'), /s3cret|Bearer/i);
    // A failed attempt names the error code.
    await assert.rejects(httpRequest(t, { path: '/x', method: 'POST', origin, timeouts: { deadlineMs: 1 } }));
    const closed = track(
      createHttpTransport({ origin: 'http://127.0.0.1:1', retry: false, log: (e) => entries.push(e) }),
    );
    await assert.rejects(httpRequest(closed, { path: '/' }), isCode(HttpErrorCode.connect));
    assert.equal(entries.at(-1)?.error, 'ECONNREFUSED');
    assert.equal(entries.at(-1)?.status, 0);
  });
});

describe('HttpTransport endpoints', () => {
  test('unix socket', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'capstan-http-'));
    closers.push(() => rm(dir, { recursive: true, force: true }));
    const socketPath = join(dir, 's.sock');
    const server = track(createServer((_req, res) => res.end(JSON.stringify({ over: 'unix' }))));
    await new Promise<void>((resolve) => server.listen(socketPath, resolve));
    const t = track(createHttpTransport({ origin: 'http://localhost', socketPath }));
    assert.deepEqual(await httpJson(t, { path: '/' }), { over: 'unix' });
  });

  test('TLS: verified against the CA; an unknown CA fails with CAP_ERR_RUNTIME_HTTP_TLS and is not retried', async () => {
    const ca = await createCertAuthority('capstan http test CA', 1);
    const serving = await ca.issue({
      commonName: '127.0.0.1',
      ipAddresses: ['127.0.0.1'],
      usage: 'server',
      days: 1,
    });
    const certs = { caPem: ca.certPem, certPem: serving.certPem, keyPem: serving.keyPem };
    let handshakes = 0;
    const server = track(
      createHttpsServer({ cert: certs.certPem, key: certs.keyPem }, (_req, res) => res.end('secure')),
    );
    server.on('tlsClientError', () => handshakes++);
    server.on('secureConnection', () => handshakes++);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const origin = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;

    const trusted = track(createHttpTransport({ origin, tls: { ca: certs.caPem } }));
    const res = await httpRequest(trusted, { path: '/' });
    assert.equal(await res.body.text(), 'secure');

    handshakes = 0;
    const untrusted = track(createHttpTransport({ origin, retry: { retries: 3, ...fast } }));
    await assert.rejects(httpRequest(untrusted, { path: '/' }), isCode(HttpErrorCode.tls));
    await sleep(50);
    assert.equal(handshakes, 1);
  });

  test('an Agent transport takes the origin per request; bad options are refused', async () => {
    const { server, origin } = await serve((req, res) => res.end(req.url));
    track(server);
    const t = track(createHttpTransport());
    const res = await httpRequest(t, { origin, path: '/a', query: { b: 1, c: true, d: undefined } });
    assert.equal(await res.body.text(), '/a?b=1&c=1');
    await assert.rejects(httpRequest(t, { path: '/' }), isCode(HttpErrorCode.invalid));
    assert.throws(() => createHttpTransport({ origin: 'ftp://x' }), isCode(HttpErrorCode.invalid));
    assert.throws(() => createHttpTransport({ retry: { retries: -1 } }), isCode(HttpErrorCode.invalid));
    assert.throws(() => createHttpTransport({ timeouts: { deadlineMs: -5 } }), isCode(HttpErrorCode.invalid));
  });
});
