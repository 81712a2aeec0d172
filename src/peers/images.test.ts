// The image builder without a node: the archive and manifest formats checked by other programs (GNU tar, a
// real dockerd's `docker load` and pull, a real registry), the content store, and the Capstan image's bundle
// cache. The images running as pods on a real node: node-images.exclusive.test.ts.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DockerClient } from '../docker/index.ts';
import { createHttpTransport, httpRequest } from '../runtime/index.ts';
import { type DockerPeer, type RegistryPeer, startDocker, startRegistry } from '../testing/index.ts';
import {
  buildImage,
  buildImageArchive,
  busyboxImageSpec,
  capstanImageSpec,
  ensurePeers,
  ImageMediaType,
  type ImageSpec,
  parseImageReference,
  pushImage,
  writeDockerArchive,
} from './index.ts';

const work = mkdtempSync(join(tmpdir(), 'capstan-images-test-'));
const cacheDir = join(work, 'cache');
// busybox-static (the base of the layered images) comes with the docker peer this file needs anyway.
before(() => ensurePeers(['docker']));
after(() => rmSync(work, { recursive: true, force: true }));

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/** An image on busybox with a layer of its own: a script, an env, a user, a port. */
function layeredSpec(name: string): ImageSpec {
  return {
    name,
    base: busyboxImageSpec('capstan.local/busybox:1'),
    files: [{ path: 'app/hello.sh', content: 'echo "hello $WHO as $(id -u)"\n' }],
    env: ['WHO=layers'],
    user: 'nobody',
    entrypoint: ['/bin/sh', '/app/hello.sh'],
    exposedPorts: [8080, '53/udp'],
    labels: { 'org.opencontainers.image.title': 'hello' },
  };
}

test('layers are ustar archives GNU tar reads: long paths, owners, modes, links, parents first', () => {
  const long = `opt/${'deep/'.repeat(25)}file.txt`; // 134 bytes: name and prefix fields
  assert.ok(long.length > 100);
  const { archive } = buildImageArchive({
    name: 'capstan.local/format:1',
    files: [
      { path: long, content: 'x' },
      { path: '/usr/bin/tool', content: '#!/bin/sh\n', mode: 0o750, uid: 33, gid: 34 },
    ],
    dirs: [{ path: 'var/log/app', uid: 33, gid: 33, mode: 0o700 }],
    symlinks: { 'bin/tool': '/usr/bin/tool' },
  });
  const file = join(work, 'format.tar');
  writeFileSync(file, archive);
  const manifest = JSON.parse(execFileSync('tar', ['-xOf', file, 'manifest.json'], { encoding: 'utf8' }));
  assert.equal(manifest.length, 1);
  assert.deepEqual(manifest[0].RepoTags, ['capstan.local/format:1']);
  const layer = execFileSync('tar', ['-xOf', file, manifest[0].Layers[0]]);
  writeFileSync(join(work, 'layer.tar'), layer);
  const listing = execFileSync('tar', ['--numeric-owner', '-tvf', join(work, 'layer.tar')], {
    encoding: 'utf8',
  });
  const lines = listing.trim().split('\n');
  const line = (path: string) => lines.find((l) => l.endsWith(` ${path}`) || l.includes(` ${path} -> `));
  assert.ok(line(long), listing);
  assert.match(line('usr/bin/tool')!, /^-rwxr-x--- 33\/34 /);
  assert.match(line('var/log/app/')!, /^drwx------ 33\/33 /);
  assert.match(line('tmp/')!, /^drwxrwxrwt 0\/0 /);
  assert.match(line('bin/tool')!, /^lrwxrwxrwx .* bin\/tool -> \/usr\/bin\/tool$/);
  // Every parent comes before what it holds (a tar extracted by a runtime creates nothing implicitly).
  const names = lines.map((l) => l.split(/\s+/)[5]!);
  for (const [i, name] of names.entries()) {
    const parent = name.replace(/\/?[^/]+\/?$/, '');
    if (parent) assert.ok(names.slice(0, i).includes(`${parent}/`), `${parent}/ before ${name}`);
  }
});

test('buildImage: blobs stored by digest, an OCI manifest, the same bytes as the in-memory archive', () => {
  const spec = layeredSpec('capstan.local/hello:1');
  const image = buildImage(spec, { cacheDir });
  // Two layers: busybox, then ours; the config says what the spec says, base settings merged.
  assert.equal(image.layers.length, 2);
  for (const blob of [...image.layers, image.config]) {
    const bytes = readFileSync(blob.path);
    assert.equal(`sha256:${sha256(bytes)}`, blob.digest);
    assert.equal(bytes.length, blob.size);
  }
  const manifest = JSON.parse(image.manifest.toString());
  assert.equal(manifest.mediaType, ImageMediaType.manifest);
  assert.equal(manifest.config.digest, image.id);
  assert.deepEqual(
    manifest.layers.map((l: { digest: string }) => l.digest),
    image.layers.map((l) => l.digest),
  );
  assert.equal(image.manifestDigest, `sha256:${sha256(image.manifest)}`);
  const config = JSON.parse(readFileSync(image.config.path, 'utf8'));
  assert.deepEqual(config.config.Env, [
    'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    'WHO=layers',
  ]);
  assert.deepEqual(config.config.Entrypoint, ['/bin/sh', '/app/hello.sh']);
  assert.equal(config.config.Cmd, undefined, "an image's entrypoint resets its base's cmd");
  assert.equal(config.config.User, 'nobody');
  assert.deepEqual(Object.keys(config.config.ExposedPorts), ['8080/tcp', '53/udp']);
  assert.equal(config.rootfs.diff_ids.length, 2);
  assert.equal(config.history.length, 2);

  // Reproducible: the same spec is the same image; the base's layer is the same blob in every image on it.
  assert.equal(buildImage(spec, { cacheDir }).id, image.id);
  const base = buildImage(busyboxImageSpec('capstan.local/busybox:1'), { cacheDir });
  assert.equal(base.layers[0]!.digest, image.layers[0]!.digest);
  // A host file changed in place is a new layer, though the layer cache knows the spec.
  const script = join(work, 'script.sh');
  writeFileSync(script, 'echo one\n');
  const fromHost = { ...spec, files: [{ path: 'app/hello.sh', from: script }] };
  const one = buildImage(fromHost, { cacheDir });
  assert.equal(buildImage(fromHost, { cacheDir }).id, one.id);
  writeFileSync(script, 'echo two\n');
  const two = buildImage(fromHost, { cacheDir });
  assert.notEqual(two.id, one.id);
  assert.equal(two.layers[0]!.digest, one.layers[0]!.digest);
  assert.match(readFileSync(two.layers[1]!.path, 'latin1'), /echo two/);
  // The streamed archive is byte for byte the in-memory one.
  const file = join(work, 'hello.tar');
  writeDockerArchive(image, file);
  const { archive, imageId } = buildImageArchive(spec);
  assert.equal(imageId, image.id);
  assert.ok(readFileSync(file).equals(archive));
});

test('parseImageReference: registry, repository, tag or digest', () => {
  assert.deepEqual(parseImageReference('127.0.0.1:5000/capstan/redis:7'), {
    registry: '127.0.0.1:5000',
    repository: 'capstan/redis',
    tag: '7',
  });
  assert.deepEqual(parseImageReference('localhost/app'), {
    registry: 'localhost',
    repository: 'app',
    tag: 'latest',
  });
  assert.equal(parseImageReference('r.example:443/a/b@sha256:abc').tag, 'sha256:abc');
  assert.throws(() => parseImageReference('library/redis:7'), { code: 'CAP_ERR_PEER_CONFIG' });
});

test('capstanImageSpec: one bundle per content of its inputs, cached; the bundle runs on Node', async () => {
  const app = join(work, 'app');
  execFileSync('mkdir', ['-p', app]);
  writeFileSync(join(app, 'message.ts'), "export const message: string = 'first';\n");
  writeFileSync(
    join(app, 'my-operator.ts'),
    "import { message } from './message.ts';\nconsole.log('operator says ' + message);\n",
  );
  const entry = join(app, 'my-operator.ts');
  const first = await capstanImageSpec({ entry, cacheDir });
  assert.match(first.name, /^capstan\.local\/my-operator:[0-9a-f]{12}$/);
  assert.equal(first.user, 'nobody');
  assert.deepEqual(first.entrypoint, ['/usr/local/bin/node', '/app/main.mjs']);
  assert.ok(first.base?.files.some((f) => f.path === '/usr/local/bin/node'));
  const bundle = first.files[0]!.from!;
  const mtime = statSync(bundle).mtimeMs;
  const out = execFileSync(process.execPath, [bundle], { encoding: 'utf8' });
  assert.equal(out, 'operator says first\n');

  // Unchanged inputs: the same bundle file, not rewritten.
  const again = await capstanImageSpec({ entry, cacheDir });
  assert.equal(again.name, first.name);
  assert.equal(statSync(again.files[0]!.from!).mtimeMs, mtime);
  // A changed import (not the entry itself) is a new bundle and a new tag.
  writeFileSync(join(app, 'message.ts'), "export const message: string = 'second';\n");
  const changed = await capstanImageSpec({ entry, cacheDir });
  assert.notEqual(changed.name, first.name);
  assert.equal(
    execFileSync(process.execPath, [changed.files[0]!.from!], { encoding: 'utf8' }),
    'operator says second\n',
  );
  // A program that does not compile is the bundler's error, with where.
  writeFileSync(join(app, 'broken.ts'), 'import { nothing } from "./missing.ts";\nconsole.log(nothing);\n');
  await assert.rejects(
    capstanImageSpec({ entry: join(app, 'broken.ts'), cacheDir }),
    (err: Error & { code?: string }) => {
      assert.equal(err.code, 'CAP_ERR_PEER_IMAGE');
      assert.match(err.message, /missing\.ts/);
      return true;
    },
  );
});

describe('with a real dockerd and a real registry', () => {
  let docker: DockerPeer;
  let client: DockerClient;
  let registry: RegistryPeer;

  before(async () => {
    [docker, registry] = await Promise.all([startDocker(), startRegistry()]);
    client = new DockerClient({ host: docker.dockerHost });
  });

  after(async () => {
    await client?.close();
    await Promise.all([docker?.stop(), registry?.stop()]);
  });

  /** `docker load` through the Engine API (`POST /images/load`): what it says it loaded. */
  async function dockerLoad(archive: Buffer): Promise<string> {
    const http = createHttpTransport({
      origin: 'http://localhost',
      socketPath: docker.socketPath,
      retry: false,
    });
    try {
      const res = await httpRequest(http, {
        method: 'POST',
        path: '/images/load',
        headers: { 'content-type': 'application/x-tar' },
        body: archive,
      });
      const text = await res.body.text();
      assert.equal(res.status, 200, text);
      assert.doesNotMatch(text, /"error"/);
      return text;
    } finally {
      await http.destroy();
    }
  }

  /** Run `image` to completion in dockerd (no network) and return its output. */
  async function run(image: string): Promise<string> {
    const { Id } = await client.createContainer({ Image: image, HostConfig: { NetworkMode: 'none' } });
    try {
      await client.startContainer(Id);
      await client.waitContainer(Id);
      let out = '';
      for await (const frame of client.logs(Id)) out += frame.data.toString();
      return out;
    } finally {
      await client.removeContainer(Id, { force: true });
    }
  }

  test('docker load reads the archive: the same image id, config and layers; it runs as its user', async () => {
    const spec = layeredSpec('capstan.local/hello:1');
    const { archive, imageId } = buildImageArchive(spec);
    assert.match(await dockerLoad(archive), /Loaded image: capstan\.local\/hello:1/);
    const inspected = (await client.inspectImage('capstan.local/hello:1')) as unknown as {
      Id: string;
      Config: {
        Env: string[];
        User: string;
        ExposedPorts: Record<string, object>;
        Labels: Record<string, string>;
      };
      RootFS: { Layers: string[] };
    };
    assert.equal(inspected.Id, imageId);
    assert.equal(inspected.Config.User, 'nobody');
    assert.ok(inspected.Config.Env.includes('WHO=layers'));
    assert.deepEqual(Object.keys(inspected.Config.ExposedPorts).sort(), ['53/udp', '8080/tcp']);
    assert.equal(inspected.Config.Labels['org.opencontainers.image.title'], 'hello');
    assert.equal(inspected.RootFS.Layers.length, 2);
    assert.equal(await run('capstan.local/hello:1'), 'hello layers as 65534\n');
  });

  test('pushImage: blobs and an OCI manifest into the registry; dockerd pulls it back and runs it', async () => {
    const image = buildImage(layeredSpec('capstan.local/hello:1'), { cacheDir });
    const reference = `${registry.host}/capstan/hello:1`;
    const pushed = await pushImage(image, { reference });
    assert.deepEqual(pushed, { reference, digest: image.manifestDigest, uploaded: 3, skipped: 0 });
    // The registry's own API serves our manifest under the tag, by its digest.
    const res = await fetch(`${registry.url}/v2/capstan/hello/manifests/1`, {
      headers: { accept: ImageMediaType.manifest },
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('docker-content-digest'), image.manifestDigest);
    assert.ok(Buffer.from(await res.arrayBuffer()).equals(image.manifest));
    // A second push (another tag) finds every blob there: only the manifest travels.
    const again = await pushImage(image, { reference: `${registry.host}/capstan/hello:again` });
    assert.equal(again.uploaded, 0);
    assert.equal(again.skipped, 3);

    // Another client of the protocol: dockerd pulls what we pushed (layers, config) and runs it.
    await client.pullImage(reference);
    const inspected = (await client.inspectImage(reference)) as unknown as {
      Id: string;
      RepoDigests: string[];
    };
    assert.equal(inspected.Id, image.id);
    assert.ok(inspected.RepoDigests.includes(`${registry.host}/capstan/hello@${image.manifestDigest}`));
    assert.equal(await run(reference), 'hello layers as 65534\n');
  });

  test('pushImage: a tag the registry refuses is a registry error naming it', async () => {
    const image = buildImage(busyboxImageSpec('capstan.local/busybox:1'), { cacheDir });
    // Tags are at most 128 characters.
    const tag = 'x'.repeat(200);
    await assert.rejects(
      pushImage(image, { reference: `${registry.host}/capstan/busybox:${tag}` }),
      (err: Error & { code?: string }) => {
        assert.equal(err.code, 'CAP_ERR_PEER_REQUEST');
        assert.match(err.message, /manifest capstan\/busybox:x+: registry answered 4\d\d/);
        return true;
      },
    );
  });
});
