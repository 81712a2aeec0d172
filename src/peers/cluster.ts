// `capstan dev cluster`: a local control plane run by a detached daemon (cluster-daemon.ts) that outlives
// the command which started it. The daemon records where it is in `<state dir>/state.json`; every other
// command reads that file.
import { spawn } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { isProcessRunning, tailFile } from '../runtime/index.ts';
import { cacheRoot } from './catalogue.ts';
import { PeerError, PeerErrorCode } from './errors.ts';
import { type KubeAssets, resolveKubeAssets } from './kube-assets.ts';
import { cleanStaleNode } from './node.ts';

/** What the background control plane records in `<state dir>/state.json`. */
export interface ClusterState {
  /** `stopped`: the daemon's last word, written after it stopped everything (with `hostCheck`). */
  status: 'starting' | 'ready' | 'failed' | 'stopped';
  /** The daemon's pid. */
  pid: number;
  /** Apiserver URL, once ready. */
  server?: string;
  /**
   * etcd's client URL, once ready: https, requiring a client certificate from the etcd CA (under
   * `<state dir>/run/pki`).
   */
  etcdUrl?: string;
  /** The kubeconfig the daemon copied into the state dir, once ready. */
  kubeconfigPath?: string;
  /** The programs the daemon runs, so `down` can end them even when the daemon was killed hard. */
  processes?: Array<{ name: string; pid: number; logPath: string }>;
  /** kubectl of the same release, once ready, when the asset folder has one. */
  kubectl?: string;
  /** The node, once ready (with `--node`): where its containerd listens, its images and addresses. */
  node?: ClusterNodeState;
  /**
   * With `checkHost`, after the daemon stopped: how the host differs from before the node started (sysctls,
   * fixed paths, mounts, interfaces, cgroups, processes left); empty when it was put back.
   */
  hostCheck?: { differences: string[] };
  /** Why start-up failed. */
  error?: string;
  startedAt: string;
}

/** The node of a background cluster, as its state records it (see `KubeNode`). */
export interface ClusterNodeState {
  name: string;
  ip: string;
  podSubnet: string;
  bridge: string;
  images: { pause: string; busybox: string };
  containerdAddress: string;
}

/** Where the background cluster keeps its state: `<cache root>/cluster`. */
export function clusterStateDir(): string {
  return join(cacheRoot(), 'cluster');
}

/** The recorded state, or undefined when there is none (or it is unreadable). */
export function readClusterState(dir = clusterStateDir()): ClusterState | undefined {
  try {
    return JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')) as ClusterState;
  } catch {
    return undefined;
  }
}

/** Record the state; written then renamed, because other commands poll this file and must never read half of it. */
export function writeClusterState(dir: string, state: ClusterState): void {
  const tmp = join(dir, `state.json.${process.pid}`);
  writeFileSync(tmp, `${JSON.stringify(state, null, 2)}\n`);
  renameSync(tmp, join(dir, 'state.json'));
}

/** Options of {@link startCluster}. */
export interface StartClusterOptions {
  /** Also run kube-controller-manager. */
  controllerManager?: boolean;
  /** Also run a node (containerd, CNI bridge, kube-scheduler, kubelet; implies the controller manager). Root only. */
  node?: boolean;
  /** How long to wait for readiness. */
  timeoutMs: number;
  /** Progress of building or finding the binaries (runs in the foreground, so a build's progress shows). */
  log?: (line: string) => void;
  /** Called once the binaries are found, before the daemon starts. */
  onAssets?: (assets: KubeAssets) => void;
  /** Stop waiting for readiness (rejecting with its reason); the background daemon keeps starting. */
  signal?: AbortSignal;
  /** Where the state lives; default {@link clusterStateDir} (the one `capstan dev cluster` uses). */
  stateDir?: string;
  /** The daemon stops by itself once this process is gone (a test run's runner, killed or crashed). */
  ownerPid?: number;
  /**
   * The daemon holds the node lock across the whole cluster's life, snapshots the host before the node and
   * compares after stopping it, and records the differences as `hostCheck` in its last state.
   */
  checkHost?: boolean;
  /** The daemon's environment; default this process's. */
  env?: NodeJS.ProcessEnv;
}

/** Where a running background cluster is. */
export interface ClusterInfo {
  server: string;
  kubeconfigPath: string;
  /** True when a ready cluster was already running and nothing was started. */
  alreadyRunning: boolean;
}

/** The daemon's entry: the .ts source when running from source, the compiled .js from dist. */
function daemonScript(): string {
  const ext = import.meta.url.endsWith('.ts') ? 'ts' : 'js';
  return fileURLToPath(new URL(`./cluster-daemon.${ext}`, import.meta.url));
}

/**
 * Start the background control plane (or find the running one) and wait until it is ready. Fails with
 * `CAP_ERR_PEER_CLUSTER_BUSY` while another one is starting, `CAP_ERR_PEER_CLUSTER_FAILED` when it fails
 * or is not ready within `timeoutMs` (then it is stopped).
 */
export async function startCluster(options: StartClusterOptions): Promise<ClusterInfo> {
  const dir = options.stateDir ?? clusterStateDir();
  const current = readClusterState(dir);
  if (current && isProcessRunning(current.pid) && current.status !== 'failed') {
    if (current.status === 'ready' && current.kubeconfigPath) {
      return { server: current.server ?? '', kubeconfigPath: current.kubeconfigPath, alreadyRunning: true };
    }
    throw new PeerError(
      PeerErrorCode.clusterBusy,
      `a cluster is already starting (pid ${current.pid}); run "capstan dev cluster down" to reset`,
    );
  }
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });

  const assets = resolveKubeAssets({
    controllerManager: (options.controllerManager ?? false) || (options.node ?? false),
    ...(options.log ? { log: options.log } : {}),
  });
  options.onAssets?.(assets);
  const flags = [
    ...(options.controllerManager ? ['--controller-manager'] : []),
    ...(options.node ? ['--node'] : []),
    ...(options.ownerPid !== undefined ? [`--owner=${options.ownerPid}`] : []),
    ...(options.checkHost ? ['--check-host'] : []),
  ];
  const daemon = spawnDaemon(dir, assets, flags, options.env ?? process.env);
  return await waitUntilReady(dir, daemon, options.timeoutMs, options.signal);
}

interface DaemonHandle {
  pid: number | undefined;
  logPath: string;
  exited(): boolean;
}

function spawnDaemon(dir: string, assets: KubeAssets, flags: string[], env: NodeJS.ProcessEnv): DaemonHandle {
  const logPath = join(dir, 'daemon.log');
  const logFd = openSync(logPath, 'a');
  const child = spawn(process.execPath, [...process.execArgv, daemonScript(), dir, ...flags], {
    detached: true,
    stdio: ['ignore', logFd, logFd],
    // The daemon must find the same binaries even when they came from the environment.
    env: { ...env, CAPSTAN_KUBE_ASSETS: assets.dir },
  });
  closeSync(logFd);
  let exited = false;
  child.once('exit', () => {
    exited = true;
  });
  child.unref();
  return { pid: child.pid, logPath, exited: () => exited };
}

async function waitUntilReady(
  dir: string,
  daemon: DaemonHandle,
  timeoutMs: number,
  signal: AbortSignal | undefined,
): Promise<ClusterInfo> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    signal?.throwIfAborted();
    const state = readClusterState(dir);
    if (state?.status === 'ready' && state.kubeconfigPath) {
      return { server: state.server ?? '', kubeconfigPath: state.kubeconfigPath, alreadyRunning: false };
    }
    if (state?.status === 'failed' || daemon.exited()) {
      const reason = state?.error ?? tailFile(daemon.logPath, 40);
      rmSync(dir, { recursive: true, force: true });
      throw new PeerError(PeerErrorCode.clusterFailed, `cluster failed to start: ${reason}`);
    }
    await sleep(200);
  }
  if (daemon.pid) process.kill(daemon.pid, 'SIGTERM');
  throw new PeerError(
    PeerErrorCode.clusterFailed,
    `cluster not ready within ${timeoutMs / 1000} s; log: ${daemon.logPath}\n${tailFile(daemon.logPath, 40)}`,
  );
}

/**
 * Stop the background cluster and remove its state. Resolves false when there was none. The daemon gets
 * SIGTERM (30 s to stop its programs), then SIGKILL; programs it left behind are killed by their pids.
 */
export async function stopCluster(): Promise<boolean> {
  const dir = clusterStateDir();
  const state = readClusterState(dir);
  if (!state) {
    rmSync(dir, { recursive: true, force: true });
    return false;
  }
  if (isProcessRunning(state.pid)) {
    process.kill(state.pid, 'SIGTERM');
    for (let i = 0; i < 300 && isProcessRunning(state.pid); i++) await sleep(100);
    if (isProcessRunning(state.pid)) process.kill(state.pid, 'SIGKILL');
  }
  finishStop(dir, state);
  return true;
}

/**
 * {@link stopCluster} for exit hooks and test runners' teardown, synchronously, with the state in `dir`:
 * returns the daemon's last recorded state (`stopped` with its `hostCheck` when it stopped cleanly), or
 * undefined when there was no cluster. The daemon gets `timeoutMs` after SIGTERM, then SIGKILL.
 */
export function stopClusterSync(dir: string, timeoutMs = 60_000): ClusterState | undefined {
  const state = readClusterState(dir);
  if (!state) {
    rmSync(dir, { recursive: true, force: true });
    return undefined;
  }
  if (isProcessRunning(state.pid)) {
    process.kill(state.pid, 'SIGTERM');
    const deadline = Date.now() + timeoutMs;
    while (isProcessRunning(state.pid) && Date.now() < deadline) {
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
    }
    if (isProcessRunning(state.pid)) process.kill(state.pid, 'SIGKILL');
  }
  const last = readClusterState(dir) ?? state;
  finishStop(dir, last);
  return last;
}

/** After the daemon: end the programs a daemon killed hard left behind, its node's changes, its state. */
function finishStop(dir: string, state: ClusterState): void {
  // If the daemon was killed hard, its programs are orphans: end them by their recorded pids.
  for (const p of state.processes ?? []) {
    if (isProcessRunning(p.pid)) process.kill(p.pid, 'SIGKILL');
  }
  // A daemon killed hard could not put the host back after its node: do it now (no-op without one).
  cleanStaleNode();
  rmSync(dir, { recursive: true, force: true });
}

/** The kubeconfig path of the running, ready cluster; `CAP_ERR_PEER_CLUSTER_ABSENT` when there is none. */
export function clusterKubeconfig(): string {
  const state = readClusterState();
  if (state?.status !== 'ready' || !state.kubeconfigPath || !isProcessRunning(state.pid)) {
    throw new PeerError(
      PeerErrorCode.clusterAbsent,
      'no cluster running; start one with "capstan dev cluster up"',
    );
  }
  return state.kubeconfigPath;
}

/** What {@link clusterStatus} reports. */
export interface ClusterStatus {
  /** The daemon is alive. */
  running: boolean;
  /** The apiserver answered a request with the recorded kubeconfig. */
  ready: boolean;
  status: ClusterState['status'] | 'absent';
  server: string | undefined;
  kubeconfigPath: string | undefined;
  pid: number | undefined;
  processes: Array<{ name: string; pid: number; logPath: string; alive: boolean }> | undefined;
  stateDir: string;
}

/** Whether the background cluster runs and answers, with its programs and their liveness. */
export async function clusterStatus(): Promise<ClusterStatus> {
  const dir = clusterStateDir();
  const state = readClusterState(dir);
  const running = state !== undefined && isProcessRunning(state.pid);
  let ready = false;
  if (running && state.status === 'ready' && state.kubeconfigPath && existsSync(state.kubeconfigPath)) {
    // Loaded here only: the client takes a while to import, and most commands never need it.
    const { KubeConfig, CoreV1Api } = await import('@kubernetes/client-node');
    const kc = new KubeConfig();
    kc.loadFromFile(state.kubeconfigPath);
    ready = await kc
      .makeApiClient(CoreV1Api)
      .readNamespace({ name: 'default' })
      .then(() => true)
      .catch(() => false);
  }
  return {
    running,
    ready,
    status: state?.status ?? 'absent',
    server: state?.server,
    kubeconfigPath: state?.kubeconfigPath,
    pid: state?.pid,
    processes: state?.processes?.map((p) => ({ ...p, alive: isProcessRunning(p.pid) })),
    stateDir: dir,
  };
}
