// A test run's shared cluster: one control plane (and, as root, one node) for every test file of a
// `node --test` run, instead of one per file. The run's global setup opens a run folder and names it in
// the environment (SHARED_RUN_ENV), which every test file inherits; the first file that asks for the
// cluster starts it as a detached daemon (cluster-daemon.ts) recording its state in that folder; the
// others attach to that state; the global teardown stops it. A file run alone (no global setup) is a run
// of its own: it opens the folder itself and stops the cluster when it exits.
//
// The run folder (<tmp>/capstan-run-*):
//   owner            pid of the run's owner (the test runner, or the lone test file); the daemon stops
//                    by itself when that process is gone
//   <kind>/          the cluster's state dir (cluster.ts: state.json, kubeconfig, run/)
//   <kind>.claim     pid of the file that starts it (created exclusively: one starter per run)
//   <kind>.failed    why it failed to start: every later attach fails at once with the same reason
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { isProcessRunning, onExitAfterProcesses } from '../runtime/index.ts';
import {
  type ClusterNodeState,
  type ClusterState,
  readClusterState,
  startCluster,
  stopClusterSync,
} from './cluster.ts';
import { PeerError, PeerErrorCode } from './errors.ts';
import { SHARED_RUN_ENV } from './node.ts';

const RUN_PREFIX = 'capstan-run-';

/** `node`: with a node (root only); `plain`: etcd, kube-apiserver and kube-controller-manager. */
type SharedClusterKind = 'node' | 'plain';
const KINDS: readonly SharedClusterKind[] = ['node', 'plain'];

/** Where a run's shared cluster is (see {@link attachSharedCluster}). */
export interface SharedClusterInfo {
  /** Apiserver URL. */
  server: string;
  /** A kubeconfig for the `system:masters` admin (credentials embedded). */
  kubeconfigPath: string;
  /** kubectl of the same release, when the asset folder has one. */
  kubectl: string | undefined;
  /** With `node`: the node's name, addresses, images and containerd socket. */
  node: ClusterNodeState | undefined;
}

/** Options of {@link attachSharedCluster}. */
export interface AttachSharedClusterOptions {
  /** A cluster with a node (containerd, CNI bridge, kube-scheduler, kubelet): pods run. Root only. */
  node?: boolean;
  /**
   * How long to wait for the cluster (started here or by another file). Default 20 min with a node (the
   * node lock may be held by another run on the machine for up to 15 min), 5 min without.
   */
  timeoutMs?: number;
  /** Progress (finding or building the binaries, waiting for the node lock). */
  log?: (line: string) => void;
}

/**
 * Open a run: a fresh run folder owned by this process, named in `process.env` (inherited by every test
 * file the runner starts). Run folders of earlier runs whose owner is gone (a killed runner) are stopped
 * and removed first. Returns the folder. For a test runner's global setup (`capstan/testing`'s
 * `global-setup` module).
 */
export function openSharedRun(): string {
  cleanStaleRuns();
  const dir = mkdtempSync(join(tmpdir(), RUN_PREFIX));
  writeFileSync(join(dir, 'owner'), String(process.pid));
  process.env[SHARED_RUN_ENV] = dir;
  return dir;
}

/**
 * Close a run: stop its shared clusters (each daemon puts the host back and compares it with before its
 * node), remove the folder. Returns what went wrong, one line each (empty when all is well): a daemon that
 * died during the run, and every way the host differs after the shared node.
 */
export function closeSharedRun(dir: string): string[] {
  const problems: string[] = [];
  for (const kind of KINDS) {
    const last = stopClusterSync(join(dir, kind));
    if (!last || last.status === 'failed') continue; // a failed start already failed the tests that asked
    if (last.status !== 'stopped') {
      problems.push(
        `the shared ${kind} cluster's daemon (pid ${last.pid}) died during the run (${last.status})`,
      );
    }
    for (const line of last.hostCheck?.differences ?? []) {
      problems.push(`the host differs after the shared node: ${line}`);
    }
  }
  rmSync(dir, { recursive: true, force: true });
  if (process.env[SHARED_RUN_ENV] === dir) delete process.env[SHARED_RUN_ENV];
  return problems;
}

/** Stop and remove what runs whose owner died left (their daemons stop by themselves; this is the rest). */
function cleanStaleRuns(): void {
  for (const name of readdirSync(tmpdir())) {
    if (!name.startsWith(RUN_PREFIX)) continue;
    const dir = join(tmpdir(), name);
    const owner = readPid(join(dir, 'owner'));
    // No owner yet: a run opening right now (mkdtemp, then the owner file). Not ours to touch.
    if (owner === undefined || isProcessRunning(owner)) continue;
    closeSharedRun(dir);
  }
}

function readPid(path: string): number | undefined {
  try {
    const pid = Number(readFileSync(path, 'utf8').trim());
    return pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

let lone: string | undefined;

/**
 * The run folder: the global setup's, else (a test file run alone) one of this process's own, closed when
 * it exits; what went wrong then (a daemon death, a host that differs) fails the process.
 */
function currentRun(): string {
  const dir = process.env[SHARED_RUN_ENV];
  if (dir) return dir;
  if (!lone) {
    const opened = openSharedRun();
    lone = opened;
    onExitAfterProcesses(() => {
      const problems = closeSharedRun(opened);
      if (problems.length > 0) {
        process.stderr.write(`capstan shared cluster:\n${problems.join('\n')}\n`);
        process.exitCode = 1;
      }
    });
  }
  return lone;
}

const attached = new Map<SharedClusterKind, Promise<SharedClusterInfo>>();

/**
 * The run's shared cluster: started by the first caller in the run (a detached daemon), attached to by
 * every later one, in this process and in the run's other test files. Stopped by the run's global teardown
 * (or, in a file run alone, when this process exits). Inside a run the node lock is held by the shared
 * node: a node of one's own is refused (`CAP_ERR_PEER_NODE_SHARED`).
 */
export function attachSharedCluster(options: AttachSharedClusterOptions = {}): Promise<SharedClusterInfo> {
  const kind: SharedClusterKind = options.node ? 'node' : 'plain';
  let pending = attached.get(kind);
  if (!pending) {
    pending = attach(kind, options);
    attached.set(kind, pending);
  }
  return pending;
}

async function attach(
  kind: SharedClusterKind,
  options: AttachSharedClusterOptions,
): Promise<SharedClusterInfo> {
  const run = currentRun();
  const owner = readPid(join(run, 'owner'));
  if (owner === undefined) {
    throw new PeerError(PeerErrorCode.sharedCluster, `${run} is not a test run folder (no owner)`);
  }
  const stateDir = join(run, kind);
  const claimPath = join(run, `${kind}.claim`);
  const failedPath = join(run, `${kind}.failed`);
  const timeoutMs = options.timeoutMs ?? (kind === 'node' ? 20 : 5) * 60_000;
  const deadline = Date.now() + timeoutMs;
  const fail = (reason: string): never => {
    throw new PeerError(PeerErrorCode.sharedCluster, `the run's shared ${kind} cluster: ${reason}`);
  };
  for (;;) {
    if (existsSync(failedPath)) fail(`failed to start: ${readFileSync(failedPath, 'utf8')}`);
    const state = readClusterState(stateDir);
    if (state) {
      const alive = isProcessRunning(state.pid);
      if (state.status === 'ready' && alive) return info(state);
      if (state.status === 'failed') fail(`failed to start: ${state.error ?? ''}`);
      // A cluster of this run is never started twice: a dead daemon is a crash, and the run fails for it.
      if (!alive) fail(`its daemon (pid ${state.pid}) died (${state.status}); see ${stateDir}/daemon.log`);
    } else if (claim(claimPath)) {
      try {
        const env = { ...process.env };
        // The daemon's node is the run's node: the refusal of nodes in a shared run is not for it.
        delete env[SHARED_RUN_ENV];
        await startCluster({
          stateDir,
          controllerManager: true,
          node: kind === 'node',
          ownerPid: owner,
          checkHost: kind === 'node',
          env,
          timeoutMs: Math.max(deadline - Date.now(), 1),
          ...(options.log ? { log: options.log } : {}),
        });
      } catch (err) {
        writeFileSync(failedPath, err instanceof Error ? err.message : String(err));
        throw err;
      }
      continue;
    } else {
      // Another file claimed the start. If it died before its daemon wrote a state, start it ourselves.
      const claimant = readPid(claimPath);
      if (claimant !== undefined && !isProcessRunning(claimant) && !readClusterState(stateDir)) {
        rmSync(claimPath, { force: true });
      }
    }
    if (Date.now() > deadline) fail(`not ready within ${Math.round(timeoutMs / 1000)} s`);
    await sleep(250);
  }
}

/** Create the claim file exclusively: true for the one process that starts the cluster. */
function claim(path: string): boolean {
  try {
    writeFileSync(path, String(process.pid), { flag: 'wx' });
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
}

function info(state: ClusterState): SharedClusterInfo {
  return {
    server: state.server ?? '',
    kubeconfigPath: state.kubeconfigPath ?? '',
    kubectl: state.kubectl,
    node: state.node,
  };
}
