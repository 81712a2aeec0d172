// A real node: pods run on a private containerd behind kubelet. One node for the whole file (a node per
// machine at a time, behind the node lock); every test uses its own namespace. Root only.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createHttpTransport, httpRequest, processesWithCommandLine } from '../runtime/index.ts';
import {
  buildImageArchive,
  busyboxImageSpec,
  type ControlPlane,
  capstanImageSpec,
  holdNodeLock,
  nodeFirewallRules,
  nodeHostState,
  nodeLockPath,
  nodeMounts,
  startControlPlane,
} from './index.ts';

const isRoot = process.getuid?.() === 0;
let cp: ControlPlane;
let stopped = false;

function interfaces(): string[] {
  // veths come and go with other tests' containers (dockerd); the node's are gone with its bridge.
  return readdirSync('/sys/class/net')
    .filter((n) => !n.startsWith('veth'))
    .sort();
}

function hostSnapshot() {
  // Shim sockets in /run/containerd/s come and go with dockerd's containers (other test files): not compared.
  const { shimSockets: _, ...state } = nodeHostState();
  return { ...state, mounts: nodeMounts(), interfaces: interfaces(), firewall: nodeFirewallRules() };
}

let beforeState: ReturnType<typeof hostSnapshot> | undefined;
let hold: { release(): void } | undefined;

before(async () => {
  if (!isRoot) return;
  // Hold the node lock for the whole file: no other node (another test file, `capstan dev cluster up
  // --node`) may change the host between the snapshots compared here. Our nodes, and our children's, run
  // inside the hold.
  hold = await holdNodeLock();
  beforeState = hostSnapshot();
  cp = await startControlPlane({ node: true });
});

after(async () => {
  if (!stopped) await cp?.stop();
  hold?.release();
});

function kubectl(args: string[], input?: string): string {
  const r = spawnSync(cp.assets.kubectl!, ['--kubeconfig', cp.kubeconfigPath, ...args], {
    encoding: 'utf8',
    ...(input !== undefined ? { input } : {}),
  });
  if (r.status !== 0) throw new Error(`kubectl ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

/** Poll `check` until it returns a value; generous deadline that only a hang misses. */
async function until<T>(
  what: string,
  check: () => T | undefined | Promise<T | undefined>,
  timeoutMs = 120_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`${what}: not reached in time (${String(last ?? '')})`);
    await sleep(250);
  }
}

/** One GET on a fresh connection that is closed after: nothing pooled outlives the pod. */
async function httpGet(url: string): Promise<{ status: number; body: string }> {
  const target = new URL(url);
  const http = createHttpTransport({ origin: target.origin, retry: false });
  try {
    const res = await httpRequest(http, { path: target.pathname, timeouts: { deadlineMs: 5_000 } });
    return { status: res.status, body: await res.body.text() };
  } finally {
    await http.destroy();
  }
}

/**
 * A namespace whose `default` ServiceAccount exists: with the ServiceAccount admission plugin on (a node),
 * a pod created before the controller manager made it is refused, as in any cluster.
 */
async function namespace(name: string): Promise<string> {
  kubectl(['create', 'namespace', name]);
  await until('default ServiceAccount', () =>
    kubectl(['-n', name, 'get', 'sa', 'default']) ? true : undefined,
  );
  return name;
}

function podsRunning(ns: string, selector: string): string[] | undefined {
  const out = kubectl([
    '-n',
    ns,
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
const skip = isRoot || process.env.CI ? false : 'a node needs root';

test('the image builder writes a docker archive that containerd imports', { skip }, () => {
  const spec = { ...busyboxImageSpec('capstan.local/busybox-copy:1'), cmd: ['echo', 'hi'] };
  const { archive, imageId } = buildImageArchive(spec);
  // Same spec, same bytes: the image id is stable.
  assert.equal(buildImageArchive(spec).imageId, imageId);
  const file = `${cp.node!.containerdAddress}.import.tar`;
  writeFileSync(file, archive);
  execFileSync('ctr', ['-a', cp.node!.containerdAddress, '-n', 'k8s.io', 'images', 'import', file]);
  const list = execFileSync('ctr', ['-a', cp.node!.containerdAddress, '-n', 'k8s.io', 'images', 'ls', '-q'], {
    encoding: 'utf8',
  });
  assert.match(list, /capstan\.local\/busybox-copy:1/);
  assert.match(list, /capstan\.local\/pause:1/);
});

test('a pod runs and kubectl logs shows its output; exec works', { skip }, async () => {
  const ns = await namespace('logs');
  kubectl([
    '-n',
    ns,
    'run',
    'hello',
    `--image=${cp.node!.images.busybox}`,
    '--image-pull-policy=Never',
    '--restart=Never',
    '--',
    'sh',
    '-c',
    'echo hello from a pod; sleep 3600',
  ]);
  await until('pod Running', () => (podsRunning(ns, 'run=hello')?.length === 1 ? true : undefined));
  const logs = await until('logs', () => {
    const out = kubectl(['-n', ns, 'logs', 'hello']);
    return out.includes('hello from a pod') ? out : undefined;
  });
  assert.match(logs, /hello from a pod/);
  assert.equal(kubectl(['-n', ns, 'exec', 'hello', '--', 'cat', '/etc/hostname']).trim(), 'hello');
});

test('a Deployment scaled to 3 has 3 running pods, and a deleted pod is replaced', { skip }, async () => {
  const ns = await namespace('deploy');
  kubectl([
    '-n',
    ns,
    'create',
    'deployment',
    'web',
    `--image=${cp.node!.images.busybox}`,
    '--',
    'sleep',
    '3600',
  ]);
  kubectl([
    '-n',
    ns,
    'patch',
    'deployment',
    'web',
    '--type=json',
    '-p',
    '[{"op":"add","path":"/spec/template/spec/containers/0/imagePullPolicy","value":"Never"}]',
  ]);
  kubectl(['-n', ns, 'scale', 'deployment', 'web', '--replicas=3']);
  const three = await until('3 running', () => {
    const pods = podsRunning(ns, 'app=web');
    return pods?.length === 3 ? pods : undefined;
  });
  const victim = three[0]!;
  kubectl(['-n', ns, 'delete', 'pod', victim, '--wait=false']);
  const replaced = await until('replacement', () => {
    const pods = podsRunning(ns, 'app=web');
    return pods?.length === 3 && !pods.includes(victim) ? pods : undefined;
  });
  assert.equal(replaced.length, 3);
});

test('one pod reaches another over HTTP (busybox httpd), on the node bridge', { skip }, async () => {
  const ns = await namespace('http');
  kubectl(
    ['-n', ns, 'apply', '-f', '-'],
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'server', labels: { app: 'server' } },
      spec: {
        containers: [
          {
            name: 'httpd',
            image: cp.node!.images.busybox,
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
  );
  kubectl([
    '-n',
    ns,
    'run',
    'client',
    `--image=${cp.node!.images.busybox}`,
    '--image-pull-policy=Never',
    '--restart=Never',
    '--',
    'sleep',
    '3600',
  ]);
  await until('both Running', () =>
    podsRunning(ns, 'app=server')?.length === 1 && podsRunning(ns, 'run=client')?.length === 1
      ? true
      : undefined,
  );
  const ip = kubectl(['-n', ns, 'get', 'pod', 'server', '-o', 'jsonpath={.status.podIP}']).trim();
  assert.match(ip, /^10\.244\.0\.\d+$/);
  const body = await until('HTTP answer', () => {
    const out = kubectl(['-n', ns, 'exec', 'client', '--', 'wget', '-q', '-O', '-', `http://${ip}:8080/`]);
    return out.includes('served-by-pod') ? out : undefined;
  });
  assert.match(body, /served-by-pod/);
  // No route out: the pod's routing table has the pod subnet only.
  const routes = kubectl(['-n', ns, 'exec', 'client', '--', 'ip', 'route']);
  assert.doesNotMatch(routes, /default/);
});

test('a Capstan service runs as a pod (capstanImageSpec: Node 24 and the bundled service); /readyz answers on the pod IP', {
  skip,
}, async () => {
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
    await cp.node!.loadImage({ ...spec, name: 'capstan.local/capstan-service:1' });
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  const ns = await namespace('capstan');
  kubectl([
    '-n',
    ns,
    'run',
    'svc',
    '--image=capstan.local/capstan-service:1',
    '--image-pull-policy=Never',
    '--restart=Never',
  ]);
  await until('service pod Running', () => (podsRunning(ns, 'run=svc')?.length === 1 ? true : undefined));
  const ip = kubectl(['-n', ns, 'get', 'pod', 'svc', '-o', 'jsonpath={.status.podIP}']).trim();
  const readyz = await until('readyz', async () => {
    const res = await httpGet(`http://${ip}:8080/readyz`);
    return res.status === 200 ? (JSON.parse(res.body) as { status: string }) : undefined;
  });
  assert.equal(readyz.status, 'ok');
  assert.equal((await httpGet(`http://${ip}:8080/hello`)).body, 'hello from capstan');
});

test('after teardown the host is as before: sysctls, mounts, interfaces, processes, cgroups, nftables and iptables rules', {
  skip,
}, async () => {
  const root = cp.node!.containerdAddress.split('/containerd/')[0]!;
  const kubeletPid = cp.node!.processes.find((p) => p.name === 'kubelet')!.pid;
  // Another containerd's shim (dockerd's, from a test running beside this one) that started while the node
  // ran: its socket shares /run/containerd/s with the node's shims and must outlive the node's teardown.
  const foreign = join('/run/containerd/s', `capstan-test-${process.pid}`);
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(foreign, resolve));
  try {
    await cp.stop();
    stopped = true;
    assert.ok(
      existsSync(foreign),
      'a live shim socket of another containerd was removed by the node teardown',
    );
  } finally {
    await new Promise((resolve) => server.close(resolve));
    rmSync(foreign, { force: true });
  }
  assert.deepEqual(hostSnapshot(), beforeState);
  assert.deepEqual(nodeMounts(root), []);
  // No process of the node is left (containerd, shims, kubelet).
  assert.deepEqual(processesWithCommandLine(root), []);
  assert.throws(() => process.kill(kubeletPid, 0));
});

/** A child process starts a node, prints what it started, then ends as `how` says. */
function childNode(how: 'exit' | 'kill'): { dir: string; nodeRoot: string; pids: number[] } {
  const script = `
    import { startControlPlane } from ${JSON.stringify(join(import.meta.dirname, 'index.ts'))};
    const cp = await startControlPlane({ node: true });
    const nodeRoot = cp.node.containerdAddress.split('/containerd/')[0];
    console.log(JSON.stringify({ dir: cp.dir, nodeRoot, pids: cp.processes.map((p) => p.pid) }));
    ${how === 'exit' ? 'process.exit(0);' : "process.kill(process.pid, 'SIGKILL');"}
  `;
  const r = spawnSync(
    process.execPath,
    ['--conditions=capstan-source', '--input-type=module', '-e', script],
    {
      encoding: 'utf8',
      timeout: 180_000,
    },
  );
  const line = r.stdout.trim().split('\n').at(-1);
  assert.ok(line?.startsWith('{'), `child printed nothing: ${r.stderr}`);
  return JSON.parse(line!) as { dir: string; nodeRoot: string; pids: number[] };
}

test('a process that exits without stop() puts the host back (exit hook)', { skip }, () => {
  const started = childNode('exit');
  assert.deepEqual(hostSnapshot(), beforeState);
  assert.deepEqual(processesWithCommandLine(started.nodeRoot), []);
  assert.equal(existsSync(started.nodeRoot), false);
  // Back to this file's hold: the child's node ran inside it.
  assert.equal(JSON.parse(readFileSync(nodeLockPath(), 'utf8')).pid, process.pid);
});

test('after a crash (SIGKILL), the next node start cleans up what the crashed run left', {
  skip,
}, async () => {
  const crashed = childNode('kill');
  try {
    // Nothing ran the crashed run's hooks: its node still runs and holds the lock, until the next node
    // start (ours below, or another file's waiting for the lock) cleans up after it.
    const next = await startControlPlane({ node: true });
    assert.deepEqual(processesWithCommandLine(crashed.nodeRoot), []);
    assert.equal(existsSync(crashed.nodeRoot), false);
    await next.stop();
    assert.deepEqual(hostSnapshot(), beforeState);
    assert.equal(JSON.parse(readFileSync(nodeLockPath(), 'utf8')).pid, process.pid, 'the hold is back');
  } finally {
    // The crashed run's control plane (etcd, apiserver, controller manager) is no node's business.
    for (const pid of crashed.pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {}
    }
    rmSync(crashed.dir, { recursive: true, force: true });
  }
});
