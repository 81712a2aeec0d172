// The detached process behind `capstan dev cluster up`: it owns the control plane, records where it is in
// <stateDir>/state.json, and stops it on SIGTERM (`capstan dev cluster down`). Started by startCluster
// (cluster.ts) as `node cluster-daemon.ts <stateDir> [--controller-manager] [--node]`.
import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { writeClusterState as writeState } from './cluster.ts';
import { type ControlPlane, startControlPlane } from './control-plane.ts';
import { PeerError, PeerErrorCode } from './errors.ts';

async function main(argv: string[]): Promise<void> {
  const [stateDir, ...flags] = argv;
  if (!stateDir) {
    process.stderr.write('usage: cluster-daemon <stateDir> [--controller-manager]\n');
    process.exit(2);
  }
  mkdirSync(stateDir, { recursive: true });
  const startedAt = new Date().toISOString();
  const controller = new AbortController();
  let cp: ControlPlane | undefined;
  let stopping = false;
  const shutdown = async () => {
    if (stopping) return;
    stopping = true;
    controller.abort(new PeerError(PeerErrorCode.aborted, 'stopped by signal'));
    await cp?.stop();
    process.exit(0);
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
  writeState(stateDir, { status: 'starting', pid: process.pid, startedAt });
  try {
    cp = await startControlPlane({
      dir: join(stateDir, 'run'),
      controllerManager: flags.includes('--controller-manager'),
      node: flags.includes('--node'),
      // A cluster that stays up must not leave etcd open to every local user (the tests' fast path does).
      etcdTls: true,
      signal: controller.signal,
      log: (line) => process.stderr.write(`[cluster] ${line}\n`),
    });
  } catch (err) {
    writeState(stateDir, {
      status: 'failed',
      pid: process.pid,
      error: err instanceof Error ? err.message : String(err),
      startedAt,
    });
    process.exit(1);
  }
  const kubeconfigPath = join(stateDir, 'kubeconfig');
  copyFileSync(cp.kubeconfigPath, kubeconfigPath);
  writeState(stateDir, {
    status: 'ready',
    pid: process.pid,
    server: cp.server,
    etcdUrl: cp.etcd.url,
    kubeconfigPath,
    processes: [...cp.processes, ...(cp.node?.processes ?? [])].map((p) => ({
      name: p.name,
      pid: p.pid,
      logPath: p.logPath,
    })),
    startedAt,
  });
  process.stderr.write(`[cluster] ready at ${cp.server}\n`);
  // Stay alive until a signal; the timer keeps the event loop busy.
  setInterval(() => {}, 1 << 30);
}

await main(process.argv.slice(2));
