import { Command } from 'commander';
import { ExitCode } from './exit-code.ts';
import { runAction } from './run-action.ts';

// The logic lives in capstan/peers (cluster.ts); this file parses options and formats output. The peers
// index is imported inside each action so `capstan --help` never loads it. A PeerError ends a command
// through the action runner: its message and code, exit 1.

async function up(
  opts: { controllerManager?: boolean; node?: boolean; timeout: string },
  signal: AbortSignal,
): Promise<void> {
  const { startCluster } = await import('../peers/index.ts');
  const cluster = await startCluster({
    controllerManager: opts.controllerManager ?? false,
    node: opts.node ?? false,
    timeoutMs: Number(opts.timeout) * 1000,
    log: (line) => process.stderr.write(`[peers] ${line}\n`),
    onAssets: (assets) => process.stderr.write(`starting etcd and kube-apiserver from ${assets.dir}\n`),
    signal,
  });
  process.stderr.write(
    `cluster ${cluster.alreadyRunning ? 'already running' : 'ready'} at ${cluster.server}\n`,
  );
  process.stdout.write(`${cluster.kubeconfigPath}\n`);
}

async function down(): Promise<void> {
  const { stopCluster } = await import('../peers/index.ts');
  const stopped = await stopCluster();
  process.stderr.write(stopped ? 'cluster stopped\n' : 'no cluster running\n');
}

async function kubeconfig(): Promise<void> {
  const { clusterKubeconfig } = await import('../peers/index.ts');
  process.stdout.write(`${clusterKubeconfig()}\n`);
}

async function status(opts: { json?: boolean }): Promise<number> {
  const { clusterStatus } = await import('../peers/index.ts');
  const summary = await clusterStatus();
  if (opts.json) {
    process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
  } else if (!summary.running) {
    process.stdout.write('no cluster running\n');
  } else {
    process.stdout.write(
      `${summary.ready ? 'ready' : summary.status} ${summary.server ?? ''} kubeconfig=${summary.kubeconfigPath ?? '-'}\n`,
    );
    for (const p of summary.processes ?? []) {
      process.stdout.write(
        `  ${p.name.padEnd(24)} pid ${p.pid} ${p.alive ? 'alive' : 'dead'}  ${p.logPath}\n`,
      );
    }
  }
  return summary.running && summary.ready ? ExitCode.ok : ExitCode.failed;
}

/**
 * `capstan dev cluster up|down|kubeconfig|status`: a local etcd + kube-apiserver running in the
 * background (state under `~/.cache/capstan/cluster/`), for trying operators by hand.
 */
export function clusterCommand(): Command {
  const cluster = new Command('cluster').description('A local Kubernetes control plane in the background');
  cluster
    .command('up')
    .description('Start etcd and kube-apiserver (building them first if needed); print the kubeconfig path')
    .option('--controller-manager', 'also run kube-controller-manager')
    .option(
      '--node',
      'also run a node so pods run: containerd, a CNI bridge, kube-scheduler, kubelet (root; implies --controller-manager)',
    )
    .option('--timeout <seconds>', 'how long to wait for readiness', '300')
    .action((opts: { controllerManager?: boolean; node?: boolean; timeout: string }) =>
      runAction('capstan dev cluster up', ({ signal }) => up(opts, signal)),
    );
  cluster
    .command('down')
    .description('Stop the cluster and remove its state')
    .action(() => runAction('capstan dev cluster down', down));
  cluster
    .command('kubeconfig')
    .description('Print the kubeconfig path of the running cluster')
    .action(() => runAction('capstan dev cluster kubeconfig', kubeconfig));
  cluster
    .command('status')
    .description('Show whether the cluster runs and answers (exit 1 if not)')
    .option('--json', 'print JSON')
    .action((opts: { json?: boolean }) => runAction('capstan dev cluster status', () => status(opts)));
  return cluster;
}
