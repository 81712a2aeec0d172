import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { createHttpTransport, httpRequest } from '../runtime/index.ts';
import { isProcessRunning as alive, resolveKubeAssets } from '../testing/index.ts';

const main = new URL('./main.ts', import.meta.url).pathname;
// A private cache root keeps this test away from a developer's own `capstan dev cluster`; the binaries
// come from the usual place through CAPSTAN_KUBE_ASSETS.
const cache = mkdtempSync(join(tmpdir(), 'capstan-cluster-cli-'));
const env: NodeJS.ProcessEnv = {
  ...process.env,
  CAPSTAN_CACHE_DIR: cache,
  CAPSTAN_KUBE_ASSETS: resolveKubeAssets({}).dir,
};
const stateDir = join(cache, 'cluster');

function capstan(...args: string[]) {
  return spawnSync(process.execPath, ['--conditions=capstan-source', main, 'dev', 'cluster', ...args], {
    encoding: 'utf8',
    env,
    timeout: 300_000,
  });
}

after(() => {
  capstan('down');
  rmSync(cache, { recursive: true, force: true });
});

test('without a cluster: kubeconfig and status fail, down is a no-op', () => {
  const kc = capstan('kubeconfig');
  assert.equal(kc.status, 1);
  assert.match(kc.stderr, /no cluster running/);
  const st = capstan('status', '--json');
  assert.equal(st.status, 1);
  assert.equal(JSON.parse(st.stdout).running, false);
  const down = capstan('down');
  assert.equal(down.status, 0, down.stderr);
  assert.match(down.stderr, /no cluster running/);
});

test('up -> kubeconfig -> client call -> status -> down', async () => {
  const up = capstan('up');
  assert.equal(up.status, 0, `${up.stderr}\n${tail(join(stateDir, 'daemon.log'))}`);
  const kubeconfigPath = up.stdout.trim();
  assert.equal(kubeconfigPath, join(stateDir, 'kubeconfig'));

  const again = capstan('up');
  assert.equal(again.status, 0, again.stderr);
  assert.match(again.stderr, /already running/);
  assert.equal(again.stdout.trim(), kubeconfigPath);

  const kc = capstan('kubeconfig');
  assert.equal(kc.status, 0, kc.stderr);
  assert.equal(kc.stdout.trim(), kubeconfigPath);

  // The CLI has exited: the cluster must outlive it and answer a real client.
  const config = new KubeConfig();
  config.loadFromFile(kubeconfigPath);
  const core = config.makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: 'from-cli-test' } } });
  const names = (await core.listNamespace()).items.map((n) => n.metadata?.name);
  assert.ok(names.includes('default'));
  assert.ok(names.includes('from-cli-test'));
  // And kubectl, as a person would use it: `kubectl --kubeconfig "$(capstan dev cluster kubeconfig)"`.
  const kubectl = resolveKubeAssets({}).kubectl;
  assert.ok(kubectl, 'the kube peer builds kubectl');
  const applied = spawnSync(
    kubectl,
    ['--kubeconfig', kc.stdout.trim(), 'create', 'configmap', 'hello', '--from-literal=a=1'],
    {
      encoding: 'utf8',
      timeout: 60_000,
    },
  );
  assert.equal(applied.status, 0, applied.stderr);
  const got = spawnSync(
    kubectl,
    ['--kubeconfig', kc.stdout.trim(), 'get', 'configmap', 'hello', '-o', 'jsonpath={.data.a}'],
    { encoding: 'utf8', timeout: 60_000 },
  );
  assert.deepEqual([got.status, got.stdout], [0, '1'], got.stderr);

  // etcd, which holds everything behind RBAC's back, is not open to whoever runs on this machine: its client
  // URL is https, plain HTTP gets nothing, and TLS without a client certificate from the etcd CA is refused.
  const { etcdUrl } = JSON.parse(readFileSync(join(stateDir, 'state.json'), 'utf8')) as { etcdUrl?: string };
  assert.match(etcdUrl ?? '', /^https:\/\/127\.0\.0\.1:\d+$/);
  const etcdCa = readFileSync(join(stateDir, 'run', 'pki', 'etcd', 'ca.crt'), 'utf8');
  for (const [origin, tls] of [
    [etcdUrl!.replace('https://', 'http://'), undefined],
    [etcdUrl!, { ca: etcdCa }],
  ] as const) {
    const http = createHttpTransport({ origin, retry: false, ...(tls ? { tls } : {}) });
    try {
      const res = await httpRequest(http, { path: '/health', timeouts: { deadlineMs: 10_000 } }).then(
        async (r) => ({ status: r.status, body: await r.body.text() }),
        (err: Error) => ({ status: 0, body: String((err as { cause?: unknown }).cause ?? err) }),
      );
      // Go's TLS server may answer plain HTTP with a 400; anything else is a closed connection.
      assert.ok(res.status === 0 || (res.status === 400 && !tls), `${origin}: ${JSON.stringify(res)}`);
      assert.doesNotMatch(res.body, /"health"|UNABLE_TO_|SELF_SIGNED/);
    } finally {
      await http.destroy();
    }
  }

  const st = capstan('status', '--json');
  assert.equal(st.status, 0, st.stderr);
  const status = JSON.parse(st.stdout) as {
    ready: boolean;
    pid: number;
    processes: Array<{ name: string; pid: number; alive: boolean }>;
  };
  assert.equal(status.ready, true);
  assert.deepEqual(
    status.processes.map((p) => [p.name, p.alive]),
    [
      ['etcd', true],
      ['kube-apiserver', true],
    ],
  );

  const down = capstan('down');
  assert.equal(down.status, 0, down.stderr);
  assert.deepEqual(
    [status.pid, ...status.processes.map((p) => p.pid)].filter(alive),
    [],
    'daemon, etcd and kube-apiserver are gone',
  );
  assert.equal(existsSync(stateDir), false);
  assert.equal(capstan('kubeconfig').status, 1);
});

test('up --controller-manager: Deployments get ReplicaSets, as on a real cluster; down stops all three', async () => {
  const up = capstan('up', '--controller-manager');
  assert.equal(up.status, 0, `${up.stderr}\n${tail(join(stateDir, 'daemon.log'))}`);
  const kubectl = resolveKubeAssets({}).kubectl!;
  const kc = ['--kubeconfig', up.stdout.trim()];
  const created = spawnSync(kubectl, [...kc, 'create', 'deployment', 'web', '--image=busybox:local'], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  assert.equal(created.status, 0, created.stderr);
  // The controller manager makes the ReplicaSet; nothing else in a bare control plane would.
  let replicaSets = '';
  for (let i = 0; i < 300 && replicaSets === ''; i++) {
    replicaSets = spawnSync(kubectl, [...kc, 'get', 'replicasets', '-l', 'app=web', '-o', 'name'], {
      encoding: 'utf8',
      timeout: 60_000,
    }).stdout.trim();
    if (replicaSets === '') await new Promise((r) => setTimeout(r, 100));
  }
  assert.match(replicaSets, /^replicaset\.apps\/web-[a-z0-9]+$/);
  const st = JSON.parse(capstan('status', '--json').stdout) as {
    pid: number;
    processes: Array<{ name: string; pid: number; alive: boolean }>;
  };
  assert.deepEqual(
    st.processes.map((p) => [p.name, p.alive]),
    [
      ['etcd', true],
      ['kube-apiserver', true],
      ['kube-controller-manager', true],
    ],
  );
  assert.equal(capstan('down').status, 0);
  assert.deepEqual([st.pid, ...st.processes.map((p) => p.pid)].filter(alive), []);
  assert.equal(existsSync(stateDir), false);
});

function tail(path: string): string {
  try {
    return readFileSync(path, 'utf8').split('\n').slice(-40).join('\n');
  } catch {
    return '';
  }
}
