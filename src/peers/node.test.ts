// A real node: pods run on a private containerd behind kubelet. These tests need "a node", not their own:
// they use the run's shared cluster (useSharedCluster), each test in a namespace of its own. Tests that
// need the machine's node to themselves (the host before and after, crash recovery) are in
// node.exclusive.test.ts. Root only.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs, {
  existsSync,
  mkdtempSync,
  type PathOrFileDescriptor,
  readdirSync,
  rmdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fetchOnce } from '../runtime/index.ts';
import { eventually, type SharedCluster, useSharedCluster } from '../testing/index.ts';
import { buildImageArchive, busyboxImageSpec, capstanImageSpec } from './index.ts';
import { holdNodeLockAt } from './node.ts';

/** Poll `check` until it returns a value; generous deadline that only a hang misses. */
const until = <T>(what: string, check: () => T | undefined | Promise<T | undefined>, timeoutMs = 120_000) =>
  eventually(what, check, { timeoutMs });

/** One GET on a fresh connection that is closed after: nothing pooled outlives the pod. */
async function httpGet(url: string): Promise<{ status: number; body: string }> {
  return fetchOnce(url);
}

function podsRunning(cluster: SharedCluster, selector: string): string[] {
  const out = cluster.kubectl([
    'get',
    'pods',
    '-l',
    selector,
    '-o',
    'jsonpath={range .items[*]}{.metadata.name} {.status.phase} {.metadata.deletionTimestamp}{"\\n"}{end}',
  ]);
  return out
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split(' '))
    .filter(([, phase, deleting]) => phase === 'Running' && !deleting)
    .map(([name]) => name!);
}

// Outside CI a non-root developer skips these; in CI they run (and fail without root), never skip.
const skip = process.getuid?.() === 0 || process.env.CI ? false : 'a node needs root';

test('the image builder writes a docker archive that containerd imports', { skip }, async (t) => {
  const { node } = await useSharedCluster(t, { node: true });
  const spec = { ...busyboxImageSpec('capstan.local/busybox-copy:1'), cmd: ['echo', 'hi'] };
  const { archive, imageId } = buildImageArchive(spec);
  // Same spec, same bytes: the image id is stable.
  assert.equal(buildImageArchive(spec).imageId, imageId);
  const work = mkdtempSync(join(tmpdir(), 'capstan-import-'));
  try {
    const file = join(work, 'image.tar');
    writeFileSync(file, archive);
    execFileSync('ctr', ['-a', node!.containerdAddress, '-n', 'k8s.io', 'images', 'import', file]);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  const list = execFileSync('ctr', ['-a', node!.containerdAddress, '-n', 'k8s.io', 'images', 'ls', '-q'], {
    encoding: 'utf8',
  });
  assert.match(list, /capstan\.local\/busybox-copy:1/);
  assert.match(list, /capstan\.local\/pause:1/);
});

test('a pod runs and kubectl logs shows its output; exec works', { skip }, async (t) => {
  const cluster = await useSharedCluster(t, { node: true });
  cluster.kubectl([
    'run',
    'hello',
    `--image=${cluster.node!.images.busybox}`,
    '--image-pull-policy=Never',
    '--restart=Never',
    '--',
    'sh',
    '-c',
    'echo hello from a pod; sleep 3600',
  ]);
  await until('pod Running', () => (podsRunning(cluster, 'run=hello').length === 1 ? true : undefined));
  const logs = await until('logs', () => {
    const out = cluster.kubectl(['logs', 'hello']);
    return out.includes('hello from a pod') ? out : undefined;
  });
  assert.match(logs, /hello from a pod/);
  assert.equal(cluster.kubectl(['exec', 'hello', '--', 'cat', '/etc/hostname']).trim(), 'hello');
});

test('a Deployment scaled to 3 has 3 running pods, and a deleted pod is replaced', { skip }, async (t) => {
  const cluster = await useSharedCluster(t, { node: true });
  cluster.kubectl([
    'create',
    'deployment',
    'web',
    `--image=${cluster.node!.images.busybox}`,
    '--',
    'sleep',
    '3600',
  ]);
  cluster.kubectl([
    'patch',
    'deployment',
    'web',
    '--type=json',
    '-p',
    '[{"op":"add","path":"/spec/template/spec/containers/0/imagePullPolicy","value":"Never"}]',
  ]);
  cluster.kubectl(['scale', 'deployment', 'web', '--replicas=3']);
  const three = await until('3 running', () => {
    const pods = podsRunning(cluster, 'app=web');
    return pods.length === 3 ? pods : undefined;
  });
  const victim = three[0]!;
  cluster.kubectl(['delete', 'pod', victim, '--wait=false']);
  const replaced = await until('replacement', () => {
    const pods = podsRunning(cluster, 'app=web');
    return pods.length === 3 && !pods.includes(victim) ? pods : undefined;
  });
  assert.equal(replaced.length, 3);
});

test('one pod reaches another over HTTP (busybox httpd), on the node bridge', { skip }, async (t) => {
  const cluster = await useSharedCluster(t, { node: true });
  const busybox = cluster.node!.images.busybox;
  cluster.kubectl(['apply', '-f', '-'], {
    input: JSON.stringify({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'server', labels: { app: 'server' } },
      spec: {
        containers: [
          {
            name: 'httpd',
            image: busybox,
            imagePullPolicy: 'Never',
            command: [
              'sh',
              '-c',
              'mkdir -p /www && echo served-by-pod > /www/index.html && httpd -f -p 8080 -h /www',
            ],
          },
        ],
      },
    }),
  });
  cluster.kubectl([
    'run',
    'client',
    `--image=${busybox}`,
    '--image-pull-policy=Never',
    '--restart=Never',
    '--',
    'sleep',
    '3600',
  ]);
  await until('both Running', () =>
    podsRunning(cluster, 'app=server').length === 1 && podsRunning(cluster, 'run=client').length === 1
      ? true
      : undefined,
  );
  const ip = cluster.kubectl(['get', 'pod', 'server', '-o', 'jsonpath={.status.podIP}']).trim();
  assert.match(ip, /^10\.244\.0\.\d+$/);
  const body = await until('HTTP answer', () => {
    const out = cluster.kubectl(['exec', 'client', '--', 'wget', '-q', '-O', '-', `http://${ip}:8080/`]);
    return out.includes('served-by-pod') ? out : undefined;
  });
  assert.match(body, /served-by-pod/);
  // No route out: the pod's routing table has the pod subnet only.
  const routes = cluster.kubectl(['exec', 'client', '--', 'ip', 'route']);
  assert.doesNotMatch(routes, /default/);
});

test('a Capstan service runs as a pod (capstanImageSpec: Node 24 and the bundled service); /readyz answers on the pod IP', {
  skip,
}, async (t) => {
  const cluster = await useSharedCluster(t, { node: true });
  // The service: capstan/runtime's createService; capstanImageSpec bundles it (esbuild) on the Node base layer.
  const work = mkdtempSync(join(tmpdir(), 'capstan-pod-app-'));
  try {
    const entry = join(work, 'entry.ts');
    writeFileSync(
      entry,
      `import { createService } from ${JSON.stringify(join(import.meta.dirname, '..', 'runtime', 'index.ts'))};
const service = createService({ name: 'capstan-pod', port: 8080, lifecycle: { drainDelayMs: 0 },
  routes: { '/hello': (_req, res) => res.end('hello from capstan') } });
await service.start();
service.handleSignals();
`,
    );
    const spec = await capstanImageSpec({ entry, conditions: ['capstan-source'] });
    cluster.loadImage({ ...spec, name: 'capstan.local/capstan-service:1' });
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  cluster.kubectl([
    'run',
    'svc',
    '--image=capstan.local/capstan-service:1',
    '--image-pull-policy=Never',
    '--restart=Never',
  ]);
  await until('service pod Running', () => (podsRunning(cluster, 'run=svc').length === 1 ? true : undefined));
  const ip = cluster.kubectl(['get', 'pod', 'svc', '-o', 'jsonpath={.status.podIP}']).trim();
  const readyz = await until('readyz', async () => {
    const res = await httpGet(`http://${ip}:8080/readyz`);
    return res.status === 200 ? (JSON.parse(res.body) as { status: string }) : undefined;
  });
  assert.equal(readyz.status, 'ok');
  assert.equal((await httpGet(`http://${ip}:8080/hello`)).body, 'hello from capstan');
});

test('the lock folder goes with the last release; users taking and releasing at once never trip over it', async () => {
  // A lock file of our own (the machine's is /run/capstan/node.lock): same code, no root needed.
  const base = mkdtempSync(join(tmpdir(), 'capstan-lock-'));
  const lock = join(base, 'run', 'node.lock');
  try {
    const hold = await holdNodeLockAt(lock);
    assert.equal(readdirSync(dirname(lock)).length, 1);
    hold.release();
    assert.equal(existsSync(dirname(lock)), false, 'an empty lock folder was left behind');
    // Another user's release removes the folder right between our mkdir and our write: forced here by
    // removing it just before the first write of a lock file; the taker must make it again, not fail.
    const realWrite = fs.writeFileSync;
    let writes = 0;
    fs.writeFileSync = ((file: PathOrFileDescriptor, ...rest: [never, never]) => {
      if (typeof file === 'string' && file.startsWith(`${lock}.`) && writes++ === 0) rmdirSync(dirname(lock));
      return realWrite(file, ...rest);
    }) as typeof fs.writeFileSync;
    syncBuiltinESMExports();
    try {
      (await holdNodeLockAt(lock)).release();
    } finally {
      fs.writeFileSync = realWrite;
      syncBuiltinESMExports();
    }
    assert.equal(writes, 2, 'the write after the folder vanished was not retried');
    assert.equal(existsSync(dirname(lock)), false, 'an empty lock folder was left behind');
    // And for real: three processes take and release it 10 times each, at once.
    const script = `
      import { holdNodeLockAt } from ${JSON.stringify(join(import.meta.dirname, 'node.ts'))};
      for (let i = 0; i < 10; i++) (await holdNodeLockAt(${JSON.stringify(lock)}, { timeoutMs: 60_000 })).release();
    `;
    const codes = await Promise.all(
      [1, 2, 3].map(
        () =>
          new Promise<{ code: number | null; stderr: string }>((resolve) => {
            const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
              stdio: ['ignore', 'ignore', 'pipe'],
            });
            let stderr = '';
            child.stderr.on('data', (d: Buffer) => {
              stderr += d.toString();
            });
            child.on('close', (code) => resolve({ code, stderr }));
          }),
      ),
    );
    assert.deepEqual(
      codes,
      [1, 2, 3].map(() => ({ code: 0, stderr: '' })),
    );
    assert.equal(existsSync(dirname(lock)), false, 'an empty lock folder was left behind');
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
});
