import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DockerClient } from 'capstan/docker';
import { type DockerPeer, startDocker } from 'capstan/testing';

let docker: DockerPeer;
let client: DockerClient;
const children = new Set<ChildProcess>();

before(async () => {
  docker = await startDocker();
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
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--conditions=capstan-source', main, ...args], {
      env: { ...process.env, DOCKER_HOST: docker.dockerHost, NO_COLOR: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.add(child);
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

async function run(cmd: string[], name: string, labels: Record<string, string> = {}) {
  const { Id } = await client.createContainer(
    { Image: docker.image, Cmd: cmd, Labels: labels, HostConfig: { NetworkMode: 'none' } },
    { name },
  );
  await client.startContainer(Id);
  return Id;
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
    const child = spawn(
      process.execPath,
      [
        '--conditions=capstan-source',
        main,
        'docker',
        'watch',
        '--on',
        'die',
        '--exec',
        `echo "$CAPSTAN_EVENT_ACTION $CAPSTAN_CONTAINER_NAME $CAPSTAN_EXIT_CODE \${#CAPSTAN_CONTAINER_ID}" >> ${out}`,
      ],
      { env: { ...process.env, DOCKER_HOST: docker.dockerHost }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    children.add(child);
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      await waitFor(() => stderr.includes('watching'));
      const x = await run(['sh', '-c', 'exit 3'], 'hook-x');
      await run(['sh', '-c', 'echo alive'], 'hook-y');
      await client.waitContainer(x);
      await run(['sleep', '60'], 'hook-z');
      await waitFor(() => existsSync(out) && readFileSync(out, 'utf8').split('\n').length >= 3);
      const lines = readFileSync(out, 'utf8').trim().split('\n').sort();
      assert.deepEqual(lines, ['die hook-x 3 64', 'die hook-y 0 64']);
    } finally {
      child.kill('SIGTERM');
    }
    assert.equal(await exited, 0);
    children.delete(child);
  });
});

async function waitFor(cond: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}
