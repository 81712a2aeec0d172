// Health checks, outlier ejection, retries and the retry budget, against real backends on loopback.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Pool } from 'undici';
import { createLogger } from '../../runtime/index.ts';
import {
  createLoadBalancer,
  type LoadBalancer,
  type LoadBalancerEvent,
  type LoadBalancerOptions,
} from './load-balancer.ts';
import { HEALTH_PATH, startBackends, type TestBackend } from './testdata/backends.ts';

const logger = createLogger({ name: 'lb-test', level: 'silent' });
let backends: TestBackend[];

const answer =
  (name: string) => (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => {
    req.resume();
    req.once('end', () => res.end(name));
  };

before(async () => {
  backends = await startBackends(3);
});
after(async () => {
  for (const b of backends) await b.kill().catch(() => {});
});

async function withLb(
  options: Partial<LoadBalancerOptions>,
  fn: (lb: LoadBalancer, client: Pool, events: LoadBalancerEvent[]) => Promise<void>,
): Promise<void> {
  for (const b of backends) b.behaviour = answer(b.name);
  const lb = createLoadBalancer({
    port: 0,
    host: '127.0.0.1',
    logger,
    lifecycle: { drainDelayMs: 0, idleGraceMs: 50 },
    backends: backends.map((b) => b.url),
    healthCheck: { path: HEALTH_PATH, intervalMs: 200 },
    ...options,
  });
  const events: LoadBalancerEvent[] = [];
  lb.onEvent((e) => events.push(e));
  const url = await lb.start();
  const client = new Pool(url, { connections: 16 });
  try {
    await fn(lb, client, events);
  } finally {
    await client.close();
    await lb.stop();
  }
}

async function waitFor(what: string, condition: () => boolean, limitMs = 10_000): Promise<void> {
  const end = Date.now() + limitMs;
  while (!condition()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('one of three backends killed under load: no failed request, out of rotation within two health intervals', async () => {
  const victim = backends[1]!;
  const witness = backends[0]!;
  await withLb({}, async (lb, client, events) => {
    let ok = 0;
    const failures: string[] = [];
    let running = true;
    const worker = async () => {
      while (running) {
        try {
          const res = await client.request({ method: 'GET', path: '/work' });
          const body = await res.body.text();
          if (res.statusCode === 200) ok++;
          else failures.push(`${res.statusCode} ${body}`);
        } catch (err) {
          failures.push(String(err));
        }
      }
    };
    const workers = Array.from({ length: 8 }, worker);
    await waitFor('traffic', () => ok > 200);
    // The witness's health checks are the clock: each check it receives is one health interval.
    const checksAtKill = witness.hits.get(HEALTH_PATH) ?? 0;
    await victim.kill();
    await waitFor('the victim out of rotation', () =>
      events.some(
        (e) =>
          (e.type === 'ejected' || (e.type === 'health' && e.to === 'unhealthy')) && e.backend === victim.url,
      ),
    );
    const intervals = (witness.hits.get(HEALTH_PATH) ?? 0) - checksAtKill;
    const okAtEjection = ok;
    await waitFor('traffic after the ejection', () => ok > okAtEjection + 300);
    await waitFor('the active check too', () =>
      events.some((e) => e.type === 'health' && e.to === 'unhealthy' && e.backend === victim.url),
    );
    running = false;
    await Promise.all(workers);
    assert.deepEqual(failures, [], 'no client saw a failure');
    assert.ok(intervals <= 2, `out of rotation after ${intervals} health intervals`);
    assert.ok(!lb.backends.available.some((b) => b.id === victim.url));
    const retries = events.filter((e) => e.type === 'retry').length;
    assert.ok(retries >= 1, 'requests caught by the kill were retried');
    // Revived: back in rotation after `rise` good checks (its first check at start was healthy too: look after the kill).
    const down = events.findIndex(
      (e) => e.type === 'health' && e.to === 'unhealthy' && e.backend === victim.url,
    );
    await victim.revive();
    await waitFor('the victim healthy again', () =>
      events.slice(down).some((e) => e.type === 'health' && e.to === 'healthy' && e.backend === victim.url),
    );
    assert.ok(lb.backends.available.some((b) => b.id === victim.url));
  });
  victim.behaviour = answer(victim.name);
});

test('a slow backend: the headers timeout fires and the request is retried on another', async () => {
  const slow = backends[0]!;
  await withLb(
    { policy: 'round-robin', timeouts: { headersMs: 300 }, healthCheck: { enabled: false } },
    async (_lb, client, events) => {
      const held: Array<() => void> = [];
      slow.behaviour = (req, res) => {
        req.resume();
        held.push(() => res.end('late'));
      };
      const bodies: string[] = [];
      const sentToSlow = slow.served();
      for (let i = 0; i < 6; i++) {
        const res = await client.request({ method: 'GET', path: '/' });
        assert.equal(res.statusCode, 200);
        bodies.push(await res.body.text());
      }
      assert.ok(!bodies.includes('late') && !bodies.includes('b0'), bodies.join(','));
      const timeouts = events.filter((e) => e.type === 'retry' && e.reason === 'UND_ERR_HEADERS_TIMEOUT');
      assert.ok(timeouts.length >= 1);
      assert.equal(
        timeouts.length,
        slow.served() - sentToSlow,
        'each request b0 held timed out and was retried',
      );
      // A POST is not retried: it gets a 504.
      const only = await new Pool(_lb.url);
      await _lb.update({
        backends: [slow.url],
        healthCheck: { enabled: false },
        timeouts: { headersMs: 300 },
      });
      const post = await only.request({ method: 'POST', path: '/', body: 'x' });
      assert.equal(post.statusCode, 504);
      await post.body.dump();
      await only.close();
      for (const release of held) release();
    },
  );
  slow.behaviour = answer(slow.name);
});

test('consecutive 5xx eject a backend; the ejection ends and grows with each ejection', async () => {
  const bad = backends[2]!;
  await withLb(
    {
      healthCheck: { enabled: false },
      outlier: { consecutive5xx: 3, baseEjectionMs: 300, maxEjectionPercent: 50 },
    },
    async (lb, client, events) => {
      bad.behaviour = (req, res) => {
        req.resume();
        res.writeHead(500).end('broken');
      };
      let fives = 0;
      for (let i = 0; i < 30; i++) {
        const res = await client.request({ method: 'GET', path: '/' });
        if (res.statusCode === 500) fives++;
        await res.body.dump();
      }
      assert.equal(fives, 3, 'three 500s reached clients, then the backend was ejected');
      const ejected = events.filter((e) => e.type === 'ejected');
      assert.equal(ejected.length, 1);
      assert.equal(ejected[0]!.type === 'ejected' && ejected[0]!.durationMs, 300);
      await waitFor('restored', () => events.some((e) => e.type === 'restored'));
      for (let i = 0; i < 30; i++) {
        const res = await client.request({ method: 'GET', path: '/' });
        await res.body.dump();
      }
      const second = events.filter((e) => e.type === 'ejected');
      assert.equal(second.length, 2);
      assert.equal(
        second[1]!.type === 'ejected' && second[1]!.durationMs,
        600,
        'twice the base the second time',
      );
      assert.equal(lb.backends.get(bad.url)!.ejections, 2);
    },
  );
  bad.behaviour = answer(bad.name);
});

test('max ejection percent: with every backend failing, at most the cap is ejected', async () => {
  await withLb(
    { healthCheck: { enabled: false }, outlier: { consecutive5xx: 1, maxEjectionPercent: 10 } },
    async (lb, client, events) => {
      for (const b of backends) {
        b.behaviour = (req, res) => {
          req.resume();
          res.writeHead(500).end();
        };
      }
      for (let i = 0; i < 20; i++) {
        const res = await client.request({ method: 'GET', path: '/' });
        await res.body.dump();
      }
      // 10% of three rounds down to zero, and one is always allowed.
      assert.equal(events.filter((e) => e.type === 'ejected').length, 1);
      assert.equal(lb.backends.available.length, 2);
    },
  );
});

test('the retry budget caps retries at 20% of requests plus the floor', async () => {
  await withLb(
    {
      healthCheck: { enabled: false },
      outlier: { enabled: false },
      retry: { statusCodes: [503], budgetPercent: 20, budgetMinRetries: 5 },
    },
    async (_lb, client, events) => {
      for (const b of backends) {
        b.behaviour = (req, res) => {
          req.resume();
          res.writeHead(503).end('overloaded');
        };
      }
      const n = 100;
      const servedBefore = backends.reduce((sum, b) => sum + b.served(), 0);
      let statuses503 = 0;
      for (let i = 0; i < n; i++) {
        const res = await client.request({ method: 'GET', path: '/' });
        if (res.statusCode === 503) statuses503++;
        await res.body.dump();
      }
      assert.equal(statuses503, n, 'when no retry is left the backend’s own answer goes back');
      const retries = events.filter((e) => e.type === 'retry').length;
      const exhausted = events.filter((e) => e.type === 'budget-exhausted').length;
      assert.ok(retries <= 5 + n * 0.2, `${retries} retries`);
      assert.ok(retries >= 20, `${retries} retries`);
      assert.ok(exhausted > 0);
      const served = backends.reduce((sum, b) => sum + b.served(), 0) - servedBefore;
      assert.ok(served <= n * 1.2 + 5, `backends saw ${served} attempts for ${n} requests`);
    },
  );
});

test('no backend reachable at all: 502 after the retries, and 503 with an empty set', async () => {
  await withLb(
    {
      backends: ['http://127.0.0.1:1', 'http://127.0.0.1:2'],
      healthCheck: { enabled: false },
      outlier: { enabled: false },
    },
    async (lb, client, events) => {
      const res = await client.request({ method: 'GET', path: '/' });
      assert.equal(res.statusCode, 502);
      assert.match(await res.body.text(), /ECONNREFUSED/);
      assert.equal(events.filter((e) => e.type === 'retry').length, 1, 'tried the other one once');
      await lb.update({ backends: [] });
      const none = await client.request({ method: 'GET', path: '/' });
      assert.equal(none.statusCode, 503);
      await none.body.dump();
    },
  );
});

test('a connect failure is retried for any request, a POST with a body too; a reset after sending is not', async () => {
  const live = backends[0]!;
  await withLb(
    {
      backends: ['http://127.0.0.1:1', live.url],
      policy: 'round-robin',
      healthCheck: { enabled: false },
      outlier: { enabled: false },
    },
    async (_lb, client, events) => {
      live.behaviour = (req, res) => {
        let body = '';
        req.setEncoding('utf8').on('data', (c: string) => {
          body += c;
        });
        req.on('end', () => res.end(`${req.method} ${body}`));
      };
      for (let i = 0; i < 4; i++) {
        const res = await client.request({ method: 'POST', path: '/orders', body: `order ${i}` });
        assert.equal(res.statusCode, 200);
        assert.equal(
          await res.body.text(),
          `POST order ${i}`,
          'the body arrived whole on the second backend',
        );
      }
      assert.ok(events.some((e) => e.type === 'retry' && e.reason === 'ECONNREFUSED'));
      // Once the backend has the request, a broken connection is not a reason to send a POST again.
      live.behaviour = (req) => {
        req.resume();
        req.once('end', () => req.socket.destroy());
      };
      const before = live.served();
      let status = 0;
      for (let i = 0; i < 2 && status !== 502; i++) {
        const res = await client.request({ method: 'POST', path: '/orders', body: 'once' });
        status = res.statusCode;
        await res.body.dump();
      }
      assert.equal(status, 502);
      assert.equal(live.served() - before, 1, 'the POST reached a backend once');
    },
  );
});
