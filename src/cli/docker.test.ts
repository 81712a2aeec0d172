import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DockerClient } from 'capstan/docker';
import { createTestContainer, type DockerPeer, startDocker } from 'capstan/testing';

let docker: DockerPeer;
let client: DockerClient;
const children = new Set<ChildProcess>();

before(async () => {
  // Live restore: the watch test restarts the daemon while containers keep running.
  docker = await startDocker({ liveRestore: true });
  client = new DockerClient({ host: docker.dockerHost });
});

after(async () => {
  for (const c of children) c.kill('SIGKILL');
  await client?.close();
  await docker?.stop();
});

const main = join(import.meta.dirname, 'main.ts');

/** Run the CLI; resolves with its output once it exits on its own (bounded by a timeout). */
function cli(
  args: string[],
  timeoutMs = 60_000,
  options: { env?: NodeJS.ProcessEnv; onStart?: (child: ChildProcess) => void } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--conditions=capstan-source', main, ...args], {
      env: { ...process.env, DOCKER_HOST: docker.dockerHost, NO_COLOR: '', FORCE_COLOR: '', ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.add(child);
    options.onStart?.(child);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`capstan ${args.join(' ')} did not exit in ${timeoutMs} ms; stderr: ${stderr}`));
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      children.delete(child);
      resolve({ code, stdout, stderr });
    });
  });
}

function run(cmd: string[], name: string, labels: Record<string, string> = {}): Promise<string> {
  return createTestContainer(client, cmd, { name, labels, start: true });
}

describe('capstan logs / capstan docker watch (CLI) against a real dockerd', () => {
  test('logs: prefix per container, stdout and stderr apart, --tail, --stdout-only, no colour when piped', async () => {
    const a = await run(['sh', '-c', 'echo a-out-1; echo a-err >&2; usleep 500000; echo a-out-2'], 'cli-a', {
      grp: 'x',
    });
    const b = await run(['sh', '-c', 'echo b-out'], 'cli-b', { grp: 'x' });
    await client.waitContainer(a);
    await client.waitContainer(b);
    const r = await cli(['logs', 'grp=x']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n').sort(), ['cli-a a-out-1', 'cli-a a-out-2', 'cli-b b-out']);
    assert.equal(r.stderr, 'cli-a a-err\n');
    assert.doesNotMatch(r.stdout, /\x1b\[/);
    const tail = await cli(['logs', '--tail', '1', 'cli-a', '--stdout-only']);
    assert.deepEqual([tail.stdout, tail.stderr], ['cli-a a-out-2\n', '']);
  });

  test('logs: --timestamps, --stderr-only, one colour per container when colour is on', async () => {
    const a = await run(['sh', '-c', 'echo a-out; echo a-err >&2'], 'cli-ts-a', { grp: 'ts' });
    const b = await run(['sh', '-c', 'echo b-out; echo b-err >&2'], 'cli-ts-b', { grp: 'ts' });
    await client.waitContainer(a);
    await client.waitContainer(b);
    const ts = await cli(['logs', '--timestamps', 'cli-ts-a']);
    assert.equal(ts.code, 0, ts.stderr);
    assert.match(ts.stdout, /^cli-ts-a \d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z a-out\n$/);
    assert.match(ts.stderr, /^cli-ts-a \d{4}-\d{2}-\d{2}T\S+Z a-err\n$/);
    const errOnly = await cli(['logs', '--stderr-only', 'grp=ts']);
    assert.equal(errOnly.stdout, '');
    assert.deepEqual(errOnly.stderr.trim().split('\n').sort(), ['cli-ts-a a-err', 'cli-ts-b b-err']);
    const coloured = await cli(['logs', '--stdout-only', 'grp=ts'], 60_000, { env: { FORCE_COLOR: '1' } });
    const prefixes = new Map<string, string>();
    for (const line of coloured.stdout.trim().split('\n')) {
      const m = /^\x1b\[(\d+)m(cli-ts-[ab])\x1b\[0m ([ab]-out)$/.exec(line);
      assert.ok(m, `coloured prefix: ${JSON.stringify(line)}`);
      prefixes.set(m[2]!, m[1]!);
    }
    assert.equal(prefixes.size, 2);
    assert.notEqual(prefixes.get('cli-ts-a'), prefixes.get('cli-ts-b'), 'each container its own colour');
    const off = await cli(['logs', '--no-color', 'cli-ts-a'], 60_000, { env: { FORCE_COLOR: '1' } });
    assert.equal(off.stdout, 'cli-ts-a a-out\n');
  });

  test('logs -f: the default grace (5 s) carries a restart 1.5 s later into the same output; Ctrl-C exits 130', async () => {
    const id = await run(['sh', '-c', 'echo run'], 'cli-grace');
    await client.waitContainer(id);
    // The restart is timed from the CLI's first line, not from the test: on a loaded machine the CLI can take
    // longer than 1.5 s to start, and would then find both runs already over.
    let restartLater: Promise<void> | undefined;
    const r = await cli(['logs', '-f', '--verbose', 'cli-grace'], 60_000, {
      onStart: (child) => {
        child.stdout!.on('data', () => {
          restartLater ??= (async () => {
            await new Promise((resolve) => setTimeout(resolve, 1_500));
            await client.startContainer(id);
          })();
        });
      },
    });
    await restartLater;
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'cli-grace run\ncli-grace run\n');
    assert.match(r.stderr, /restarted at/);

    const live = await run(['sh', '-c', 'echo up; sleep 60'], 'cli-ctrl-c');
    let stdout = '';
    const interrupted = await cli(['logs', '-f', 'cli-ctrl-c'], 60_000, {
      onStart: (child) => {
        child.stdout!.on('data', (d) => {
          stdout += d;
          if (stdout.includes('up')) child.kill('SIGINT');
        });
      },
    });
    assert.equal(interrupted.code, 130);
    assert.equal(interrupted.stdout, 'cli-ctrl-c up\n');
    await client.removeContainer(live, { force: true });
  });

  test('logs --output json: one object per line with container, id, stream, RFC3339Nano timestamp, text', async () => {
    const id = await run(['sh', '-c', 'echo hello; echo oops >&2'], 'cli-json');
    await client.waitContainer(id);
    const r = await cli(['logs', '-o', 'json', 'cli-json']);
    assert.equal(r.code, 0, r.stderr);
    const rows = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.deepEqual(rows.map((x) => [x.container, x.containerId, x.stream, x.text]).sort(), [
      ['cli-json', id, 'stderr', 'oops'],
      ['cli-json', id, 'stdout', 'hello'],
    ]);
    for (const row of rows) {
      assert.match(row.timestamp, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{9}Z$/);
      assert.deepEqual(Object.keys(row).sort(), ['container', 'containerId', 'stream', 'text', 'timestamp']);
    }
  });

  test('logs -f ends after the container exits and the grace passes; bad input fails with exit 1', async () => {
    const id = await run(['sh', '-c', 'echo one; usleep 300000; echo two'], 'cli-follow');
    const r = await cli(['logs', '-f', '--grace', '500ms', '--since', '10m', '--verbose', id]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'cli-follow one\ncli-follow two\n');
    assert.match(r.stderr, /ended \(exited, exit code 0\)/);
    const missing = await cli(['logs', 'no-such-container']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /No such container/);
    const badTail = await cli(['logs', '--tail', 'x', 'cli-follow']);
    assert.notEqual(badTail.code, 0);
    assert.match(badTail.stderr, /--tail/);
  });

  test('docker watch --on die --exec: the hook runs once per death with the event in its env', async () => {
    const out = join(docker.dir, 'hook.out');
    // One hook at a time, in event order: once the marker's hook has run, the hook of anything the stream
    // delivered before the marker's death (a duplicate of x or y included) has run too.
    const watch = startWatch([
      '--on',
      'die',
      '--hook-concurrency',
      '1',
      '--exec',
      `echo "$CAPSTAN_EVENT_ACTION $CAPSTAN_CONTAINER_NAME $CAPSTAN_EXIT_CODE \${#CAPSTAN_CONTAINER_ID}" >> ${out}`,
    ]);
    try {
      await waitFor(() => watch.stderr().includes('watching'));
      const x = await run(['sh', '-c', 'exit 3'], 'hook-x');
      await run(['sh', '-c', 'echo alive'], 'hook-y');
      await client.waitContainer(x);
      await run(['sleep', '60'], 'hook-z');
      const lines = () => (existsSync(out) ? readFileSync(out, 'utf8').trim().split('\n').sort() : []);
      await waitFor(() => lines().length >= 2);
      await client.waitContainer(await run(['sh', '-c', 'exit 7'], 'hook-mark'));
      await waitFor(() => lines().includes('die hook-mark 7 64'));
      assert.deepEqual(lines(), ['die hook-mark 7 64', 'die hook-x 3 64', 'die hook-y 0 64']);
    } finally {
      watch.child.kill('SIGTERM');
    }
    assert.equal(await watch.exited, 0);
    assert.match(watch.stderr(), /stopped after 3 event\(s\); hooks: 3 ok, 0 failed, 0 timed out, 0 dropped/);
  });

  test('docker watch --exec: a hung hook does not stall later hooks and is killed at --hook-timeout', async () => {
    const out = join(docker.dir, 'hook-hung.out');
    const pidFile = join(docker.dir, 'hook-hung.pid');
    const watch = startWatch([
      '--on',
      'die',
      '--filter',
      'label=watch=hung',
      '--hook-timeout',
      '10s',
      '--exec',
      `if [ "$CAPSTAN_CONTAINER_NAME" = hung-first ]; then echo $$ > ${pidFile}; exec sleep 3600; fi; ` +
        `echo "$CAPSTAN_CONTAINER_NAME" >> ${out}`,
    ]);
    try {
      await waitFor(() => watch.stderr().includes('watching'));
      await run(['true'], 'hung-first', { watch: 'hung' });
      await waitFor(() => existsSync(pidFile) && readFileSync(pidFile, 'utf8').endsWith('\n'));
      const pid = Number(readFileSync(pidFile, 'utf8'));
      await run(['true'], 'hung-b', { watch: 'hung' });
      await run(['sh', '-c', 'exit 1'], 'hung-c', { watch: 'hung' });
      const lines = () => (existsSync(out) ? readFileSync(out, 'utf8').trim().split('\n').sort() : []);
      await waitFor(() => lines().length >= 2);
      // Later hooks ran while the first still hung (its 10 s are generous next to two short hooks).
      assert.deepEqual(lines(), ['hung-b', 'hung-c']);
      assert.ok(existsSync(`/proc/${pid}`), 'the hung hook is still running');
      assert.doesNotMatch(watch.stderr(), /passed its timeout/);
      await waitFor(() =>
        /hook for die hung-first passed its timeout \(10 s\) and was killed/.test(watch.stderr()),
      );
      assert.ok(!existsSync(`/proc/${pid}`), 'the hung hook is gone');
    } finally {
      watch.child.kill('SIGTERM');
    }
    assert.equal(await watch.exited, 0);
    assert.match(watch.stderr(), /hooks: 2 ok, 0 failed, 1 timed out, 0 dropped/);
  });

  test('docker watch --exec: past --hook-queue an event is dropped, reported by name and counted', async () => {
    const out = join(docker.dir, 'hook-queue.out');
    const started = join(docker.dir, 'hook-queue.started');
    const watch = startWatch([
      '--on',
      'die',
      '--filter',
      'label=watch=queue',
      '--json',
      '--hook-concurrency',
      '1',
      '--hook-queue',
      '1',
      '--hook-timeout',
      '15s',
      '--exec',
      `if [ "$CAPSTAN_CONTAINER_NAME" = q-1 ]; then touch ${started}; exec sleep 3600; fi; ` +
        `echo "$CAPSTAN_CONTAINER_NAME" >> ${out}`,
    ]);
    try {
      await waitFor(() => watch.stderr().includes('watching'));
      await run(['true'], 'q-1', { watch: 'queue' });
      await waitFor(() => existsSync(started));
      // One death at a time, each seen by the watch (--json echoes it) before the next: q-2 waits in the
      // queue, q-3 and q-4 find it full.
      for (const name of ['q-2', 'q-3', 'q-4']) {
        await run(['true'], name, { watch: 'queue' });
        await waitFor(() => watch.stdout().includes(`"name":"${name}"`));
      }
      await waitFor(() => watch.stderr().includes('dropped die q-4'));
      assert.match(watch.stderr(), /hook queue full \(1 waiting\): dropped die q-3 \([0-9a-f]{64}\)/);
      assert.match(watch.stderr(), /hook queue full \(1 waiting\): dropped die q-4 \([0-9a-f]{64}\)/);
      assert.doesNotMatch(watch.stderr(), /dropped die q-2/);
      // The queued one runs once the hung hook is killed at its timeout.
      await waitFor(() => existsSync(out) && readFileSync(out, 'utf8') === 'q-2\n');
    } finally {
      watch.child.kill('SIGTERM');
    }
    assert.equal(await watch.exited, 0);
    assert.match(watch.stderr(), /stopped after 4 event\(s\); hooks: 1 ok, 0 failed, 1 timed out, 2 dropped/);
  });

  test('docker watch survives a daemon restart: a death the daemon never reported runs the hook once, as reconciled', async () => {
    const out = join(docker.dir, 'hook-restart.out');
    let stderr = '';
    const watching = cli(
      [
        'docker',
        'watch',
        '--on',
        'die',
        '--filter',
        'label=watch=restart',
        '--exec',
        `echo "$CAPSTAN_CONTAINER_NAME $CAPSTAN_EXIT_CODE" >> ${out}`,
      ],
      120_000,
      { onStart: (child) => child.stderr!.on('data', (d) => (stderr += d)) },
    );
    await waitFor(() => stderr.includes('watching'));
    const before = await run(['sh', '-c', 'exit 4'], 'watch-before', { watch: 'restart' });
    await client.waitContainer(before);
    const during = await run(['sleep', '300'], 'watch-during', { watch: 'restart' });
    const pid = (await client.inspectContainer(during)).State.Pid;
    await waitFor(() => existsSync(out) && readFileSync(out, 'utf8').includes('watch-before'));
    // Dies while dockerd is down: dockerd restores it as exited and sends no event for it.
    await docker.restart({
      whileDown: async () => {
        process.kill(pid, 'SIGKILL');
        await waitFor(() => !existsSync(`/proc/${pid}`));
      },
    });
    const afterId = await run(['sh', '-c', 'exit 5'], 'watch-after', { watch: 'restart' });
    await client.waitContainer(afterId);
    await waitFor(() => readFileSync(out, 'utf8').trim().split('\n').length >= 3);
    // A late duplicate would show up as a fourth line: give it a moment to appear.
    await new Promise((r) => setTimeout(r, 1_000));
    for (const c of children) if (c.spawnargs.includes('watch')) c.kill('SIGTERM');
    const r = await watching;
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(readFileSync(out, 'utf8').trim().split('\n').sort(), [
      'watch-after 5',
      'watch-before 4',
      'watch-during 137',
    ]);
    assert.match(r.stderr, /event stream lost/);
    assert.match(r.stderr, /reconnected after [\d.]+ s, replayed \d+ missed event\(s\), reconciled 1 change/);
  });
});

/** `capstan docker watch <args>` in the background; its output so far, and its exit status once it ends. */
function startWatch(args: string[]) {
  const child = spawn(process.execPath, ['--conditions=capstan-source', main, 'docker', 'watch', ...args], {
    env: { ...process.env, DOCKER_HOST: docker.dockerHost },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((resolve) =>
    child.on('exit', (code) => {
      children.delete(child);
      resolve(code);
    }),
  );
  return { child, exited, stdout: () => stdout, stderr: () => stderr };
}

async function waitFor(cond: () => boolean, timeoutMs = 30_000): Promise<void> {
  // The monotonic clock: a wall-clock step (VM time sync) must not end the wait early.
  const deadline = performance.now() + timeoutMs;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}
