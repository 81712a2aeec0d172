import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { type AddressInfo, createServer as createTcpServer, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { freePort, type PostgresPeer, type RedisPeer, startPostgres, startRedis } from 'capstan/testing';
import pg from 'pg';
import { HealthError } from '../errors.ts';
import { Health } from '../health.ts';
import type { CheckFunction } from '../types.ts';
import { dnsCheck } from './dns.ts';
import { httpCheck } from './http.ts';
import { postgresCheck } from './postgres.ts';
import { redisCheck } from './redis.ts';
import { tcpCheck } from './tcp.ts';

const hasCode = (code: string) => (err: unknown) => err instanceof HealthError && err.code === code;

/** Run a check once with a generous bound, as the registry would. */
function run(check: CheckFunction, timeoutMs = 20_000) {
  return check(AbortSignal.timeout(timeoutMs));
}

/** A URL whose password must never show up in an error. */
function withPassword(url: string, password: string): string {
  const u = new URL(url);
  u.password = password;
  return u.href;
}

describe('postgresCheck against a real PostgreSQL', () => {
  let server: PostgresPeer;
  before(async () => {
    server = await startPostgres({ password: 'pg-s3cret-pw' });
  });
  after(async () => {
    await server?.stop();
  });

  test('URL and pool pass; wrong password, stopped server and bad targets fail without leaking secrets', async () => {
    assert.equal(await run(postgresCheck(server.url)), undefined);
    const pool = new pg.Pool({ connectionString: server.url, max: 1 });
    pool.on('error', () => {});
    try {
      await run(postgresCheck(pool));
      await run(postgresCheck(pool, { query: 'SELECT count(*) FROM pg_stat_activity' }));
      await assert.rejects(
        run(postgresCheck(pool, { query: 'SELECT * FROM no_such_table' })),
        (err: unknown) =>
          hasCode('CAP_ERR_RUNTIME_HEALTH_POSTGRES')(err) && /no_such_table/.test(String(err)),
      );

      const wrong = withPassword(server.url, 'wrong-Pa55word');
      await assert.rejects(run(postgresCheck(wrong)), (err: unknown) => {
        assert.ok(hasCode('CAP_ERR_RUNTIME_HEALTH_POSTGRES')(err));
        assert.match((err as Error).message, /password authentication failed/);
        assert.doesNotMatch((err as Error).message, /wrong-Pa55word|pg-s3cret-pw/);
        return true;
      });

      // Through the registry: ok, then the server goes away and the critical check fails the probe.
      const health = new Health({ eventLoop: false, phase: 'serving' });
      try {
        health.register({ name: 'pg', check: postgresCheck(server.url), timeoutMs: 10_000 });
        health.register({ name: 'pg-pool', check: postgresCheck(pool), timeoutMs: 10_000, critical: false });
        const states = await health.runNow();
        assert.deepEqual(
          states.map((s) => s.status),
          ['ok', 'ok'],
        );
        assert.equal(health.status().httpStatus, 200);

        await server.stop();
        const [down, downPool] = await health.runNow();
        assert.equal(down?.status, 'failing');
        assert.equal(down?.lastErrorCode, 'CAP_ERR_RUNTIME_HEALTH_POSTGRES');
        assert.match(down?.lastError ?? '', /ECONNREFUSED|terminat|connect/i);
        assert.doesNotMatch(down?.lastError ?? '', /pg-s3cret-pw/);
        assert.equal(downPool?.status, 'failing');
        assert.equal(health.status().httpStatus, 503);
      } finally {
        health.close();
      }
    } finally {
      await pool.end().catch(() => {});
    }
  });

  test('abort closes the connection attempt', { timeout: 30_000 }, async () => {
    // A raw TCP listener that accepts and never answers: the startup packet waits forever without abort.
    // (Not an HTTP server: that one answers 400 to the binary startup packet and hangs up.)
    const silent = createTcpServer();
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const sockets = new Set<Socket>();
    silent.on('connection', (s) => {
      sockets.add(s);
      // Read (and drop) the startup packet, or the client's hang-up is never seen behind it.
      s.resume();
      s.on('close', () => sockets.delete(s));
    });
    try {
      const port = (silent.address() as AddressInfo).port;
      const check = postgresCheck(`postgres://u:hidden-pw@127.0.0.1:${port}/db`);
      const ac = new AbortController();
      const pending = check(ac.signal);
      while (sockets.size === 0) await new Promise((r) => setTimeout(r, 10));
      ac.abort(new Error('gave up'));
      await assert.rejects(pending, /gave up/);
      while (sockets.size > 0) await new Promise((r) => setTimeout(r, 10));
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((r) => silent.close(r));
    }
  });

  test('bad targets are rejected up front', () => {
    assert.throws(() => postgresCheck('mysql://x/y'), hasCode('CAP_ERR_RUNTIME_HEALTH_INVALID'));
    assert.throws(() => postgresCheck('not a url'), hasCode('CAP_ERR_RUNTIME_HEALTH_INVALID'));
    assert.throws(() => postgresCheck({} as never), hasCode('CAP_ERR_RUNTIME_HEALTH_INVALID'));
  });
});

describe('redisCheck against a real Redis', () => {
  let secured: RedisPeer;
  let open: RedisPeer;
  before(async () => {
    [secured, open] = await Promise.all([startRedis({ password: 'r3dis-pw' }), startRedis()]);
  });
  after(async () => {
    await Promise.all([secured?.stop(), open?.stop()]);
  });

  test('PING with and without AUTH, SELECT, and the failure paths', async () => {
    assert.deepEqual(await run(redisCheck(secured.url)), { detail: `PONG from 127.0.0.1:${secured.port}` });
    await run(redisCheck(`${secured.url}/3`));
    await run(redisCheck({ host: '127.0.0.1', port: secured.port, password: 'r3dis-pw', db: 1 }));
    await run(
      redisCheck({ host: '127.0.0.1', port: secured.port, username: 'default', password: 'r3dis-pw' }),
    );
    await run(redisCheck(open.url));

    const noAuth = `redis://127.0.0.1:${secured.port}`;
    await assert.rejects(run(redisCheck(noAuth)), (err: unknown) => {
      assert.ok(hasCode('CAP_ERR_RUNTIME_HEALTH_REDIS')(err));
      assert.match((err as Error).message, /NOAUTH/);
      return true;
    });
    await assert.rejects(run(redisCheck(withPassword(secured.url, 'Wr0ng-pw'))), (err: unknown) => {
      assert.ok(hasCode('CAP_ERR_RUNTIME_HEALTH_REDIS')(err));
      assert.match((err as Error).message, /AUTH answered "-WRONGPASS/);
      assert.doesNotMatch((err as Error).message, /Wr0ng-pw|r3dis-pw/);
      return true;
    });
    await assert.rejects(run(redisCheck(`${secured.url}/99999`)), /SELECT answered "-ERR/);

    const health = new Health({ eventLoop: false, phase: 'serving' });
    try {
      health.register({ name: 'redis', check: redisCheck(open.url), critical: false });
      assert.equal((await health.runNow())[0]?.status, 'ok');
      await open.stop();
      const [state] = await health.runNow();
      assert.equal(state?.status, 'failing');
      assert.equal(state?.lastErrorCode, 'CAP_ERR_RUNTIME_HEALTH_REDIS');
      assert.match(state?.lastError ?? '', /ECONNREFUSED/);
      const report = health.status();
      assert.equal(report.status, 'degraded');
      assert.equal(report.httpStatus, 200);
    } finally {
      health.close();
    }
  });

  test('TLS: verified against the server CA, rejected without it, never plain text', async () => {
    await using tls = await startRedis({ tls: true, password: 'tls-pw' });
    assert.deepEqual(await run(redisCheck(tls.url, { tls: { ca: tls.ca! } })), {
      detail: `PONG from 127.0.0.1:${tls.port}`,
    });
    await run(redisCheck({ host: '127.0.0.1', port: tls.port, password: 'tls-pw', tls: { ca: tls.ca! } }));
    await run(redisCheck(tls.url, { tls: { rejectUnauthorized: false } }));
    // Self-signed and not trusted: the handshake fails, and says why.
    await assert.rejects(run(redisCheck(tls.url)), (err: unknown) => {
      assert.ok(hasCode('CAP_ERR_RUNTIME_HEALTH_REDIS')(err));
      assert.match((err as Error).message, /SELF_SIGNED|UNABLE_TO_VERIFY|CERT/);
      assert.doesNotMatch((err as Error).message, /tls-pw/);
      return true;
    });
    const plain = `redis://:tls-pw@127.0.0.1:${tls.port}`;
    await assert.rejects(run(redisCheck(plain)), hasCode('CAP_ERR_RUNTIME_HEALTH_REDIS'));
  });

  test('bad targets are rejected up front', () => {
    assert.throws(() => redisCheck('http://x'), hasCode('CAP_ERR_RUNTIME_HEALTH_INVALID'));
    assert.throws(() => redisCheck('redis://h/abc'), hasCode('CAP_ERR_RUNTIME_HEALTH_INVALID'));
    assert.throws(() => redisCheck({ host: '' }), hasCode('CAP_ERR_RUNTIME_HEALTH_INVALID'));
    assert.throws(() => redisCheck({ host: 'h', port: 0 }), hasCode('CAP_ERR_RUNTIME_HEALTH_INVALID'));
  });
});

describe('httpCheck, tcpCheck, dnsCheck', () => {
  test('httpCheck: expected status passes, others fail; credentials and query never shown', {
    timeout: 30_000,
  }, async () => {
    let hits = 0;
    const server = createServer((req, res) => {
      hits += 1;
      if (req.url?.startsWith('/hang')) return; // never answers
      const status = Number(req.url?.slice(1).split('?')[0]) || 200;
      res.writeHead(status).end('x'.repeat(1000));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      assert.deepEqual(await run(httpCheck(`${base}/204`)), { detail: 'status 204' });
      assert.deepEqual(await run(httpCheck(`${base}/302`)), { detail: 'status 302' });
      await run(httpCheck(`${base}/418`, { expectStatus: [418, 418] }));
      await run(httpCheck(`${base}/404`, { expectStatus: (s) => s === 404, method: 'HEAD' }));
      const secretUrl = `http://user:http-pw@127.0.0.1:${(server.address() as AddressInfo).port}/503?token=abc123`;
      await assert.rejects(run(httpCheck(secretUrl)), (err: unknown) => {
        assert.ok(hasCode('CAP_ERR_RUNTIME_HEALTH_HTTP')(err));
        assert.match((err as Error).message, /unexpected status 503/);
        assert.doesNotMatch((err as Error).message, /http-pw|abc123/);
        return true;
      });
      const ac = new AbortController();
      const hanging = httpCheck(`${base}/hang`)(ac.signal);
      while (hits < 6) await new Promise((r) => setTimeout(r, 10));
      ac.abort(new Error('timeout from registry'));
      await assert.rejects(hanging, /timeout from registry/);
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
    const closed = await freePort();
    await assert.rejects(
      run(httpCheck(`http://127.0.0.1:${closed}/`)),
      (err: unknown) =>
        hasCode('CAP_ERR_RUNTIME_HEALTH_HTTP')(err) && /ECONNREFUSED/.test((err as Error).message),
    );
    assert.throws(() => httpCheck('ftp://x/'), hasCode('CAP_ERR_RUNTIME_HEALTH_INVALID'));
    assert.throws(() => httpCheck('::'), hasCode('CAP_ERR_RUNTIME_HEALTH_INVALID'));
    assert.throws(
      () => httpCheck('http://x/', { expectStatus: [500, 200] }),
      hasCode('CAP_ERR_RUNTIME_HEALTH_INVALID'),
    );
  });

  test('tcpCheck: open port passes, closed port fails', async () => {
    const server = createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    try {
      const result = await run(tcpCheck('127.0.0.1', port));
      assert.deepEqual(result, { detail: `connected to 127.0.0.1:${port}` });
    } finally {
      await new Promise((r) => server.close(r));
    }
    await assert.rejects(
      run(tcpCheck('127.0.0.1', port)),
      (err: unknown) =>
        hasCode('CAP_ERR_RUNTIME_HEALTH_TCP')(err) && /ECONNREFUSED/.test((err as Error).message),
    );
    const aborted = AbortSignal.abort(new Error('already'));
    await assert.rejects(tcpCheck('127.0.0.1', port)(aborted), /already/);
    assert.throws(() => tcpCheck('', 80), hasCode('CAP_ERR_RUNTIME_HEALTH_INVALID'));
    assert.throws(() => tcpCheck('h', 70_000), hasCode('CAP_ERR_RUNTIME_HEALTH_INVALID'));
  });

  test('dnsCheck: localhost resolves, nonexistent.invalid does not', async () => {
    const result = await run(dnsCheck('localhost'));
    assert.match(result?.detail ?? '', /127\.0\.0\.1|::1/);
    const v4 = await run(dnsCheck('localhost', { family: 4 }));
    assert.match(v4?.detail ?? '', /^127\./);
    await assert.rejects(run(dnsCheck('nonexistent.invalid')), (err: unknown) => {
      assert.ok(hasCode('CAP_ERR_RUNTIME_HEALTH_DNS')(err));
      assert.match((err as Error).message, /^dns nonexistent\.invalid: E[A-Z_]+/);
      return true;
    });
    assert.throws(() => dnsCheck(''), hasCode('CAP_ERR_RUNTIME_HEALTH_INVALID'));
  });
});
