import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  DockerClient,
  DockerError,
  type DockerEvent,
  type EventNotice,
  parseImageRef,
  streamEvents,
  watchEvents,
} from 'capstan/docker';
import {
  busyboxTarball,
  createTestContainer,
  type DockerPeer,
  startDocker,
  startRegistry,
  startSocketProxy,
  type TestContainerOptions,
} from 'capstan/testing';

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

const isCode =
  (code: string, status?: number) =>
  (e: unknown): boolean =>
    e instanceof DockerError && e.code === code && (status === undefined || e.status === status);

function create(cmd: string[], opts: Omit<TestContainerOptions, 'start'> = {}): Promise<string> {
  return createTestContainer(client, cmd, opts);
}

describe('DockerClient against a real dockerd', () => {
  test('negotiates the API version with /_ping; a pinned version is used as is', async () => {
    const v = await client.apiVersion();
    assert.match(v, /^1\.\d+$/);
    const server = (await client.version()).ApiVersion;
    assert.equal(v, Number(server.split('.')[1]) < 45 ? server : '1.45');
    const pinned = new DockerClient({ host: docker.dockerHost, apiVersion: '1.40' });
    try {
      assert.equal(await pinned.apiVersion(), '1.40');
      assert.equal((await pinned.version()).ApiVersion, server);
    } finally {
      await pinned.close();
    }
    const tooNew = new DockerClient({ host: docker.dockerHost, apiVersion: '9.99' });
    try {
      await assert.rejects(tooNew.version(), isCode('CAP_ERR_DOCKER_BAD_REQUEST', 400));
    } finally {
      await tooNew.close();
    }
  });

  test('log: one entry per request, without the query string or the registry credentials', async () => {
    const entries: Array<{ method: string; url: string; status: number }> = [];
    const logged = new DockerClient({ host: docker.dockerHost, log: (e) => entries.push(e) });
    try {
      await logged.listContainers({ all: true, filters: { label: ['capstan.secret=q-s3cret'] } });
      // A pull of an image no registry has: the credentials ride in X-Registry-Auth.
      await logged
        .pullImage('127.0.0.1:1/nothing:here', { auth: { username: 'u', password: 'reg-s3cret' } })
        .catch(() => {});
    } finally {
      await logged.close();
    }
    assert.deepEqual(entries[0], {
      ...entries[0],
      method: 'GET',
      url: 'http://localhost/_ping',
      status: 200,
    });
    assert.ok(entries.some((e) => /^http:\/\/localhost\/v1\.\d+\/containers\/json\?…$/.test(e.url)));
    assert.ok(entries.some((e) => e.method === 'POST' && e.url.includes('/images/create')));
    assert.doesNotMatch(JSON.stringify(entries), /s3cret|reg-s3cret/);
  });

  test('an absent daemon is CAP_ERR_DOCKER_CONNECT', async () => {
    const nobody = new DockerClient({ host: `unix://${join(docker.dir, 'nobody.sock')}` });
    try {
      await assert.rejects(nobody.ping(), isCode('CAP_ERR_DOCKER_CONNECT'));
    } finally {
      await nobody.close();
    }
  });

  test('container lifecycle with typed errors: create, 409 on a taken name, list by label, exec, wait, remove, 404', async () => {
    const id = await create(['sh', '-c', 'echo started; sleep 30'], {
      name: 'life',
      labels: { suite: 'life' },
    });
    await assert.rejects(
      create(['true'], { name: 'life' }),
      (e: unknown) =>
        isCode('CAP_ERR_DOCKER_CONFLICT', 409)(e) && /already in use/.test((e as DockerError).daemonMessage),
    );
    await client.startContainer(id);
    const listed = await client.listContainers({ filters: { label: ['suite=life'] } });
    assert.deepEqual(
      listed.map((c) => [c.Id, c.Names, c.State]),
      [[id, ['/life'], 'running']],
    );
    assert.deepEqual(await client.listContainers({ filters: { label: ['suite=none'] } }), []);

    const r = await client.exec(id, ['sh', '-c', 'echo out; echo err >&2; echo more; exit 7']);
    assert.deepEqual([r.exitCode, r.stdout.toString(), r.stderr.toString()], [7, 'out\nmore\n', 'err\n']);
    const big = await client.exec(id, [
      'sh',
      '-c',
      'i=0; while [ $i -lt 5000 ]; do i=$((i+1)); echo line-$i; done',
    ]);
    const lines = big.stdout.toString().trim().split('\n');
    assert.equal(lines.length, 5000);
    assert.equal(lines[4999], 'line-5000');
    const tty = await client.exec(id, ['sh', '-c', 'echo on-tty; echo err-on-tty >&2'], { tty: true });
    assert.equal(tty.exitCode, 0);
    assert.equal(tty.stdout.toString().replace(/\r/g, ''), 'on-tty\nerr-on-tty\n');
    await assert.rejects(client.exec('no-such-container', ['true']), isCode('CAP_ERR_DOCKER_NOT_FOUND', 404));

    await assert.rejects(client.removeContainer(id), isCode('CAP_ERR_DOCKER_CONFLICT', 409));
    // Stop (SIGTERM, then SIGKILL after the timeout: `sleep` as PID 1 ignores TERM), stop again (the
    // daemon's 304 is not an error), start again.
    const before = (await client.inspectContainer(id)).State.StartedAt;
    await client.stopContainer(id, { timeout: 1 });
    assert.equal((await client.inspectContainer(id)).State.Running, false);
    await client.stopContainer(id, { timeout: 1 });
    await client.startContainer(id);
    const restarted = await client.inspectContainer(id);
    assert.equal(restarted.State.Running, true);
    assert.notEqual(restarted.State.StartedAt, before);
    const waited = client.waitContainer(id);
    await client.killContainer(id, { killSignal: 'KILL' });
    assert.equal((await waited).StatusCode, 137);
    await assert.rejects(client.exec(id, ['true']), isCode('CAP_ERR_DOCKER_CONFLICT', 409));
    const info = await client.inspectContainer(id);
    assert.equal(info.State.Running, false);
    assert.equal(info.Name, '/life');
    await client.removeContainer(id);
    await assert.rejects(client.inspectContainer(id), (e: unknown) => {
      return (
        isCode('CAP_ERR_DOCKER_NOT_FOUND', 404)(e) &&
        /No such container/.test((e as DockerError).daemonMessage)
      );
    });
    await assert.rejects(client.removeContainer(id), isCode('CAP_ERR_DOCKER_NOT_FOUND', 404));
    await assert.rejects(
      client.createContainer({ Image: 'no-such-image:1' }),
      isCode('CAP_ERR_DOCKER_NOT_FOUND', 404),
    );
  });

  test('logs: multiplexed frames kept apart, raw with a TTY, tail', async () => {
    // The pause keeps `c` last in the log file: the daemon stamps stdout and stderr in separate goroutines.
    const plain = await create(['sh', '-c', 'echo a; echo b >&2; usleep 500000; echo c']);
    const tty = await create(['sh', '-c', 'echo a; echo b >&2; echo c'], { tty: true });
    for (const id of [plain, tty]) {
      await client.startContainer(id);
      await client.waitContainer(id);
    }
    const frames = [];
    for await (const f of client.logs(plain)) frames.push([f.stream, f.data.toString()]);
    assert.deepEqual(
      frames
        .filter(([s]) => s === 'stdout')
        .map(([, t]) => t)
        .join(''),
      'a\nc\n',
    );
    assert.deepEqual(
      frames
        .filter(([s]) => s === 'stderr')
        .map(([, t]) => t)
        .join(''),
      'b\n',
    );
    let raw = '';
    for await (const f of client.logs(tty)) {
      assert.equal(f.stream, 'stdout');
      raw += f.data.toString();
    }
    assert.equal(raw.replace(/\r/g, ''), 'a\nb\nc\n');
    let tail = '';
    for await (const f of client.logs(plain, { tail: 1, stderr: false })) tail += f.data.toString();
    assert.equal(tail, 'c\n');
  });

  test('images: list, import (a bad tarball is the daemon error), pull errors inside a 200 stream', async () => {
    const images = await client.listImages();
    assert.ok(images.some((i) => i.RepoTags?.includes(docker.image)));
    await assert.rejects(
      client.importImage(Buffer.from('not a tar'.repeat(100)), 'bad:1'),
      (e: unknown) => e instanceof DockerError && e.status === 500 && /tar/.test(e.daemonMessage),
    );
    // A name that does not resolve fails before the stream starts: an HTTP error.
    await assert.rejects(
      client.pullImage('nonexistent.invalid/nothing:1'),
      (e: unknown) => e instanceof DockerError && e.status >= 400,
    );

    // A registry on 127.0.0.1 (insecure by default) that serves a manifest whose blobs do not exist: the
    // daemon answers 200, streams progress, then an {error, errorDetail} object.
    const manifest = JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
      config: {
        mediaType: 'application/vnd.docker.container.image.v1+json',
        size: 10,
        digest: `sha256:${'a'.repeat(64)}`,
      },
      layers: [
        {
          mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
          size: 10,
          digest: `sha256:${'b'.repeat(64)}`,
        },
      ],
    });
    const registry = createServer((req, res) => {
      if (req.url === '/v2/') {
        res
          .writeHead(200, { 'docker-distribution-api-version': 'registry/2.0', 'content-length': '2' })
          .end('{}');
      } else if (req.url?.includes('/manifests/')) {
        res.writeHead(200, {
          'content-type': 'application/vnd.docker.distribution.manifest.v2+json',
          'content-length': String(Buffer.byteLength(manifest)),
          'docker-content-digest': `sha256:${createHash('sha256').update(manifest).digest('hex')}`,
        });
        res.end(req.method === 'HEAD' ? undefined : manifest);
      } else {
        res
          .writeHead(404, { 'content-type': 'application/json' })
          .end('{"errors":[{"code":"BLOB_UNKNOWN"}]}');
      }
    });
    await new Promise<void>((resolve) => registry.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = registry.address() as { port: number };
      const progress: unknown[] = [];
      await assert.rejects(
        client.pullImage(`127.0.0.1:${port}/broken:1`, { onProgress: (p) => progress.push(p) }),
        (e: unknown) =>
          isCode('CAP_ERR_DOCKER_STREAM')(e) && /unknown blob|blob/i.test((e as DockerError).daemonMessage),
      );
      assert.ok(progress.length >= 1, 'progress arrived before the in-stream error');
    } finally {
      registry.close();
    }
  });

  test('images: tag and push to a real registry, pull back by tag and by digest, run what was pulled', async () => {
    await using registry = await startRegistry();
    const work = mkdtempSync(join(tmpdir(), 'capstan-push-'));
    try {
      // An image of its own (busybox plus 4 MiB of random bytes), so the pull downloads a layer the daemon
      // does not share with busybox:local, with many progress events on the way.
      const tarball = join(work, 'image.tar');
      copyFileSync(busyboxTarball(), tarball);
      writeFileSync(join(work, 'payload.bin'), randomBytes(4 << 20));
      execFileSync('tar', ['-C', work, '-rf', tarball, './payload.bin']);
      const sum = createHash('sha256')
        .update(readFileSync(join(work, 'payload.bin')))
        .digest('hex');
      const local = await client.importImage(readFileSync(tarball), 'capstan/pushme:1');
      assert.match(local, /^sha256:[0-9a-f]{64}$/);

      const ref = `${registry.host}/capstan/pushme:1`;
      await client.tagImage('capstan/pushme:1', ref);
      const pushProgress: string[] = [];
      const pushed = await client.pushImage(ref, { onProgress: (p) => pushProgress.push(p.status ?? '') });
      assert.match(pushed.digest ?? '', /^sha256:[0-9a-f]{64}$/);
      assert.ok(pushProgress.includes('Pushed'), `layers pushed: ${[...new Set(pushProgress)].join(', ')}`);
      // The registry really holds it: its own API serves the manifest under that digest.
      const manifest = await fetch(`${registry.url}/v2/capstan/pushme/manifests/1`, {
        headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json' },
      });
      assert.equal(manifest.status, 200);
      assert.equal(manifest.headers.get('docker-content-digest'), pushed.digest);
      await manifest.arrayBuffer();

      // Gone from the daemon, layers included; the pull has to download them.
      await client.removeImage(ref, { force: true });
      await client.removeImage('capstan/pushme:1', { force: true });
      await assert.rejects(client.inspectImage(ref), isCode('CAP_ERR_DOCKER_NOT_FOUND', 404));
      const statuses: string[] = [];
      let downloaded = 0;
      const pulled = await client.pullImage(ref, {
        onProgress: (p) => {
          statuses.push(p.status ?? '');
          if (p.status === 'Downloading') downloaded = Math.max(downloaded, p.progressDetail?.current ?? 0);
        },
      });
      assert.match(pulled.lastStatus ?? '', /Downloaded newer image/);
      assert.equal(pulled.events, statuses.length);
      assert.ok(statuses.includes('Pull complete'), [...new Set(statuses)].join(', '));
      assert.ok(downloaded > 0, 'download progress reported');
      const image = (await client.inspectImage(ref)) as { Id: string; RepoDigests?: string[] };
      assert.ok(image.RepoDigests?.includes(`${registry.host}/capstan/pushme@${pushed.digest}`));

      // By digest: the daemon resolves the same image (already there: up to date, no error).
      const byDigest = await client.pullImage(`${registry.host}/capstan/pushme@${pushed.digest}`);
      assert.match(byDigest.lastStatus ?? '', /up to date|Downloaded newer image/);

      // What was pulled runs, payload intact.
      const runner = await client.createContainer({ Image: ref, Cmd: ['sha256sum', '/payload.bin'] });
      await client.startContainer(runner.Id);
      await client.waitContainer(runner.Id);
      let out = '';
      for await (const f of client.logs(runner.Id)) out += f.data.toString();
      assert.equal(out.split(' ')[0], sum);
      await client.removeContainer(runner.Id, { force: true });

      // An unknown tag in a reachable registry: the daemon's 404 (manifest unknown), not a hang.
      await assert.rejects(
        client.pullImage(`${registry.host}/capstan/pushme:nope`),
        (e: unknown) => e instanceof DockerError && e.status === 404,
      );
      await client.removeImage(ref, { force: true });
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });

  test('parseImageRef splits references as the Docker CLI does (a registry port is not a tag)', () => {
    assert.deepEqual(parseImageRef('busybox'), { name: 'busybox' });
    assert.deepEqual(parseImageRef('busybox:1.36'), { name: 'busybox', tag: '1.36' });
    assert.deepEqual(parseImageRef('127.0.0.1:5000/team/app'), { name: '127.0.0.1:5000/team/app' });
    assert.deepEqual(parseImageRef('127.0.0.1:5000/team/app:v2'), {
      name: '127.0.0.1:5000/team/app',
      tag: 'v2',
    });
    const digest = `sha256:${'ab'.repeat(32)}`;
    assert.deepEqual(parseImageRef(`app@${digest}`), { name: 'app', digest });
    assert.deepEqual(parseImageRef(`host:5000/app:v2@${digest}`), {
      name: 'host:5000/app',
      tag: 'v2',
      digest,
    });
    for (const bad of ['', ':tag', 'app:', 'app@', 'app@sha256:zz']) {
      assert.throws(() => parseImageRef(bad), isCode('CAP_ERR_DOCKER_BAD_REQUEST'), bad);
    }
  });

  test('events: bounded by since/until, filtered by container', async () => {
    const since = new Date(Date.now() - 1000);
    const id = await create(['true'], { name: 'evented' });
    await client.startContainer(id);
    await client.waitContainer(id);
    await client.removeContainer(id);
    const until = new Date(Date.now() + 500);
    const seen: DockerEvent[] = [];
    for await (const e of client.events({ since, until, filters: { container: ['evented'] } })) seen.push(e);
    const actions = seen.map((e) => e.Action);
    for (const a of ['create', 'start', 'die', 'destroy'])
      assert.ok(actions.includes(a), `${a} in ${actions}`);
    assert.ok(seen.every((e) => e.Actor.ID === id && e.Actor.Attributes.name === 'evented'));
    // until before since: the daemon refuses with 400.
    await assert.rejects(
      (async () => {
        for await (const _ of client.events({ since: new Date(), until: '1h' })) {
        }
      })(),
      isCode('CAP_ERR_DOCKER_BAD_REQUEST', 400),
    );
  });

  test('streamEvents: a cut connection replays with since and drops what was already delivered', async () => {
    const proxy = await startSocketProxy(docker.socketPath, join(docker.dir, 'events-proxy.sock'));
    const viaProxy = new DockerClient({ host: proxy.dockerHost });
    const controller = new AbortController();
    const notices: EventNotice[] = [];
    const seen: string[] = [];
    try {
      const stream = streamEvents(viaProxy, {
        filters: { type: ['container'], label: ['suite=cut'] },
        signal: controller.signal,
        onNotice: (n) => notices.push(n),
      });
      const names = ['cut-1', 'cut-2', 'cut-3'];
      const started = (async () => {
        for (const name of names) {
          const id = await create(['true'], { name, labels: { suite: 'cut' } });
          await client.startContainer(id);
          await client.waitContainer(id);
        }
      })();
      let cuts = 0;
      for await (const e of stream) {
        seen.push(`${e.Actor.Attributes.name} ${e.Action}`);
        // Cut right after events the replay window (1 s) will certainly contain again.
        if (e.Action === 'start' && cuts < 2) {
          cuts++;
          proxy.cut();
        }
        if (seen.filter((x) => x.endsWith(' die')).length === names.length) break;
      }
      await started;
      assert.equal(cuts, 2);
      for (const name of names) {
        for (const action of ['create', 'start', 'die']) {
          assert.equal(
            seen.filter((x) => x === `${name} ${action}`).length,
            1,
            `${name} ${action} once in ${seen}`,
          );
        }
      }
      const back = notices.filter((n) => n.type === 'reconnected');
      assert.equal(back.length, 2, JSON.stringify(notices));
      assert.ok(back.every((n) => n.type === 'reconnected' && !n.daemonUnreachable));
    } finally {
      controller.abort();
      await viaProxy.close();
      await proxy.close();
    }
  });

  test('watchEvents: every die exactly once across a daemon restart (live restore), incl. one the daemon never reports', async () => {
    const died: string[] = [];
    const reconciled: string[] = [];
    const notices: EventNotice[] = [];
    const watcher = watchEvents(client, {
      on: ['die'],
      handler: (e) => {
        died.push(e.Actor.Attributes.name ?? '');
        if (e.Actor.Attributes['capstan.reconciled'])
          reconciled.push(`${e.Actor.Attributes.name} ${e.Actor.Attributes.exitCode}`);
      },
      onNotice: (n) => notices.push(n),
    });
    try {
      const start = async (name: string, cmd: string[]) => {
        const id = await create(cmd, { name });
        await client.startContainer(id);
        return id;
      };
      const a = await start('die-a', ['true']);
      await client.waitContainer(a);
      const b = await start('die-b', ['sleep', '300']);
      const bPid = (await client.inspectContainer(b)).State.Pid;
      await waitFor(() => died.includes('die-a'));
      // die-b exits while no daemon runs: dockerd restores it as exited and sends no event for it.
      await docker.restart({
        whileDown: async () => {
          process.kill(bPid, 'SIGKILL');
          await waitFor(() => !existsSync(`/proc/${bPid}`));
        },
      });
      const c = await start('die-c', ['true']);
      await client.waitContainer(c);
      await waitFor(() => died.includes('die-c') && died.includes('die-b'));
      assert.deepEqual([...died].sort(), ['die-a', 'die-b', 'die-c']);
      const back = notices.find((n) => n.type === 'reconnected');
      assert.ok(back && back.type === 'reconnected' && back.daemonUnreachable, JSON.stringify(notices));
      assert.equal(back.reconciled, 1);
      assert.deepEqual(reconciled, ['die-b 137']);
    } finally {
      await watcher.close();
    }
    assert.equal(watcher.handled, 3);
  });
});

async function waitFor(cond: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}
