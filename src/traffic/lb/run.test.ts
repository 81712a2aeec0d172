// capstan lb's configuration and reloads: every problem listed at once; a reload (file change or SIGHUP)
// under load drops nothing, keeps the clients' connections, and lets a removed backend finish its requests.
import assert from 'node:assert/strict';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Pool } from 'undici';
import { createLogger } from '../../runtime/index.ts';
import { eventually } from '../../testing/index.ts';
import { TrafficError, TrafficErrorCode } from '../errors.ts';
import { parseLbConfig, parseListen } from './config.ts';
import type { LoadBalancerEvent } from './load-balancer.ts';
import { runLoadBalancer } from './run.ts';
import { HEALTH_PATH, startBackends, type TestBackend } from './testdata/backends.ts';

const logger = createLogger({ name: 'lb-test', level: 'silent' });
let backends: TestBackend[];
let dir: string;

before(async () => {
  backends = await startBackends(3);
  dir = mkdtempSync(join(tmpdir(), 'capstan-lb-'));
});
after(async () => {
  for (const b of backends) await b.kill();
  rmSync(dir, { recursive: true, force: true });
});

function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof TrafficError);
    assert.equal(err.code, TrafficErrorCode.config);
    return [...err.problems];
  }
  assert.fail('no error');
}

test('a bad configuration lists every problem at once, with where it is', () => {
  const problems = problemsOf(() =>
    parseLbConfig(
      [
        'listen: 127.0.0.1:99999',
        'backends:',
        '  - ftp://x:1',
        '  - url: http://127.0.0.1:9001',
        '    weight: 0',
        '  - http://127.0.0.1:9002/api',
        'policy: consistent-hash',
        'healthCheck: { interval: soon, rise: 0, typo: 1 }',
        'timeouts: { connect: 0 }',
        'trustedProxies: [10.0.0.0/40]',
        'tls: { cert: /nonexistent/cert.pem, key: /nonexistent/key.pem }',
      ].join('\n'),
      {},
      { readFile: () => 'never read: the other problems stop it first' },
    ),
  );
  const expected = [
    /^listen: /,
    /^backends\[0\]: .*http/,
    /^backends\[1\]\.weight: /,
    /^backends\[2\]: .*bare origin/,
    /^hashHeader: required/,
    /^healthCheck\.interval: expected a duration/,
    /^healthCheck\.rise: /,
    /^healthCheck: .*typo/,
    /^timeouts\.connect: /,
    /^trustedProxies\[0\]: /,
  ];
  for (const pattern of expected)
    assert.ok(
      problems.some((p) => pattern.test(p)),
      `${pattern} in ${problems.join(' | ')}`,
    );
  assert.equal(problems.length, expected.length, problems.join('\n'));
  assert.deepEqual(problemsOf(() => parseLbConfig('listen: [', {})).length, 1);
  assert.match(
    problemsOf(() => parseLbConfig(undefined, {})).join('|'),
    /listen: required.*backends: at least one/,
  );
  assert.match(
    problemsOf(() =>
      parseLbConfig('tls: { cert: /no/c.pem, key: /no/k.pem }', {
        listen: ':1',
        backends: ['http://127.0.0.1:1'],
      }),
    ).join('|'),
    /tls\.cert: cannot read.*tls\.key: cannot read/,
  );
});

test('flags win over the file; durations and defaults come out as settings', () => {
  const config = parseLbConfig(
    [
      'listen: 0.0.0.0:80',
      'backends: [http://127.0.0.1:1]',
      'healthCheck: { path: /hz, interval: 1500ms, fall: 3 }',
      'outlier: { baseEjection: 10s }',
      'timeouts: { headers: 2s, idle: 0 }',
      'retry: { statusCodes: [503] }',
    ].join('\n'),
    { listen: ':8080', backends: ['http://127.0.0.1:2', 'http://127.0.0.1:3'], policy: 'least-request' },
  );
  assert.deepEqual(config.listen, { host: '127.0.0.1', port: 8080 });
  assert.deepEqual(config.settings.backends, [{ url: 'http://127.0.0.1:2' }, { url: 'http://127.0.0.1:3' }]);
  assert.equal(config.settings.policy, 'least-request');
  assert.deepEqual(config.settings.healthCheck, { path: '/hz', intervalMs: 1500, fall: 3 });
  assert.deepEqual(config.settings.outlier, { baseEjectionMs: 10_000 });
  assert.deepEqual(config.settings.timeouts, { headersMs: 2_000, idleMs: 0 });
  assert.deepEqual(parseListen('[::1]:9'), { host: '::1', port: 9 });
  assert.deepEqual(parseListen('9'), { host: '127.0.0.1', port: 9 });
  assert.equal(parseListen('host:70000'), undefined);
});

test('reloads under load: file change and SIGHUP, no failed request, no new client connection, a removed backend finishes', async () => {
  const file = join(dir, 'lb.yaml');
  // Written aside and renamed over, as editors and config maps do: a reader never sees half a file.
  const write = (urls: string[], policy = 'round-robin') => {
    writeFileSync(
      `${file}.tmp`,
      `listen: 127.0.0.1:0\npolicy: ${policy}\nbackends:\n${urls.map((u) => `  - ${u}`).join('\n')}\nhealthCheck: { path: ${HEALTH_PATH}, interval: 200ms }\n`,
    );
    renameSync(`${file}.tmp`, file);
  };
  const [b0, b1, b2] = backends as [TestBackend, TestBackend, TestBackend];
  write([b0.url, b1.url]);
  const running = await runLoadBalancer({ configFile: file, logger });
  const { lb } = running;
  const events: LoadBalancerEvent[] = [];
  lb.onEvent((e) => events.push(e));
  let accepted = 0;
  lb.service.server.on('connection', () => accepted++);
  const client = new Pool(lb.url, { connections: 4 });
  let loading = true;
  let releaseSlow: (() => void) | undefined;
  let workers: Promise<void>[] = [];
  try {
    // A slow request held by b0, which the reload removes: it must still complete.
    b0.behaviour = (req, res) => {
      req.resume();
      if (req.url === '/slow') releaseSlow = () => res.end('slow done');
      else res.end('b0');
    };
    let slow: Promise<string> | undefined;
    for (let i = 0; i < 2 && !releaseSlow; i++) {
      const p = client.request({ method: 'GET', path: '/slow' }).then((r) => r.body.text());
      await new Promise((r) => setTimeout(r, 50));
      if (releaseSlow) slow = p;
      else await p;
    }
    assert.ok(slow, 'b0 holds a slow request');

    const seen = new Set<string>();
    const failures: string[] = [];
    let ok = 0;
    const worker = async () => {
      while (loading) {
        try {
          const res = await client.request({ method: 'GET', path: '/' });
          const body = await res.body.text();
          if (res.statusCode === 200) {
            ok++;
            seen.add(body);
          } else failures.push(`${res.statusCode} ${body}`);
        } catch (err) {
          failures.push(String(err));
        }
      }
    };
    workers = [worker(), worker(), worker()];
    const waitFor = (what: string, cond: () => boolean) =>
      eventually(what, cond, { timeoutMs: 10_000, intervalMs: 10 });
    await waitFor('traffic', () => ok > 100);
    const acceptedBefore = accepted;

    // 1. The file changes: b0 out, b2 in.
    write([b1.url, b2.url]);
    await waitFor('the file reload', () => events.some((e) => e.type === 'updated'));
    seen.clear();
    await waitFor('b2 serving', () => seen.has('b2'));
    // Requests sent to b0 before the reload may still be answering: count from here.
    seen.clear();
    const afterFile = ok;
    await waitFor('traffic after the file reload', () => ok > afterFile + 100);
    assert.ok(!seen.has('b0'), 'b0 took no new request after it was removed');

    // 2. SIGHUP with a new policy (the file is rewritten with the watch off-path: the signal reloads it).
    running.close();
    write([b0.url, b1.url, b2.url], 'least-request');
    const hup = running.reload('SIGHUP');
    assert.equal(await hup, true);
    assert.equal(lb.policy, 'least-request');
    const afterHup = ok;
    await waitFor('traffic after SIGHUP', () => ok > afterHup + 100);

    loading = false;
    await Promise.all(workers);
    releaseSlow!();
    assert.equal(await slow, 'slow done', 'the removed backend finished its request');
    assert.deepEqual(failures, []);
    assert.equal(accepted - acceptedBefore, 0, 'clients kept their connections');

    // 3. A bad file is refused; the running configuration stays.
    writeFileSync(file, 'listen: 127.0.0.1:0\nbackends: [ftp://nope]\n');
    assert.equal(await running.reload('test'), false);
    assert.equal(lb.backends.all.length, 3);
  } finally {
    loading = false;
    await Promise.all(workers);
    releaseSlow?.();
    b0.behaviour = (req, res) => {
      req.resume();
      req.once('end', () => res.end('b0'));
    };
    await client.close();
    running.close();
    await lb.stop();
  }
});

test('capstan up: the load balancer runs from CAPSTAN_LB_CONFIG on up’s host and lifecycle, and not without it', async () => {
  const { Lifecycle } = await import('../../runtime/index.ts');
  const { loadBalancerUpService, LB_CONFIG_ENV } = await import('./up.ts');
  const lifecycle = new Lifecycle({ drainDelayMs: 0 });
  const ctx = { host: '127.0.0.1', lifecycle, logger, signal: new AbortController().signal };
  assert.deepEqual(await loadBalancerUpService.start({ ...ctx, env: {} }), { urls: {} });
  const file = join(dir, 'up.yaml');
  writeFileSync(file, `listen: 0.0.0.0:0\nbackends: [${backends[0]!.url}]\n`);
  const started = await loadBalancerUpService.start({ ...ctx, env: { [LB_CONFIG_ENV]: file } });
  assert.match(started.urls['proxy']!, /^http:\/\/127\.0\.0\.1:\d+$/, 'up’s host, not the file’s');
  assert.equal(await (await fetch(started.urls['proxy']!)).text(), 'b0');
  writeFileSync(file, 'backends: nope\n');
  await assert.rejects(
    loadBalancerUpService.start({ ...ctx, env: { [LB_CONFIG_ENV]: file } }),
    (err: { code?: string }) => err.code === TrafficErrorCode.config,
  );
  const report = await lifecycle.shutdown('test');
  assert.equal(report.exitCode, 0);
});
