// `capstan up` (the README's main job) as a person runs it: start, use the URLs, Ctrl-C.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { test } from 'node:test';

const main = new URL('../src/cli/main.ts', import.meta.url).pathname;

test('capstan up starts the services on loopback, prints their URLs and stops cleanly on SIGINT', async () => {
  const child = spawn(process.execPath, ['--conditions=capstan-source', main, 'up'], {
    env: { ...process.env, LOG_FORMAT: 'json' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const closed = once(child, 'close');
  let out = '';
  child.stdout.setEncoding('utf8');
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (c: string) => {
      out += c;
      if (out.includes('Ctrl-C stops them')) resolve();
    });
    void closed.then(() => reject(new Error(`capstan up exited early:\n${out}`)));
  });
  const metricsUrl = /metrics\s+(http:\/\/127\.0\.0\.1:\d+\/metrics)/.exec(out)?.[1];
  assert.ok(metricsUrl, out);
  const body = await (await fetch(metricsUrl)).text();
  assert.match(body, /^node_load1 /m);
  assert.match(body, /^node_filesystem_avail_bytes\{mountpoint="\/"\} \d+/m);
  const readyz = await fetch(metricsUrl.replace('/metrics', '/readyz?verbose'));
  assert.equal(readyz.status, 200);
  const verbose = await readyz.text();
  assert.match(verbose, /procfs/, verbose);
  child.kill('SIGINT');
  const [code] = await closed;
  assert.equal(code, 0, out);
  assert.match(out, /"msg":"lifecycle stopped"/);
  await assert.rejects(fetch(metricsUrl));
});

test('capstan up --only with an unknown service exits 2 and names the known ones', async () => {
  const child = spawn(process.execPath, ['--conditions=capstan-source', main, 'up', '--only', 'nope'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr.setEncoding('utf8').on('data', (c: string) => {
    err += c;
  });
  const [code] = await once(child, 'close');
  assert.equal(code, 2);
  assert.match(err, /unknown service\(s\): nope; known: host-exporter/);
});
