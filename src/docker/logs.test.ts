import assert from 'node:assert/strict';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DockerClient, followLogs, type LogLine, type LogNotice, tailLogs } from 'capstan/docker';
import { type DockerPeer, startDocker } from 'capstan/testing';

// One live-restore daemon for the file; tests run in order (node:test runs a file's tests sequentially).
let docker: DockerPeer;
let client: DockerClient;

before(async () => {
  docker = await startDocker({ liveRestore: true });
  client = new DockerClient({ host: docker.dockerHost });
});

after(async () => {
  await client?.close();
  await docker?.stop();
});

/** Prints 1..n, pausing every `every` lines so the run spans a few seconds. */
function counter(n: number, every = 20, pauseUs = 20_000): string[] {
  return [
    'sh',
    '-c',
    `i=0; while [ $i -lt ${n} ]; do i=$((i+1)); echo $i; [ $((i % ${every})) -eq 0 ] && usleep ${pauseUs}; done; true`,
  ];
}

async function run(
  cmd: string[],
  extra: { name?: string; labels?: Record<string, string>; tty?: boolean } = {},
) {
  const { Id } = await client.createContainer(
    {
      Image: docker.image,
      Cmd: cmd,
      Tty: extra.tty ?? false,
      Labels: extra.labels ?? {},
      HostConfig: { NetworkMode: 'none' },
    },
    extra.name ? { name: extra.name } : {},
  );
  await client.startContainer(Id);
  return Id;
}

/** Everything the daemon has for the container, as `stream text` lines (the ground truth). */
async function allLines(id: string): Promise<string[]> {
  const out: string[] = [];
  for await (const line of followLogs(client, id, { follow: false })) out.push(`${line.stream} ${line.text}`);
  return out;
}

function numbers(lines: LogLine[]): number[] {
  return lines.filter((l) => l.stream === 'stdout').map((l) => Number(l.text));
}

function assertExactlyOnce(seen: number[], n: number): void {
  const counts = new Map<number, number>();
  for (const v of seen) counts.set(v, (counts.get(v) ?? 0) + 1);
  const missing = [];
  const repeated = [];
  for (let i = 1; i <= n; i++) {
    const c = counts.get(i) ?? 0;
    if (c === 0) missing.push(i);
    if (c > 1) repeated.push(i);
  }
  assert.deepEqual(
    { missing: missing.slice(0, 20), repeated: repeated.slice(0, 20) },
    { missing: [], repeated: [] },
  );
  assert.equal(seen.length, n);
  assert.deepEqual(
    seen,
    [...seen].sort((a, b) => a - b),
    'lines arrive in order',
  );
}

describe('followLogs against a real dockerd', () => {
  test('survives a daemon restart with --live-restore: every line exactly once', async () => {
    const n = 3000;
    const id = await run(counter(n));
    const lines: LogLine[] = [];
    const notices: LogNotice[] = [];
    let restarted: Promise<void> | undefined;
    for await (const line of followLogs(client, id, { graceMs: 1_000, onNotice: (x) => notices.push(x) })) {
      lines.push(line);
      if (!restarted && Number(line.text) >= 300) restarted = docker.restart();
    }
    await restarted;
    assertExactlyOnce(numbers(lines), n);
    assert.ok(
      notices.some((x) => x.type === 'reconnecting'),
      'the follower saw the daemon go away',
    );
    assert.ok(notices.some((x) => x.type === 'reconnected'));
    assert.deepEqual(notices.at(-1), {
      type: 'ended',
      container: notices.at(-1)!.container,
      reason: 'exited',
      exitCode: 0,
    });
    assert.deepEqual(
      lines.map((l) => `${l.stream} ${l.text}`),
      await allLines(id),
    );
  });

  test('survives broken connections (a proxy socket cut mid-stream): every line exactly once', async () => {
    const proxyPath = join(docker.dir, 'proxy.sock');
    const live = new Set<Socket>();
    const proxy: Server = createServer((down) => {
      const up = connect(docker.socketPath);
      live.add(down);
      down.pipe(up).pipe(down);
      const close = () => {
        live.delete(down);
        down.destroy();
        up.destroy();
      };
      down.on('error', close).on('close', close);
      up.on('error', close).on('close', close);
    });
    await new Promise<void>((resolve) => proxy.listen(proxyPath, resolve));
    const viaProxy = new DockerClient({ host: `unix://${proxyPath}` });
    try {
      const n = 2000;
      const id = await run(counter(n));
      const lines: LogLine[] = [];
      const notices: LogNotice[] = [];
      let cuts = 0;
      for await (const line of followLogs(viaProxy, id, {
        graceMs: 1_000,
        onNotice: (x) => notices.push(x),
      })) {
        lines.push(line);
        const v = Number(line.text);
        if ((cuts === 0 && v >= 400) || (cuts === 1 && v >= 1200)) {
          cuts++;
          for (const s of live) s.destroy();
        }
      }
      assert.equal(cuts, 2);
      assertExactlyOnce(numbers(lines), n);
      assert.ok(notices.filter((x) => x.type === 'reconnecting').length >= 2);
      assert.deepEqual(
        lines.map((l) => `${l.stream} ${l.text}`),
        await allLines(id),
      );
    } finally {
      await viaProxy.close();
      await new Promise<void>((resolve) => proxy.close(() => resolve()));
    }
  });

  test('container restart mid-follow: continues with the new run, repeats nothing', async () => {
    const id = await run([
      'sh',
      '-c',
      'echo run; i=0; while [ $i -lt 400 ]; do i=$((i+1)); echo $i; [ $((i % 20)) -eq 0 ] && usleep 20000; done; true',
    ]);
    const lines: LogLine[] = [];
    const notices: LogNotice[] = [];
    let restarting: Promise<void> | undefined;
    for await (const line of followLogs(client, id, { graceMs: 3_000, onNotice: (x) => notices.push(x) })) {
      lines.push(line);
      if (!restarting && line.text === '100') restarting = client.restartContainer(id, { timeout: 0 });
    }
    await restarting;
    const texts = lines.map((l) => l.text);
    const runs = texts.flatMap((t, i) => (t === 'run' ? [i] : []));
    assert.equal(runs.length, 2, 'two runs seen');
    const first = texts.slice(1, runs[1]).map(Number);
    const second = texts.slice(runs[1]! + 1).map(Number);
    assert.ok(first.length >= 100 && first.length < 400, `first run cut short (${first.length})`);
    assert.deepEqual(
      first,
      Array.from({ length: first.length }, (_, i) => i + 1),
    );
    assert.deepEqual(
      second,
      Array.from({ length: 400 }, (_, i) => i + 1),
    );
    assert.ok(notices.some((x) => x.type === 'restarted'));
    assert.deepEqual(
      lines.map((l) => `${l.stream} ${l.text}`),
      await allLines(id),
    );
  });
});
