// `capstan parallel` as users run it: a child process, real commands (sh, echo, sleep), items from `:::`
// and from stdin, and its exit status.
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { eventually } from '../testing/index.ts';

const main = join(import.meta.dirname, 'main.ts');
const children = new Set<ChildProcess>();
let dir: string;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'capstan-parallel-'));
});
after(() => {
  for (const c of children) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

function parallel(args: string[], input?: string) {
  const child = spawn(process.execPath, ['--conditions=capstan-source', main, 'parallel', ...args], {
    stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  });
  children.add(child);
  if (input !== undefined) child.stdin!.end(input);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (c) => {
    stdout += c;
  });
  child.stderr!.on('data', (c) => {
    stderr += c;
  });
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  return { child, exited, out: () => stdout, err: () => stderr };
}

test('{} is replaced by the item, without {} the item is the last argument; no shell: one item, one argument', async () => {
  const replaced = parallel(['-j', '2', '--', 'echo', 'host={}', 'again={}', ':::', 'a b', '$(id);x']);
  assert.equal(await replaced.exited, 0, replaced.err());
  assert.deepEqual(replaced.out().trim().split('\n').sort(), [
    'host=$(id);x again=$(id);x',
    'host=a b again=a b',
  ]);
  const appended = parallel(['--', 'echo', 'last:', ':::', 'one']);
  assert.equal(await appended.exited, 0, appended.err());
  assert.equal(appended.out(), 'last: one\n');
  assert.match(appended.err(), /items\s+ok\s+failed\s+cancelled\s+retried/);
});

test('items from stdin, one per line; -k keeps their order; --tag prefixes lines', async () => {
  const items = Array.from({ length: 12 }, (_, i) => String(i));
  // Later items finish first: without -k the output would come reversed.
  const run = parallel(
    ['-j', '12', '-k', '--tag', '--no-summary', '--', 'sh', '-c', 'sleep 0.$((12 - $0)); echo done $0', '{}'],
    `${items.join('\n')}\n`,
  );
  assert.equal(await run.exited, 0, run.err());
  assert.deepEqual(
    run.out().trim().split('\n'),
    items.map((i) => `${i}\tdone ${i}`),
  );
  assert.equal(run.err(), '', 'no summary with --no-summary');
});

test('a failing item exits 1 while every other item still completes; the summary names it with its stderr', async () => {
  const run = parallel([
    '-j',
    '2',
    '--',
    'sh',
    '-c',
    'echo ran $0; test $0 != bad || { echo "bad input" >&2; exit 3; }',
    '{}',
    ':::',
    'a',
    'bad',
    'c',
    'd',
  ]);
  assert.equal(await run.exited, 1);
  assert.deepEqual(run.out().trim().split('\n').sort(), ['ran a', 'ran bad', 'ran c', 'ran d']);
  assert.match(run.err(), /^4\s+3\s+1\s+0\s+0/m);
  assert.match(run.err(), /^bad\s+failed\s+1\s+.*exited with 3: bad input$/m);
});

test('--retries: an item that fails once succeeds on its second attempt and counts as retried', async () => {
  const marks = mkdtempSync(join(dir, 'retry-'));
  const run = parallel([
    '--retries',
    '2',
    '--progress',
    '--',
    'sh',
    '-c',
    `test -e ${marks}/$0 || { touch ${marks}/$0; exit 1; }; echo ok $0`,
    '{}',
    ':::',
    'x',
    'y',
  ]);
  assert.equal(await run.exited, 0, run.err());
  assert.deepEqual(run.out().trim().split('\n').sort(), ['ok x', 'ok y']);
  assert.match(run.err(), /^2\s+2\s+0\s+0\s+2/m);
  assert.match(run.err(), /\] 2\/2 done, 0 running, 0 failed/, 'the progress bar ends at 2 of 2');
});

test('--timeout kills an attempt that runs too long, and the item fails', async () => {
  const run = parallel(['--timeout', '300ms', '--', 'sleep', ':::', '30', '0']);
  assert.equal(await run.exited, 1);
  assert.match(run.err(), /^30\s+failed\s+1\s+attempt 1 timed out after 300 ms$/m);
  assert.match(run.err(), /^2\s+1\s+1\s/m);
});

test('Ctrl-C stops in-flight commands (none left running), starts no more, and exits 130', async () => {
  const marks = mkdtempSync(join(dir, 'sigint-'));
  // A duration no other sleep on the machine has, so that pgrep finds only ours.
  const token = `290.${process.pid}${Date.now() % 100_000}`;
  const run = parallel([
    '-j',
    '3',
    '--',
    'sh',
    '-c',
    // Not exec'd: the sleep is the shell's child, stopped only because its whole process group is.
    `touch ${marks}/$0; sleep ${token}; true`,
    '{}',
    ':::',
    ...Array.from({ length: 9 }, (_, i) => String(i)),
  ]);
  await eventually('three commands running', () => readdirSync(marks).length === 3, { timeoutMs: 30_000 });
  run.child.kill('SIGINT');
  assert.equal(await run.exited, 130, run.err());
  assert.equal(readdirSync(marks).length, 3, 'no item started after Ctrl-C');
  assert.match(run.err(), /^9\s+0\s+0\s+9\s+0/m);
  assert.equal(pgrep(`sleep ${token}`), '', 'no command left running');
});

test('usage errors exit 2 with the reason', async () => {
  for (const [args, reason] of [
    [['--', ':::', 'a'], /no command before :::/],
    [['--', 'echo', ':::', 'a', ':::', 'b'], /one ::: list only/],
    [['--timeout', 'soon', '--', 'echo', ':::', 'a'], /--timeout: a duration/],
    [['-j', '0', '--', 'echo', ':::', 'a'], /--jobs must be at least 1/],
  ] as const) {
    const run = parallel([...args]);
    assert.equal(await run.exited, 2, `${args.join(' ')}: ${run.err()}`);
    assert.match(run.err(), reason);
  }
  const missing = parallel(['--retries', '3', '--', 'capstan-no-such-program', ':::', 'a']);
  assert.equal(await missing.exited, 1);
  assert.match(
    missing.err(),
    /^a\s+failed\s+1\s+.*cannot run capstan-no-such-program/m,
    'a missing program is not retried',
  );
});

function pgrep(pattern: string): string {
  try {
    return execFileSync('pgrep', ['-f', pattern], { encoding: 'utf8' }).trim();
  } catch {
    return '';
  }
}
