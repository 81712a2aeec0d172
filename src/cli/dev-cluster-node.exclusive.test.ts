// `capstan dev cluster up --node`: a person's cluster with a node of its own, so this file needs the
// machine's node to itself (`*.exclusive.test.ts` files run after the test run's shared cluster is gone).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import {
  isProcessRunning as alive,
  holdNodeLock,
  hostSnapshot,
  resolveKubeAssets,
} from '../testing/index.ts';

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

test('up --node: a pod runs and logs; down stops the node and puts the host back', {
  skip: process.getuid?.() === 0 || process.env.CI ? false : 'a node needs root',
}, async () => {
  // No other node (another test file's) may change the host between the two snapshots: hold the machine's
  // node lock; the daemon's node runs inside the hold (CAPSTAN_NODE_LOCK_OWNER reaches it).
  const hold = await holdNodeLock();
  env.CAPSTAN_NODE_LOCK_OWNER = hold.owner;
  try {
    await upNodeAndDown();
  } finally {
    delete env.CAPSTAN_NODE_LOCK_OWNER;
    hold.release();
  }
});

async function upNodeAndDown(): Promise<void> {
  const beforeState = hostSnapshot();
  const up = capstan('up', '--node');
  assert.equal(up.status, 0, `${up.stderr}\n${tail(join(stateDir, 'daemon.log'))}`);
  const kubectl = resolveKubeAssets({}).kubectl!;
  const kc = ['--kubeconfig', up.stdout.trim()];
  const run = (...args: string[]) =>
    spawnSync(kubectl, [...kc, ...args], { encoding: 'utf8', timeout: 60_000 });
  const created = run(
    'run',
    'hello',
    '--image=capstan.local/busybox:1',
    '--image-pull-policy=Never',
    '--restart=Never',
    '--',
    'sh',
    '-c',
    'echo hello from the dev cluster; sleep 3600',
  );
  assert.equal(created.status, 0, created.stderr);
  let logs = '';
  for (let i = 0; i < 600 && !logs.includes('hello from the dev cluster'); i++) {
    logs = run('logs', 'hello').stdout ?? '';
    if (!logs.includes('hello')) await new Promise((r) => setTimeout(r, 200));
  }
  assert.match(logs, /hello from the dev cluster/);
  const st = JSON.parse(capstan('status', '--json').stdout) as {
    pid: number;
    processes: Array<{ name: string; pid: number; alive: boolean }>;
  };
  assert.deepEqual(
    st.processes.map((p) => p.name),
    [
      'etcd',
      'kube-apiserver',
      'kube-controller-manager',
      'containerd',
      'kube-scheduler',
      'kubelet',
      'kube-proxy',
    ],
  );
  assert.equal(capstan('down').status, 0);
  assert.deepEqual([st.pid, ...st.processes.map((p) => p.pid)].filter(alive), []);
  assert.deepEqual(hostSnapshot(), beforeState);
  assert.equal(existsSync('/sys/class/net/capstan0'), false);
}

function tail(path: string): string {
  try {
    return readFileSync(path, 'utf8').split('\n').slice(-40).join('\n');
  } catch {
    return '';
  }
}
