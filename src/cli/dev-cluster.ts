import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';

/** What the background control plane records in `<state dir>/state.json` (see kube-daemon.ts). */
interface ClusterState {
  status: 'starting' | 'ready' | 'failed';
  pid: number;
  server?: string;
  kubeconfigPath?: string;
  processes?: Array<{ name: string; pid: number; logPath: string }>;
  error?: string;
  startedAt: string;
}

async function stateDir(): Promise<string> {
  // Narrow imports, like dev.ts: the testing index loads every peer's SDK, seconds on a busy machine.
  const { cacheRoot } = await import('../testing/peers.ts');
  return join(cacheRoot(), 'cluster');
}

function readState(dir: string): ClusterState | undefined {
  try {
    return JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')) as ClusterState;
  } catch {
    return undefined;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function tail(path: string, lines = 40): string {
  try {
    return readFileSync(path, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

function fail(message: string): never {
  process.stderr.write(`${message}\n`);
  process.exit(1);
}

/** The daemon's entry: the .ts source when running from source, the compiled .js from dist. */
function daemonScript(): string {
  const ext = import.meta.url.endsWith('.ts') ? 'ts' : 'js';
  return fileURLToPath(new URL(`../testing/internal/kube-daemon.${ext}`, import.meta.url));
}

async function up(opts: { controllerManager?: boolean; timeout: string }): Promise<void> {
  const dir = await stateDir();
  const current = readState(dir);
  if (current && alive(current.pid) && current.status !== 'failed') {
    if (current.status === 'ready' && current.kubeconfigPath) {
      process.stderr.write(`cluster already running at ${current.server}\n`);
      process.stdout.write(`${current.kubeconfigPath}\n`);
      return;
    }
    fail(`a cluster is already starting (pid ${current.pid}); run "capstan dev cluster down" to reset`);
  }
  rmSync(dir, { recursive: true, force: true });
  const { mkdirSync } = await import('node:fs');
  mkdirSync(dir, { recursive: true });

  // Build (or find) the binaries here, in the foreground, so the build's progress reaches the terminal.
  const { resolveKubeAssets } = await import('../testing/internal/kube-assets.ts');
  const assets = resolveKubeAssets({
    controllerManager: opts.controllerManager ?? false,
    log: (line) => process.stderr.write(`[peers] ${line}\n`),
  });
  process.stderr.write(`starting etcd and kube-apiserver from ${assets.dir}\n`);

  const logPath = join(dir, 'daemon.log');
  const logFd = openSync(logPath, 'a');
  const child = spawn(
    process.execPath,
    [...process.execArgv, daemonScript(), dir, ...(opts.controllerManager ? ['--controller-manager'] : [])],
    {
      detached: true,
      stdio: ['ignore', logFd, logFd],
      // The daemon must find the same binaries even when they came from the environment.
      env: { ...process.env, CAPSTAN_KUBE_ASSETS: assets.dir },
    },
  );
  closeSync(logFd);
  let exited = false;
  child.once('exit', () => {
    exited = true;
  });
  child.unref();

  const deadline = Date.now() + Number(opts.timeout) * 1000;
  while (Date.now() < deadline) {
    const state = readState(dir);
    if (state?.status === 'ready' && state.kubeconfigPath) {
      process.stderr.write(`cluster ready at ${state.server}\n`);
      process.stdout.write(`${state.kubeconfigPath}\n`);
      return;
    }
    if (state?.status === 'failed' || exited) {
      const reason = state?.error ?? tail(logPath);
      rmSync(dir, { recursive: true, force: true });
      fail(`cluster failed to start: ${reason}`);
    }
    await sleep(200);
  }
  if (child.pid) process.kill(child.pid, 'SIGTERM');
  fail(`cluster not ready within ${opts.timeout} s; log: ${logPath}\n${tail(logPath)}`);
}

async function down(): Promise<void> {
  const dir = await stateDir();
  const state = readState(dir);
  if (!state) {
    rmSync(dir, { recursive: true, force: true });
    process.stderr.write('no cluster running\n');
    return;
  }
  if (alive(state.pid)) {
    process.kill(state.pid, 'SIGTERM');
    for (let i = 0; i < 300 && alive(state.pid); i++) await sleep(100);
    if (alive(state.pid)) process.kill(state.pid, 'SIGKILL');
  }
  // If the daemon was killed hard, its programs are orphans: end them by their recorded pids.
  for (const p of state.processes ?? []) {
    if (alive(p.pid)) process.kill(p.pid, 'SIGKILL');
  }
  rmSync(dir, { recursive: true, force: true });
  process.stderr.write('cluster stopped\n');
}

async function kubeconfig(): Promise<void> {
  const state = readState(await stateDir());
  if (state?.status !== 'ready' || !state.kubeconfigPath || !alive(state.pid)) {
    fail('no cluster running; start one with "capstan dev cluster up"');
  }
  process.stdout.write(`${state.kubeconfigPath}\n`);
}

async function status(opts: { json?: boolean }): Promise<void> {
  const dir = await stateDir();
  const state = readState(dir);
  const running = state !== undefined && alive(state.pid);
  let ready = false;
  if (running && state.status === 'ready' && state.kubeconfigPath && existsSync(state.kubeconfigPath)) {
    const { KubeConfig, CoreV1Api } = await import('@kubernetes/client-node');
    const kc = new KubeConfig();
    kc.loadFromFile(state.kubeconfigPath);
    ready = await kc
      .makeApiClient(CoreV1Api)
      .readNamespace({ name: 'default' })
      .then(() => true)
      .catch(() => false);
  }
  const summary = {
    running,
    ready,
    status: state?.status ?? 'absent',
    server: state?.server,
    kubeconfigPath: state?.kubeconfigPath,
    pid: state?.pid,
    processes: state?.processes?.map((p) => ({ ...p, alive: alive(p.pid) })),
    stateDir: dir,
  };
  if (opts.json) {
    process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
  } else if (!running) {
    process.stdout.write('no cluster running\n');
  } else {
    process.stdout.write(
      `${ready ? 'ready' : state.status} ${state.server ?? ''} kubeconfig=${state.kubeconfigPath ?? '-'}\n`,
    );
    for (const p of summary.processes ?? []) {
      process.stdout.write(
        `  ${p.name.padEnd(24)} pid ${p.pid} ${p.alive ? 'alive' : 'dead'}  ${p.logPath}\n`,
      );
    }
  }
  if (!running || !ready) process.exitCode = 1;
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
    .option('--timeout <seconds>', 'how long to wait for readiness', '300')
    .action(up);
  cluster.command('down').description('Stop the cluster and remove its state').action(down);
  cluster
    .command('kubeconfig')
    .description('Print the kubeconfig path of the running cluster')
    .action(kubeconfig);
  cluster
    .command('status')
    .description('Show whether the cluster runs and answers (exit 1 if not)')
    .option('--json', 'print JSON')
    .action(status);
  return cluster;
}
