import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, test } from 'node:test';
import { fetch, request } from 'undici';
import { TrafficError, TrafficErrorCode } from '../errors.ts';
import { startBackends, type TestBackend } from '../lb/testdata/backends.ts';
import { createDiscoveryDispatcher, type DiscoveryDispatcher } from './client-balancer.ts';
import type { DiscoveryEvent } from './source.ts';
import { staticFileSource } from './static-file.ts';

const dir = mkdtempSync(join(tmpdir(), 'capstan-client-lb-'));
let backends: TestBackend[];
before(async () => {
  backends = await startBackends(3);
});
after(async () => {
  for (const b of backends) await b.kill().catch(() => {});
  rmSync(dir, { recursive: true, force: true });
});

function writeEndpoints(path: string, list: Array<{ b: TestBackend; weight?: number }>) {
  writeFileSync(
    path,
    JSON.stringify(list.map(({ b, weight }) => ({ address: '127.0.0.1', port: b.port, weight }))),
  );
}

async function get(d: DiscoveryDispatcher, path = '/'): Promise<string> {
  const res = await request(`http://web.service${path}`, { dispatcher: d });
  assert.equal(res.statusCode, 200);
  return res.body.text();
}

async function count(d: DiscoveryDispatcher, n: number): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const name = await get(d);
    counts[name] = (counts[name] ?? 0) + 1;
  }
  return counts;
}

/** Wait until the dispatcher has taken in a snapshot satisfying `ok` (reading its own events). */
function snapshots(): {
  events: DiscoveryEvent[];
  onDiscoveryEvent: (e: DiscoveryEvent) => void;
  until: (n: number) => Promise<void>;
} {
  const events: DiscoveryEvent[] = [];
  let wake: (() => void) | undefined;
  return {
    events,
    onDiscoveryEvent: (e) => {
      events.push(e);
      wake?.();
    },
    async until(n) {
      while (events.filter((e) => e.type === 'snapshot').length < n)
        await new Promise<void>((r) => (wake = r));
    },
  };
}

test('round robin straight to the endpoints of a file; an update moves traffic; weights come from the source', async () => {
  const path = join(dir, 'rr.json');
  writeEndpoints(
    path,
    backends.map((b) => ({ b })),
  );
  const seen = snapshots();
  await using d = createDiscoveryDispatcher({
    source: staticFileSource({ path, pollMs: 0 }),
    onDiscoveryEvent: seen.onDiscoveryEvent,
  });
  // A request before the first snapshot waits for it.
  assert.ok(['b0', 'b1', 'b2'].includes(await get(d)));
  assert.deepEqual(await count(d, 30), { b0: 10, b1: 10, b2: 10 });

  writeEndpoints(path, [{ b: backends[0]! }, { b: backends[2]! }]);
  await seen.until(2);
  assert.deepEqual(await count(d, 10), { b0: 5, b2: 5 });
  assert.equal(d.available.length, 2);

  // fetch works through it too.
  const res = await fetch('http://web.service/', { dispatcher: d });
  assert.equal(res.status, 200);
  await res.text();
});

test("weighted and least-request are the load balancer's pickers", async () => {
  const path = join(dir, 'weighted.json');
  writeEndpoints(path, [
    { b: backends[0]!, weight: 3 },
    { b: backends[1]!, weight: 1 },
  ]);
  await using d = createDiscoveryDispatcher({
    source: staticFileSource({ path, pollMs: 0 }),
    policy: 'weighted',
  });
  await d.ready();
  assert.deepEqual(await count(d, 40), { b0: 30, b1: 10 });
  await using lr = createDiscoveryDispatcher({
    source: staticFileSource({ path, pollMs: 0 }),
    policy: 'least-request',
  });
  const counts = await count(lr, 20);
  assert.equal((counts.b0 ?? 0) + (counts.b1 ?? 0), 20);
});

test('a dead endpoint: idempotent requests retried on another, the endpoint ejected; a streamed POST is not retried', async () => {
  const path = join(dir, 'dead.json');
  const [a, b] = await startBackends(2);
  try {
    writeEndpoints(path, [{ b: a! }, { b: b! }]);
    await using d = createDiscoveryDispatcher({ source: staticFileSource({ path, pollMs: 0 }) });
    await d.ready();
    await a!.kill();
    const before = b!.served();
    for (let i = 0; i < 20; i++) assert.equal(await get(d), 'b1');
    assert.equal(b!.served() - before, 20);
    // Three connect errors in a row ejected it (the outlier defaults): only b1 is available now.
    assert.deepEqual(d.available, [b!.url]);

    // Round robin over [dead, live]: of two POSTs with a streamed body, the one sent to the dead endpoint
    // fails there (its body cannot be sent again), the other one arrives.
    await using once = createDiscoveryDispatcher({
      source: staticFileSource({ path, pollMs: 0 }),
      outlier: false,
    });
    const outcomes: string[] = [];
    for (let i = 0; i < 2; i++) {
      outcomes.push(
        await request('http://web.service/', {
          dispatcher: once,
          method: 'POST',
          body: Readable.from([Buffer.from('x')]),
        }).then(
          (r) => r.body.text(),
          (e: { code?: string }) => e.code ?? 'error',
        ),
      );
    }
    assert.deepEqual(outcomes.sort(), ['ECONNREFUSED', 'b1']);
  } finally {
    await a!.kill().catch(() => {});
    await b!.kill().catch(() => {});
  }
});

test('no endpoints, a source that never answers, and a closed dispatcher each fail with a code', async () => {
  const empty = join(dir, 'empty.json');
  writeFileSync(empty, '[]');
  await using d = createDiscoveryDispatcher({ source: staticFileSource({ path: empty, pollMs: 0 }) });
  await d.ready();
  await assert.rejects(
    get(d),
    (e: unknown) => e instanceof TrafficError && e.code === TrafficErrorCode.noBackend,
  );

  await using never = createDiscoveryDispatcher({
    source: staticFileSource({ path: join(dir, 'missing.json'), pollMs: 0 }),
    readyTimeoutMs: 100,
  });
  await assert.rejects(
    get(never),
    (e: unknown) => e instanceof TrafficError && e.code === TrafficErrorCode.noBackend,
  );

  await d.close();
  await assert.rejects(
    get(d),
    (e: unknown) => e instanceof TrafficError && e.code === TrafficErrorCode.closed,
  );

  assert.throws(
    () => createDiscoveryDispatcher({ source: staticFileSource({ path: empty }), policy: 'consistent-hash' }),
    (e: unknown) => e instanceof TrafficError && e.code === TrafficErrorCode.invalid,
  );
});

test('consistent hash on a header: one key, one endpoint', async () => {
  const path = join(dir, 'hash.json');
  writeEndpoints(
    path,
    backends.map((b) => ({ b })),
  );
  await using d = createDiscoveryDispatcher({
    source: staticFileSource({ path, pollMs: 0 }),
    policy: 'consistent-hash',
    hashHeader: 'X-User',
  });
  await d.ready();
  for (const user of ['alice', 'bob', 'carol']) {
    const names = new Set<string>();
    for (let i = 0; i < 5; i++) {
      const res = await request('http://web.service/', { dispatcher: d, headers: { 'x-user': user } });
      names.add(await res.body.text());
    }
    assert.equal(names.size, 1, `${user}: ${[...names]}`);
  }
});
