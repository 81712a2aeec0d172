// A node of its own for now (`*.exclusive.test.ts`, run after the shared phase): it adds a registry to its node.
// Images of real programs running as pods on a real node: redis and nginx from Debian, an image pulled from
// the registry peer, and a Capstan program (Node 24 and its bundle). Root only; the node waits for the
// machine's node lock. The formats themselves (tar, docker load, the push protocol): images.test.ts.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fetchOnce } from '../runtime/index.ts';
import { eventually, type RegistryPeer, startRegistry } from '../testing/index.ts';
import {
  buildImage,
  busyboxImageSpec,
  type ControlPlane,
  capstanImageSpec,
  ensurePeers,
  nginxImageSpec,
  pushImage,
  redisImageSpec,
  startControlPlane,
} from './index.ts';

const isRoot = process.getuid?.() === 0;
// Outside CI a non-root developer skips these; in CI they run (and fail without root), never skip.
const skip = isRoot || process.env.CI ? false : 'a node needs root';
let cp: ControlPlane;
let registry: RegistryPeer;
const work = mkdtempSync(join(tmpdir(), 'capstan-node-images-'));

before(async () => {
  if (skip) return;
  // redis-server from the redis peer; nginx, busybox and gcc (pause) from the node peer.
  ensurePeers(['redis', 'node']);
  registry = await startRegistry();
  cp = await startControlPlane({ node: true });
  // After the node started, as with a node shared by many tests: read at each pull.
  cp.node!.useRegistry(registry.host);
});

after(async () => {
  await cp?.stop();
  await registry?.stop();
  rmSync(work, { recursive: true, force: true });
});

function kubectl(args: string[], input?: string): string {
  const r = spawnSync(cp.assets.kubectl!, ['--kubeconfig', cp.kubeconfigPath, ...args], {
    encoding: 'utf8',
    ...(input !== undefined ? { input } : {}),
  });
  if (r.status !== 0) throw new Error(`kubectl ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

/** Poll `check` until it returns a value; a generous deadline that only a hang misses. */
const until = <T>(what: string, check: () => T | undefined | Promise<T | undefined>) =>
  eventually(what, check, { timeoutMs: 120_000 });

/** Create a one-container pod in a namespace of its own, wait until it runs; returns its IP. */
async function runPod(
  ns: string,
  name: string,
  container: Record<string, unknown>,
): Promise<{ ip: string; describe: () => string }> {
  kubectl(['create', 'namespace', ns]);
  kubectl(
    ['-n', ns, 'apply', '-f', '-'],
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name },
      spec: { restartPolicy: 'Never', containers: [{ name, ...container }] },
    }),
  );
  const describe = () => kubectl(['-n', ns, 'describe', 'pod', name]);
  const ip = await until(`pod ${ns}/${name} Running`, () => {
    const phase = kubectl(['-n', ns, 'get', 'pod', name, '-o', 'jsonpath={.status.phase} {.status.podIP}']);
    const [status, podIp] = phase.trim().split(' ');
    if (status === 'Failed') throw new Error(`pod failed: ${describe()}`);
    return status === 'Running' && podIp ? podIp : undefined;
  }).catch((err: Error) => {
    throw new Error(`${err.message}\n${describe()}`);
  });
  return { ip, describe };
}

/** One GET on a fresh connection, closed after. */
async function httpGet(url: string): Promise<{ status: number; body: string }> {
  return fetchOnce(url);
}

/** Uids of the processes in pods (kubepods cgroups) whose command line starts with `program`'s path. */
function podProcessUids(program: string): number[] {
  const uids: number[] = [];
  for (const pid of readdirSync('/proc').filter((e) => /^\d+$/.test(e))) {
    try {
      const argv0 = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0]!;
      // redis rewrites its title: `/usr/bin/redis-server 0.0.0.0:6379` in one argument.
      if (
        !new RegExp(`/${program}( |$)`).test(argv0) ||
        !readFileSync(`/proc/${pid}/cgroup`, 'utf8').includes('kubepods')
      )
        continue;
      uids.push(Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]));
    } catch {}
  }
  return uids;
}

/** Send RESP commands on one connection; resolves with the raw replies once `replies` lines arrived. */
function redisCommands(host: string, commands: string[][], replies: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port: 6379 });
    let buf = '';
    socket.setTimeout(5_000, () =>
      socket.destroy(new Error(`redis ${host}: no reply (${JSON.stringify(buf)})`)),
    );
    socket.once('error', reject);
    socket.on('data', (chunk) => {
      buf += chunk.toString('utf8');
      if (buf.split('\r\n').length - 1 >= replies) {
        socket.end();
        resolve(buf);
      }
    });
    socket.once('connect', () => {
      for (const args of commands) {
        socket.write(
          `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`,
        );
      }
    });
  });
}

test('redis from Debian runs as a pod: PING, SET and GET through its pod IP', { skip }, async () => {
  const spec = redisImageSpec('capstan.local/redis:7');
  await cp.node!.loadImage(spec);
  const { ip } = await runPod('redis', 'redis', { image: spec.name, imagePullPolicy: 'Never' });
  const replies = await until('redis answers', () =>
    redisCommands(ip, [['PING'], ['SET', 'greeting', 'hello from a pod'], ['GET', 'greeting']], 4),
  );
  assert.equal(replies, '+PONG\r\n+OK\r\n$16\r\nhello from a pod\r\n');
  const info = await redisCommands(ip, [['INFO', 'server']], 2);
  assert.match(info, /redis_version:7\./);
  // As the image's user (redis, 999), not root: the process as this machine sees it.
  assert.deepEqual(podProcessUids('redis-server'), [999]);
  const logs = kubectl(['-n', 'redis', 'logs', 'redis']);
  assert.match(logs, /Ready to accept connections/);
});

test('nginx from Debian serves a page to this machine and to another pod (busybox wget)', {
  skip,
}, async () => {
  const spec = nginxImageSpec({
    name: 'capstan.local/nginx:1',
    site: { 'index.html': 'nginx in a capstan pod\n', 'data.json': '{"ok":true}\n' },
  });
  await cp.node!.loadImage(spec);
  const { ip } = await runPod('nginx', 'nginx', { image: spec.name, imagePullPolicy: 'Never' });
  const page = await until('nginx answers', async () => {
    const res = await httpGet(`http://${ip}:8080/`);
    return res.status === 200 ? res.body : undefined;
  });
  assert.equal(page, 'nginx in a capstan pod\n');
  assert.equal((await httpGet(`http://${ip}:8080/missing`)).status, 404);

  // Pod to pod, through the bridge; mime.types from nginx-common gives the JSON its type.
  kubectl([
    '-n',
    'nginx',
    'run',
    'client',
    `--image=${cp.node!.images.busybox}`,
    '--image-pull-policy=Never',
    '--restart=Never',
    '--',
    'sleep',
    '3600',
  ]);
  const fetched = await until('wget from a pod', () => {
    const out = kubectl([
      '-n',
      'nginx',
      'exec',
      'client',
      '--',
      'wget',
      '-q',
      '-S',
      '-O',
      '-',
      `http://${ip}:8080/data.json`,
    ]);
    return out.includes('"ok"') ? out : undefined;
  });
  assert.match(fetched, /\{"ok":true\}/);
  const headers = kubectl([
    '-n',
    'nginx',
    'exec',
    'client',
    '--',
    'sh',
    '-c',
    `wget -S -O /dev/null http://${ip}:8080/data.json 2>&1`,
  ]);
  assert.match(headers, /Content-Type: application\/json/i);
  // The access log goes to the container's stdout, so kubectl logs shows both requests' sources.
  const logs = kubectl(['-n', 'nginx', 'logs', 'nginx']);
  assert.match(logs, /"GET \/data\.json HTTP\/1\.1" 200/);
  assert.match(
    logs,
    /^10\.244\.0\.1 .*"GET \/ HTTP\/1\.1" 200/m,
    'a request from the host, at the bridge address',
  );
});

test('an image pushed to the registry peer runs as a pod pulled from it (imagePullPolicy: Always)', {
  skip,
}, async () => {
  const reference = `${registry.host}/capstan/hello:1`;
  const image = buildImage({
    name: reference,
    base: busyboxImageSpec('capstan.local/busybox:1'),
    files: [{ path: 'app/hello.sh', content: 'echo "pulled from the registry as $(id -u)"; sleep 3600\n' }],
    user: 'nobody',
    entrypoint: ['/bin/sh', '/app/hello.sh'],
  });
  const pushed = await pushImage(image);
  assert.equal(pushed.digest, image.manifestDigest);
  const ctr = (args: string[]) =>
    execFileSync('ctr', ['-a', cp.node!.containerdAddress, '-n', 'k8s.io', ...args], { encoding: 'utf8' });
  assert.doesNotMatch(ctr(['images', 'ls', '-q']), /capstan\/hello/, 'never loaded into the node');

  await runPod('pulled', 'hello', { image: reference, imagePullPolicy: 'Always' });
  const logs = await until('logs', () => {
    const out = kubectl(['-n', 'pulled', 'logs', 'hello']);
    return out.includes('pulled') ? out : undefined;
  });
  assert.equal(logs, 'pulled from the registry as 65534\n');
  // containerd has it now, under the digest we pushed.
  const status = kubectl([
    '-n',
    'pulled',
    'get',
    'pod',
    'hello',
    '-o',
    'jsonpath={.status.containerStatuses[0].imageID}',
  ]);
  assert.equal(status, `${registry.host}/capstan/hello@${image.manifestDigest}`);
  assert.match(ctr(['images', 'ls', '-q']), new RegExp(`${registry.host}/capstan/hello:1`));
});

test('a Capstan service as a pod from capstanImageSpec (Node 24 and the bundle), through the registry; /readyz on the pod IP', {
  skip,
}, async () => {
  const entry = join(work, 'capstan-pod.ts');
  writeFileSync(
    entry,
    `import { createService } from ${JSON.stringify(join(import.meta.dirname, '..', 'runtime', 'index.ts'))};
const service = createService({ name: 'capstan-pod', port: 8080, lifecycle: { drainDelayMs: 0 },
  routes: { '/hello': (_req, res) => res.end('hello from capstan as ' + process.getuid()) } });
await service.start();
service.handleSignals();
`,
  );
  const started = Date.now();
  const spec = await capstanImageSpec({ entry, conditions: ['capstan-source'], exposedPorts: [8080] });
  const image = buildImage({ ...spec, name: `${registry.host}/capstan/${spec.name.split('/')[1]}` });
  const built = Date.now() - started;
  const pushed = await pushImage(image);
  const size = (image.size / 1e6).toFixed(0);
  console.log(
    `capstan image: ${size} MB in ${image.layers.length} layers, built in ${built} ms, pushed in ${Date.now() - started - built} ms`,
  );
  assert.equal(pushed.uploaded + pushed.skipped, 3);

  const { ip } = await runPod('capstan', 'svc', { image: image.name, imagePullPolicy: 'IfNotPresent' });
  const readyz = await until('readyz', async () => {
    const res = await httpGet(`http://${ip}:8080/readyz`);
    return res.status === 200 ? (JSON.parse(res.body) as { status: string }) : undefined;
  });
  assert.equal(readyz.status, 'ok');
  assert.equal((await httpGet(`http://${ip}:8080/hello`)).body, 'hello from capstan as 65534');
});
