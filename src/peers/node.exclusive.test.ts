// A node of this file's own: tests that need the machine's node to themselves, to compare the host before
// and after it, and to crash a node and see the next one clean up. `*.exclusive.test.ts` files run after
// the run's shared cluster is gone (`npm run test:exclusive`). Root only.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { after, before, test } from 'node:test';
import { processesWithCommandLine } from '../runtime/index.ts';
import {
  type ControlPlane,
  type HostSnapshot,
  holdNodeLock,
  hostSnapshot,
  nodeLockPath,
  nodeMounts,
  startControlPlane,
} from './index.ts';

const isRoot = process.getuid?.() === 0;
let cp: ControlPlane;
let stopped = false;
let beforeState: HostSnapshot | undefined;
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

// Outside CI a non-root developer skips these; in CI they run (and fail without root), never skip.
const skip = isRoot || process.env.CI ? false : 'a node needs root';

test('after teardown the host is as before: sysctls, mounts, interfaces, processes, cgroups', {
  skip,
}, async () => {
  const root = dirname(dirname(cp.node!.containerdAddress));
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

test('releasing the last lock leaves no empty /run/capstan behind', { skip }, () => {
  const lockDir = dirname(nodeLockPath());
  assert.ok(existsSync(nodeLockPath()), 'the hold is there');
  hold!.release();
  hold = undefined;
  // Gone, unless another run on this machine holds (or is taking) a lock of its own right now.
  assert.ok(!existsSync(lockDir) || readdirSync(lockDir).length > 0, `${lockDir} was left empty`);
});
