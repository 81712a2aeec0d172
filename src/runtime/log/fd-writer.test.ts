// The synchronous log writer against real pipes: a reader that left, a reader that never reads, partial writes.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { SyncFdWriter } from './fd-writer.ts';

/** A child whose stdin is a pipe we hold the write end of (non-blocking, as libuv opens it). */
function pipeTo(command: string, args: string[]) {
  const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'ignore'] });
  const fd = (child.stdin as unknown as { _handle: { fd: number } })._handle.fd;
  return { child, fd };
}

test('every line reaches the reader, in order, including lines larger than the pipe buffer', async () => {
  // The reader drains into a file by itself: this process blocks in write() while the pipe is full.
  const file = join(mkdtempSync(join(tmpdir(), 'capstan-fdw-')), 'out');
  const { child, fd } = pipeTo('sh', ['-c', `cat > ${file}`]);
  const w = new SyncFdWriter(fd);
  const big = `${'é'.repeat(200_000)}\n`; // 400 kB of two-byte characters: partial writes and EAGAINs
  const lines = ['one\n', big, 'three\n'];
  for (const l of lines) w.write(l);
  child.stdin!.end();
  await once(child, 'close');
  assert.equal(w.broken, undefined);
  assert.equal(readFileSync(file, 'utf8'), lines.join(''));
  rmSync(dirname(file), { recursive: true, force: true });
});

test('a reader that went away (EPIPE) stops output without throwing; later lines are dropped and counted', async () => {
  // The reader closes its end and lives on.
  const { child, fd } = pipeTo('sh', ['-c', 'exec 0<&-; echo closed; exec sleep 30']);
  await once(child.stdout!, 'data');
  const w = new SyncFdWriter(fd);
  assert.doesNotThrow(() => w.write('lost\n'));
  assert.equal((w.broken as NodeJS.ErrnoException | undefined)?.code, 'EPIPE');
  w.write('also lost\n');
  assert.equal(w.dropped, 2);
  w.flushSync(); // nothing buffered, returns at once
  child.kill('SIGKILL');
});

test('a reader that never reads: a write waits at most stallLimitMs, then output stops', async () => {
  const { child, fd } = pipeTo('sleep', ['30']);
  try {
    const w = new SyncFdWriter(fd, { stallLimitMs: 200 });
    const line = `${'x'.repeat(1023)}\n`;
    const started = Date.now();
    let writes = 0;
    while (!w.broken && writes < 10_000) {
      w.write(line);
      writes++;
    }
    assert.match(String(w.broken?.message), /reader stalled for \d+ ms/);
    assert.ok(writes > 10, `the pipe buffer took ${writes} lines before it was full`);
    assert.ok(Date.now() - started < 20_000, 'bounded');
  } finally {
    child.kill('SIGKILL');
  }
});
