// The action runner as the CLI uses it: a real process per case, signals sent to it.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const fixture = fileURLToPath(new URL('./testdata/run-action-fixture.ts', import.meta.url));

/** Run the fixture to completion in `mode`. */
function run(mode: string, env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, ['--conditions=capstan-source', fixture, mode], {
    env: { PATH: process.env['PATH'] ?? '', ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Start the fixture in `mode`, wait for its "waiting" line, send `signals` one by one, return how it ended. */
async function interrupt(mode: string, signals: NodeJS.Signals[]) {
  const child = spawn(process.execPath, ['--conditions=capstan-source', fixture, mode], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const closed = once(child, 'close');
  let stdout = '';
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (c: string) => {
    stderr += c;
  });
  await new Promise<void>((resolve, reject) => {
    child.stdout.setEncoding('utf8').on('data', (c: string) => {
      stdout += c;
      if (stdout.includes('waiting\n')) resolve();
    });
    void closed.then(() => reject(new Error(`fixture exited early: ${stderr}`)));
  });
  for (const signal of signals) {
    child.kill(signal);
    await new Promise((r) => setTimeout(r, 200));
  }
  const [status] = (await closed) as [number | null];
  return { status, stdout, stderr };
}

describe('runAction', () => {
  test('a configuration error exits 78 with its message as loadConfigOrExit prints it', () => {
    const r = run('config');
    assert.equal(r.status, 78, r.stderr);
    assert.match(r.stderr, /^invalid configuration: 1 problem\n {2}- FIXTURE_PORT: expected a port/);
    assert.equal(r.stdout, '');
  });

  test('an area error shows its message and code, exit 1; a usage error exits 2', () => {
    const area = run('area');
    assert.equal(area.status, 1);
    assert.equal(area.stderr, 'capstan fixture: the fixture area broke (CAP_ERR_FIXTURE_BROKEN)\n');
    const usage = run('usage');
    assert.equal(usage.status, 2);
    assert.equal(usage.stderr, 'capstan fixture: --flag wants a number, got x\n');
  });

  test('an unknown error exits 1 with its message, its stack only with CAPSTAN_DEBUG', () => {
    const plain = run('plain');
    assert.equal(plain.status, 1);
    assert.equal(plain.stderr, 'capstan fixture: something unexpected\n');
    const debug = run('plain', { CAPSTAN_DEBUG: '1' });
    assert.equal(debug.status, 1);
    assert.match(
      debug.stderr,
      /^capstan fixture: something unexpected\nTypeError: something unexpected\n\s+at /,
    );
    assert.match(debug.stderr, /run-action-fixture\.ts/);
  });

  test('the action chooses its status; otherwise 0', () => {
    assert.equal(run('exit-status').status, 3);
    const done = run('done');
    assert.deepEqual([done.status, done.stdout, done.stderr], [0, 'done\n', '']);
  });

  test('SIGINT aborts the action signal with an interrupted CliError and exits 130', async () => {
    const r = await interrupt('wait', ['SIGINT']);
    assert.equal(r.status, 130, r.stderr);
    assert.equal(r.stdout, 'waiting\naborted by SIGINT: CAP_ERR_CLI_INTERRUPTED\n');
    assert.equal(r.stderr, '');
  });

  test('SIGTERM too; an error raised by the stop itself is no failure: 130, nothing on stderr', async () => {
    const r = await interrupt('throw-when-stopped', ['SIGTERM']);
    assert.equal(r.status, 130);
    assert.equal(r.stderr, '');
  });

  test('a second Ctrl-C exits at once when the action ignores the first', async () => {
    const started = Date.now();
    const r = await interrupt('ignore-signals', ['SIGINT', 'SIGINT']);
    assert.equal(r.status, 130);
    assert.match(r.stderr, /second SIGINT: exiting now/);
    assert.ok(Date.now() - started < 30_000, 'did not wait for the action');
  });
});
