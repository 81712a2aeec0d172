// `capstan lb` as a program: exit 78 listing every problem of a bad configuration; a good one serves,
// reloads on SIGHUP, and drains on SIGTERM with exit 0.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { freePort } from '../runtime/index.ts';
import { eventually } from '../testing/index.ts';

const main = join(import.meta.dirname, 'main.ts');
const children = new Set<ChildProcess>();
const servers: Server[] = [];
const urls: string[] = [];
let dir: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'capstan-lb-cli-'));
  for (const name of ['one', 'two']) {
    const server = createServer((_req, res) => res.end(name));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    servers.push(server);
    urls.push(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  }
});
after(() => {
  for (const c of children) c.kill('SIGKILL');
  for (const s of servers) s.close();
  rmSync(dir, { recursive: true, force: true });
});

function start(args: string[]) {
  const child = spawn(process.execPath, ['--conditions=capstan-source', main, 'lb', ...args], {
    env: { ...process.env, LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (c) => {
    stdout += c;
  });
  child.stderr!.on('data', (c) => {
    stderr += c;
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, exited, out: () => stdout, err: () => stderr };
}

async function until(what: string, cond: () => boolean, limitMs = 30_000): Promise<void> {
  const end = Date.now() + limitMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('a bad configuration: exit 78 and every problem listed', async () => {
  const file = join(dir, 'bad.yaml');
  writeFileSync(file, 'listen: nowhere\nbackends: [ftp://x:1]\npolicy: fastest\nretry: { retries: -1 }\n');
  const run = start(['--config', file]);
  assert.equal(await run.exited, 78);
  const err = run.err();
  assert.match(err, /4 problems/);
  for (const where of ['listen:', 'backends[0]:', 'policy:', 'retry.retries:'])
    assert.ok(err.includes(where), err);
  const usage = start([]);
  assert.equal(await usage.exited, 2, 'neither --backend nor --config');
});

test('serves, reloads on SIGHUP, drains on SIGTERM with exit 0', async () => {
  const port = await freePort();
  const file = join(dir, 'lb.yaml');
  writeFileSync(file, `backends: [${urls[0]}]\n`);
  const run = start(['--listen', `127.0.0.1:${port}`, '--config', file, '--no-watch']);
  await until('listening', () => run.out().includes('capstan lb: '));
  const get = async () => (await fetch(`http://127.0.0.1:${port}/`)).text();
  assert.equal(await get(), 'one');
  writeFileSync(file, `backends: [${urls[1]}]\n`);
  assert.equal(await get(), 'one', '--no-watch: the file change alone does nothing');
  run.child.kill('SIGHUP');
  await eventually('the SIGHUP reload brings the second backend', async () => (await get()) === 'two', {
    timeoutMs: 30_000,
    intervalMs: 20,
  });
  run.child.kill('SIGTERM');
  assert.equal(await run.exited, 0, run.err());
});
