// The detached process behind `capstan dev cluster up` and a test run's shared cluster: it owns the control
// plane, records where it is in <stateDir>/state.json, and stops it on SIGTERM (`capstan dev cluster down`,
// a test run's global teardown). Started by startCluster (cluster.ts) as
// `node cluster-daemon.ts <stateDir> [--controller-manager] [--node] [--owner=<pid>] [--check-host]`.
import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { isProcessRunning, processesWithCommandLine } from '../runtime/index.ts';
import { writeClusterState as writeState } from './cluster.ts';
import { type ControlPlane, startControlPlane } from './control-plane.ts';
import { PeerError, PeerErrorCode } from './errors.ts';
import { type HostSnapshot, holdNodeLock, hostDifferences, hostSnapshot } from './node.ts';

async function main(argv: string[]): Promise<void> {
  const [stateDir, ...flags] = argv;
  if (!stateDir) {
    process.stderr.write(
      'usage: cluster-daemon <stateDir> [--controller-manager] [--node] [--owner=<pid>] [--check-host]\n',
    );
    process.exit(2);
  }
  const withNode = flags.includes('--node');
  const checkHost = withNode && flags.includes('--check-host');
  const owner = Number(flags.find((f) => f.startsWith('--owner='))?.slice('--owner='.length) ?? 0);
  mkdirSync(stateDir, { recursive: true });
  const startedAt = new Date().toISOString();
  const log = (line: string) => process.stderr.write(`[cluster] ${line}\n`);
  const controller = new AbortController();
  let cp: ControlPlane | undefined;
  let hold: { release(): void } | undefined;
  let before: HostSnapshot | undefined;
  let stopping = false;
  const shutdown = async () => {
    if (stopping) return;
    stopping = true;
    controller.abort(new PeerError(PeerErrorCode.aborted, 'stopped by signal'));
    const node = cp?.node;
    await cp?.stop();
    if (hold && before && cp) {
      // Still inside the hold: no other node can have changed the host since `before`.
      const differences = hostDifferences(before, hostSnapshot());
      // The node's folder: <root>/containerd/containerd.sock.
      const root = node ? dirname(dirname(node.containerdAddress)) : undefined;
      for (const pid of root ? processesWithCommandLine(root) : []) {
        differences.push(`processes: ${pid} still runs with ${root} in its command line`);
      }
      writeState(stateDir, { status: 'stopped', pid: process.pid, hostCheck: { differences }, startedAt });
      if (differences.length > 0) log(`the host differs after the node:\n${differences.join('\n')}`);
    } else {
      writeState(stateDir, { status: 'stopped', pid: process.pid, startedAt });
    }
    hold?.release();
    process.exit(0);
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
  if (owner > 0) {
    // A test run's shared cluster: when the run's runner is gone (killed, crashed) nobody will stop it.
    setInterval(() => {
      if (!isProcessRunning(owner)) {
        log(`owner ${owner} is gone: stopping`);
        void shutdown();
      }
    }, 1000).unref();
  }
  writeState(stateDir, { status: 'starting', pid: process.pid, startedAt });
  try {
    if (checkHost) {
      // The whole cluster's life inside one hold of the node lock, so that the host compared after is
      // changed by this node only; the node runs inside the hold.
      hold = await holdNodeLock({ log });
      before = hostSnapshot();
    }
    cp = await startControlPlane({
      dir: join(stateDir, 'run'),
      controllerManager: flags.includes('--controller-manager'),
      node: withNode,
      // A cluster that stays up must not leave etcd open to every local user (the tests' fast path does).
      etcdTls: true,
      signal: controller.signal,
      log,
    });
  } catch (err) {
    writeState(stateDir, {
      status: 'failed',
      pid: process.pid,
      error: err instanceof Error ? err.message : String(err),
      startedAt,
    });
    hold?.release();
    process.exit(1);
  }
  const kubeconfigPath = join(stateDir, 'kubeconfig');
  copyFileSync(cp.kubeconfigPath, kubeconfigPath);
  const node = cp.node;
  writeState(stateDir, {
    status: 'ready',
    pid: process.pid,
    server: cp.server,
    etcdUrl: cp.etcd.url,
    kubeconfigPath,
    ...(cp.assets.kubectl ? { kubectl: cp.assets.kubectl } : {}),
    processes: [...cp.processes, ...(node?.processes ?? [])].map((p) => ({
      name: p.name,
      pid: p.pid,
      logPath: p.logPath,
    })),
    ...(node
      ? {
          node: {
            name: node.name,
            ip: node.ip,
            podSubnet: node.podSubnet,
            bridge: node.bridge,
            images: { ...node.images },
            containerdAddress: node.containerdAddress,
          },
        }
      : {}),
    startedAt,
  });
  log(`ready at ${cp.server}`);
  // Stay alive until a signal; the timer keeps the event loop busy.
  setInterval(() => {}, 1 << 30);
}

await main(process.argv.slice(2));
