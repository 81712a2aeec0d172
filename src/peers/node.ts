import { execFileSync, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import {
  type Dirent,
  existsSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  createHttpTransport,
  freePort,
  httpRequest,
  isProcessRunning,
  onExitAfterProcesses,
  processesWithCommandLine,
} from '../runtime/index.ts';
import { ensurePeers } from './catalogue.ts';
import { PeerError } from './errors.ts';
import {
  type BuiltImage,
  buildImage,
  busyboxImageSpec,
  type ImageSpec,
  pauseImageSpec,
  writeDockerArchive,
} from './images.ts';
import type { KubeAssets } from './kube-assets.ts';
import { type PeerProcess, startPeerProcess } from './process.ts';

/** Options of a node (`startControlPlane({ node: ... })`). */
export interface NodeOptions {
  /** How long to wait for the machine-wide node lock (one node per machine). Default 15 min. */
  lockTimeoutMs?: number;
  /** Extra images to load into the node's containerd (built with the image builder). */
  images?: Array<ImageSpec | BuiltImage>;
  /** Registries on this machine (`127.0.0.1:5000`) pods may pull from over plain HTTP ({@link KubeNode.useRegistry}). */
  registries?: string[];
}

/** A kubelet on a private containerd, with a CNI bridge of its own: pods actually run. */
export interface KubeNode {
  /** The node's name in the cluster. */
  readonly name: string;
  /** Its InternalIP: the bridge's gateway address (kubelet listens there, not on the machine's network). */
  readonly ip: string;
  /** Pod addresses come from this subnet, on bridge {@link KubeNode.bridge}; there is no route out. */
  readonly podSubnet: string;
  /**
   * Service ClusterIPs come from this range; pods route it to the node, where kube-proxy sends it on. The
   * first address is the `kubernetes` Service: pods reach the apiserver at `$KUBERNETES_SERVICE_HOST`.
   */
  readonly serviceSubnet: string;
  readonly bridge: string;
  /** Images loaded at start: `pause` (the sandbox) and `busybox`, both `imagePullPolicy: Never`-ready. */
  readonly images: { readonly pause: string; readonly busybox: string };
  /** containerd's gRPC socket (for `ctr -a <socket> -n k8s.io ...`). */
  readonly containerdAddress: string;
  /** containerd, kube-scheduler, kubelet, kube-proxy. */
  readonly processes: readonly PeerProcess[];
  /** Pack an image (or take a built one) and load it into the node's containerd: `imagePullPolicy: Never` runs it. */
  loadImage(image: ImageSpec | BuiltImage): Promise<void>;
  /**
   * Let pods pull from a registry on this machine over plain HTTP (`image: 127.0.0.1:5000/app:1`, any pull
   * policy): writes its `hosts.toml` in containerd's registry config folder, read at every pull, so a
   * registry started after the node works too.
   */
  useRegistry(host: string): void;
  /** Stop everything and put the host back (see {@link startNode}). Idempotent. */
  stop(): Promise<void>;
}

/** What the node needs from the control plane it joins. */
export interface NodeControlPlane {
  kubeconfigPath: string;
  caPath: string;
  assets: KubeAssets;
  request(path: string): Promise<{ status: number; body: string }>;
}

const NODE_NAME = 'capstan-node';
const BRIDGE = 'capstan0';
const SUBNET = '10.244.0.0/24';
const GATEWAY = '10.244.0.1';

/**
 * The cluster's addresses, the same for every control plane (kubeadm's defaults): Services get ClusterIPs
 * from `serviceSubnet`, the first of which is the `kubernetes` Service (the apiserver, for pods). With a
 * node, the apiserver listens on `nodeIp` (the bridge's gateway): reachable from pods and this machine only.
 */
export const CLUSTER_NETWORK = {
  serviceSubnet: '10.96.0.0/12',
  kubernetesServiceIp: '10.96.0.1',
  nodeIp: GATEWAY,
  podSubnet: SUBNET,
} as const;

/** The nftables tables kube-proxy (nftables mode) owns; it touches nothing else. */
const KUBE_PROXY_TABLES = ['ip kube-proxy', 'ip6 kube-proxy'];
const PAUSE_IMAGE = 'capstan.local/pause:1';
const BUSYBOX_IMAGE = 'capstan.local/busybox:1';

/**
 * What the kubelet and the CNI plugins change on the host whatever their flags say (kubelet's kernel
 * tunables; the bridge plugin's forwarding). Recorded before, written back after.
 */
const SYSCTLS = [
  'kernel/panic',
  'kernel/panic_on_oops',
  'kernel/keys/root_maxkeys',
  'kernel/keys/root_maxbytes',
  'vm/overcommit_memory',
  'vm/panic_on_oom',
  'net/ipv4/ip_forward',
  // Replies from a Service's pod to a pod on the same bridge are bridged, not routed: only with this on do
  // they pass conntrack and get their ClusterIP back. Set on start if it was off.
  'net/bridge/bridge-nf-call-iptables',
];

/** Fixed paths the kubelet or CNI use whatever their configuration says; removed after if they were absent. */
const FIXED_PATHS = [
  '/var/lib/kubelet',
  '/var/log/containers',
  '/var/log/pods',
  '/var/lib/cni',
  '/run/containerd/s', // SHIM_SOCKET_DIR
];

const CGROUP_ROOT = '/sys/fs/cgroup';

/** Where containerd 1.6 shims put their sockets, whichever containerd started them. */
const SHIM_SOCKET_DIR = '/run/containerd/s';

/** Paths of the unix sockets some live process is bound to (`/proc/net/unix`), e.g. running shims. */
function boundUnixSockets(): Set<string> {
  const paths = new Set<string>();
  let table = '';
  try {
    table = readFileSync('/proc/net/unix', 'utf8');
  } catch {
    return paths;
  }
  for (const line of table.split('\n').slice(1)) {
    // Num RefCount Protocol Flags Type St Inode Path: the path is the eighth field, when bound to one.
    const fields = line.trim().split(/\s+/);
    if (fields.length >= 8 && fields[7]!.startsWith('/')) paths.add(fields[7]!);
  }
  return paths;
}

/** The host as the node found it: restored on stop, and by the next start after a crash. */
export interface NodeHostState {
  sysctls: Record<string, string>;
  /** Which of {@link FIXED_PATHS} existed. */
  existing: string[];
  /** Entries of /run/containerd/s (containerd shim sockets; other containerds use it too). */
  shimSockets: string[];
  /** kubepods cgroup folders (every level) that existed. */
  cgroups: string[];
  /** nftables tables (`family name`, e.g. `ip kube-proxy`) that existed; absent in locks of older runs. */
  nftTables?: string[];
}

/** The lock file's content: who holds the node and what to put back. */
interface NodeLock {
  pid: number;
  /** The node's folder; empty for a hold without a node ({@link holdNodeLock}). */
  root: string;
  before: NodeHostState;
  /** Processes whose `CAPSTAN_NODE_LOCK_OWNER` is this may start a node inside this hold. */
  owner?: string;
  /** The hold this node started inside: written back when the node stops (or is found dead). */
  previous?: NodeLock;
}

function readSysctl(key: string): string | undefined {
  try {
    return readFileSync(`/proc/sys/${key}`, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** Every folder of the kubepods cgroup trees, in every hierarchy. */
function kubepodsCgroups(): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    out.push(dir);
    let entries: Dirent[] = [];
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {}
    for (const e of entries) if (e.isDirectory()) walk(join(dir, e.name));
  };
  for (const h of listDir(CGROUP_ROOT)) {
    const dir = join(CGROUP_ROOT, h, 'kubepods');
    if (existsSync(dir)) walk(dir);
  }
  return out.sort();
}

function listDir(dir: string): string[] {
  try {
    return readdirSync(dir).sort();
  } catch {
    return [];
  }
}

/** The nftables tables on the machine (`family name`), or none without the `nft` program. */
function nftTables(): string[] {
  return programOutput('nft', ['list', 'tables'])
    .split('\n')
    .map((l) => l.trim().replace(/^table /, ''))
    .filter(Boolean)
    .sort();
}

/** What a program prints, or '' when it fails or is not installed. */
function programOutput(command: string, args: string[]): string {
  const r = spawnSync(command, args, { encoding: 'utf8' });
  return r.status === 0 ? r.stdout : '';
}

/**
 * The machine's packet-filter rules, as a test compares them before and after a node: the whole nftables
 * ruleset (iptables-nft's rules are in it) without counters, and legacy iptables rules without counters.
 * Empty strings where the programs are missing (nftables comes with the first node start).
 */
export function nodeFirewallRules(): { nft: string; iptablesLegacy: string } {
  return {
    nft: programOutput('nft', ['--stateless', 'list', 'ruleset']),
    iptablesLegacy: programOutput('iptables-legacy-save', [])
      .split('\n')
      .filter((l) => !l.startsWith('#'))
      .map((l) => l.replace(/\[\d+:\d+\]/g, ''))
      .join('\n'),
  };
}

/** Sysctls, fixed paths, shim sockets, cgroups and nftables tables, as a test compares them before and after a node. */
export function nodeHostState(): NodeHostState {
  const sysctls: Record<string, string> = {};
  for (const key of SYSCTLS) {
    const value = readSysctl(key);
    if (value !== undefined) sysctls[key] = value;
  }
  return {
    sysctls,
    existing: FIXED_PATHS.filter((p) => existsSync(p)),
    shimSockets: listDir('/run/containerd/s'),
    cgroups: kubepodsCgroups(),
    nftTables: nftTables(),
  };
}

/**
 * The machine-wide lock: `/run/capstan/node.lock`. Not under the cache root, which `CAPSTAN_CACHE_DIR` or
 * another HOME moves: the bridge, the sysctls and the fixed paths are the machine's, whatever the cache.
 * On tmpfs, so a reboot (which resets what a node changes) also clears it.
 */
export function nodeLockPath(): string {
  return '/run/capstan/node.lock';
}

/**
 * If the node lock's holder is gone (a crashed run, a killed `capstan dev cluster` daemon), put back what it
 * left and release the lock. Returns true when it cleaned up. A live holder is left alone.
 */
export function cleanStaleNode(): boolean {
  const path = nodeLockPath();
  const held = readLock(path);
  if (!held || isProcessRunning(held.pid)) return false;
  clearStale(path, held, () => {});
  return true;
}

function readLock(path: string): NodeLock | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as NodeLock;
  } catch {
    return undefined;
  }
}

/**
 * A lock file written whole: readers never see it half-written (they would take it for a stale one). The
 * folder can vanish between the mkdir and the write (the last holder removes it when empty, see
 * {@link releaseLock}): then make it again. Once the temporary file is in it, it cannot be removed.
 */
function writeTemp(path: string, lock: NodeLock): string {
  const tmp = `${path}.${process.pid}.${randomUUID()}`;
  for (;;) {
    mkdirSync(dirname(path), { recursive: true });
    try {
      writeFileSync(tmp, JSON.stringify(lock), { mode: 0o600 });
      return tmp;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
}

/**
 * Remove the lock file, then its folder if that is now empty: a run leaves no empty `/run/capstan` behind.
 * `rmdir` removes only an empty folder, atomically, so it never takes another user's lock or temporary
 * file with it; a user between its mkdir and its write makes the folder again ({@link writeTemp}).
 */
function releaseLock(path: string): void {
  rmSync(path, { force: true });
  try {
    rmdirSync(dirname(path));
  } catch {
    // ENOTEMPTY (another lock or a temporary file is there), ENOENT (already gone): both are fine.
  }
}

/** Create the lock with its content in one step (a hard link fails if the lock exists). */
function tryCreateLock(path: string, lock: NodeLock): boolean {
  const tmp = writeTemp(path, lock);
  try {
    linkSync(tmp, path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  } finally {
    rmSync(tmp, { force: true });
  }
}

/** Replace the lock's content atomically (rename). */
function rewriteLock(path: string, lock: NodeLock): void {
  renameSync(writeTemp(path, lock), path);
}

function sameLock(a: NodeLock | undefined, b: NodeLock | undefined): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

const OWNER_ENV = 'CAPSTAN_NODE_LOCK_OWNER';

/** The lock is a hold (no node in it) taken by this process or, through the environment, by its parent. */
function isOurHold(held: NodeLock): boolean {
  const token = process.env[OWNER_ENV];
  return held.root === '' && token !== undefined && held.owner === token;
}

/**
 * A stale lock (its holder is gone): put back what that node left, then the hold it ran inside if that
 * hold's process still lives, else remove the lock.
 */
function clearStale(path: string, held: NodeLock | undefined, log: (l: string) => void): void {
  if (held?.root) {
    log(`cleaning up after a node that did not stop (pid ${held.pid}, ${held.root})`);
    restoreHost(held.root, held.before);
  }
  // Another waiter may have cleaned up meanwhile and the lock moved on: then it is not ours to touch.
  if (!sameLock(readLock(path), held)) return;
  if (held?.previous && isProcessRunning(held.previous.pid)) rewriteLock(path, held.previous);
  else releaseLock(path);
}

/**
 * Take the node lock. A lock whose holder is gone (a crashed run) is cleaned up first: its processes,
 * mounts, bridge and cgroups, then its host state written back. Inside a hold of ours ({@link holdNodeLock})
 * it returns that hold, to be written back when the node stops; else undefined (the lock is new).
 */
async function acquireLock(
  path: string,
  lock: NodeLock,
  timeoutMs: number,
  log: (l: string) => void,
): Promise<NodeLock | undefined> {
  const deadline = Date.now() + timeoutMs;
  let told = false;
  for (;;) {
    if (tryCreateLock(path, lock)) return undefined;
    const held = readLock(path);
    if (held && isProcessRunning(held.pid)) {
      if (isOurHold(held)) return held;
      // Another node (or another's hold, or a node of this very process): wait for it.
      if (Date.now() > deadline) {
        throw new PeerError('CAP_ERR_PEER_NODE_BUSY', `another node (pid ${held.pid}) holds ${path}`);
      }
      if (!told) log(`waiting for the node lock held by pid ${held.pid}`);
      told = true;
      await sleep(500);
      continue;
    }
    // Stale: its holder is gone. (Lock files are written whole, so an unreadable one is garbage.)
    clearStale(path, held, log);
  }
}

/**
 * Hold the node lock without a node, e.g. across a test file that compares the host before and after its
 * nodes: nodes this process (or its children, through `CAPSTAN_NODE_LOCK_OWNER` in the environment) start
 * run inside the hold; every other node on the machine waits until `release()`. Inside a hold of ours
 * already (a child of a holder) it returns that hold's owner, and `release()` leaves it to its holder.
 */
export async function holdNodeLock(
  options: { timeoutMs?: number; log?: (l: string) => void } = {},
): Promise<{ owner: string; release(): void }> {
  refuseInSharedRun();
  return holdNodeLockAt(nodeLockPath(), options);
}

/** {@link holdNodeLock} on a lock file of the caller's choosing: for tests of the lock itself. */
export async function holdNodeLockAt(
  path: string,
  options: { timeoutMs?: number; log?: (l: string) => void } = {},
): Promise<{ owner: string; release(): void }> {
  const owner = randomUUID();
  const outer = await acquireLock(
    path,
    { pid: process.pid, root: '', before: nodeHostState(), owner },
    options.timeoutMs ?? 15 * 60_000,
    options.log ?? (() => {}),
  );
  // Nested in our own hold: nothing was written, the outer hold stays (and its owner token with it).
  if (outer?.owner) return { owner: outer.owner, release: () => {} };
  process.env[OWNER_ENV] = owner;
  const release = () => {
    const held = readLock(path);
    if (held?.owner === owner && held.root === '') releaseLock(path);
    if (process.env[OWNER_ENV] === owner) delete process.env[OWNER_ENV];
    forget();
  };
  const forget = onExitAfterProcesses(release);
  return { owner, release };
}

/**
 * Set by a test run that shares one node across its files (`capstan/testing`'s global setup): the run
 * dir. A node started any other way in such a run would wait for the shared node's lock until the run
 * ends; it is refused at once instead, with what to do about it.
 */
export const SHARED_RUN_ENV = 'CAPSTAN_TEST_RUN_DIR';

function refuseInSharedRun(): void {
  if (process.env[SHARED_RUN_ENV] === undefined) return;
  throw new PeerError(
    'CAP_ERR_PEER_NODE_SHARED',
    `this test run shares one node (${SHARED_RUN_ENV} is set): use useSharedCluster({ node: true }), or ` +
      'put a test that needs a node of its own in a *.exclusive.test.ts file (run after the shared ones)',
  );
}

function run(cmd: string, args: string[]): boolean {
  return spawnSync(cmd, args, { stdio: 'ignore' }).status === 0;
}

/** Processes whose command line names `root` (containerd, kubelet, shims), this one aside: by pid. */
function processesUnder(root: string): number[] {
  return processesWithCommandLine(root).filter((pid) => pid !== process.pid);
}

/** Every kubepods cgroup folder not in `keep`, deepest first. */
function newCgroupDirs(keep: string[]): string[] {
  return kubepodsCgroups()
    .filter((d) => !keep.includes(d))
    .sort((a, b) => b.length - a.length);
}

function killCgroupProcs(dirs: string[]): void {
  for (const dir of dirs) {
    for (const line of (() => {
      try {
        return readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n');
      } catch {
        return [];
      }
    })()) {
      const pid = Number(line);
      if (pid > 0) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {}
      }
    }
  }
}

function mountsUnder(prefixes: string[]): string[] {
  let text = '';
  try {
    text = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {}
  const points = text
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((p): p is string => !!p)
    .map((p) => p.replace(/\\040/g, ' '));
  return [
    ...new Set(points.filter((p) => prefixes.some((pre) => p === pre || p.startsWith(`${pre}/`)))),
  ].sort((a, b) => b.length - a.length);
}

/** Where a node (or a crashed one) can have mounts: its root and the fixed paths. */
function mountPrefixes(root: string): string[] {
  return [root, ...FIXED_PATHS, '/run/netns'];
}

/** The mounts a node can leave behind (for tests comparing the host before and after). */
export function nodeMounts(root?: string): string[] {
  return mountsUnder(root ? mountPrefixes(root) : [...FIXED_PATHS, '/run/netns']);
}

/**
 * What a node may change on the host, in a form to compare before and after it: the sysctls, fixed paths
 * and kubepods cgroups of {@link nodeHostState}, the mounts a node can leave ({@link nodeMounts}) and the
 * network interfaces. Left out because they come and go with other programs' containers (dockerd's,
 * from tests running beside a node): shim sockets in `/run/containerd/s`, and `veth*` interfaces (a
 * node's own veths go with its bridge).
 */
export interface HostSnapshot {
  sysctls: Record<string, string>;
  existing: string[];
  cgroups: string[];
  mounts: string[];
  interfaces: string[];
  /** {@link nodeFirewallRules}: kube-proxy's nftables tables must be gone, iptables untouched. */
  firewall: { nft: string; iptablesLegacy: string };
}

/** The host as {@link HostSnapshot} describes it, now. */
export function hostSnapshot(): HostSnapshot {
  const { shimSockets: _, ...state } = nodeHostState();
  const interfaces = listDir('/sys/class/net').filter((name) => !name.startsWith('veth'));
  return { ...state, mounts: nodeMounts(), interfaces, firewall: nodeFirewallRules() };
}

/** How `after` differs from `before`, one line per change (empty when equal). */
export function hostDifferences(before: HostSnapshot, after: HostSnapshot): string[] {
  const out: string[] = [];
  for (const key of new Set([...Object.keys(before.sysctls), ...Object.keys(after.sysctls)])) {
    if (before.sysctls[key] !== after.sysctls[key]) {
      out.push(`sysctl ${key}: ${before.sysctls[key]} before, ${after.sysctls[key]} after`);
    }
  }
  for (const kind of ['nft', 'iptablesLegacy'] as const) {
    if (before.firewall[kind] !== after.firewall[kind]) out.push(`firewall: the ${kind} rules differ`);
  }
  for (const field of ['existing', 'cgroups', 'mounts', 'interfaces'] as const) {
    for (const item of after[field]) if (!before[field].includes(item)) out.push(`${field}: new ${item}`);
    for (const item of before[field]) if (!after[field].includes(item)) out.push(`${field}: gone ${item}`);
  }
  return out;
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/**
 * Put the host back after a node in `root` (synchronous: it also runs in an exit hook): kill what is left
 * (programs naming `root`, anything in the new kubepods cgroups), unmount, delete the bridge and
 * kube-proxy's nftables tables, remove the cgroups, write the sysctls back, remove fixed paths that did not
 * exist, and `root`.
 */
export function restoreHost(root: string, before: NodeHostState): void {
  for (const pid of processesUnder(root)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {}
  }
  const cgroups = newCgroupDirs(before.cgroups);
  for (let i = 0; i < 50; i++) {
    killCgroupProcs(cgroups);
    if (processesUnder(root).length === 0 && cgroups.every((d) => cgroupEmpty(d))) break;
    sleepSync(100);
  }
  for (const point of mountsUnder(mountPrefixes(root))) {
    if (!run('umount', [point])) run('umount', ['-l', point]);
  }
  if (existsSync(`/sys/class/net/${BRIDGE}`)) run('ip', ['link', 'delete', BRIDGE]);
  // kube-proxy never removes its rules when it stops: its tables go here (the same as `kube-proxy
  // --cleanup`'s nftables part, without its iptables and IPVS parts, which would flush every IPVS service on
  // the machine). A table that was there before is not ours.
  const tables = nftTables();
  for (const table of KUBE_PROXY_TABLES) {
    if (!(before.nftTables ?? []).includes(table) && tables.includes(table)) {
      run('nft', ['delete', 'table', ...table.split(' ')]);
    }
  }
  for (const dir of cgroups) {
    for (let i = 0; i < 20; i++) {
      try {
        rmdirSync(dir);
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') break;
        sleepSync(100);
      }
    }
  }
  for (const [key, value] of Object.entries(before.sysctls)) {
    if (readSysctl(key) !== value) {
      try {
        writeFileSync(`/proc/sys/${key}`, value);
      } catch {}
    }
  }
  // Shim sockets of every containerd on the machine share /run/containerd/s (dockerd's too, which may have
  // started containers while the node ran): remove only new sockets no live process is bound to any more.
  const bound = boundUnixSockets();
  for (const socket of listDir(SHIM_SOCKET_DIR)) {
    const path = join(SHIM_SOCKET_DIR, socket);
    if (!before.shimSockets.includes(socket) && !bound.has(path)) rmSync(path, { force: true });
  }
  for (const path of [...FIXED_PATHS].reverse()) {
    if (before.existing.includes(path)) continue;
    if (path === SHIM_SOCKET_DIR) {
      // Only when nothing else lives there now.
      if (listDir(path).length === 0) rmSync(path, { recursive: true, force: true });
    } else {
      rmSync(path, { recursive: true, force: true });
    }
  }
  if (!before.existing.includes('/run/containerd/s') && listDir('/run/containerd').length === 0) {
    rmSync('/run/containerd', { recursive: true, force: true });
  }
  rmSync(root, { recursive: true, force: true });
}

function cgroupEmpty(dir: string): boolean {
  try {
    return readFileSync(join(dir, 'cgroup.procs'), 'utf8').trim() === '';
  } catch {
    return true;
  }
}

function toml(value: string): string {
  return JSON.stringify(value);
}

function containerdConfig(dir: string, cniConfDir: string, registryDir: string): string {
  return `version = 2
root = ${toml(join(dir, 'root'))}
state = ${toml(join(dir, 'state'))}
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = ${toml(join(dir, 'containerd.sock'))}

[ttrpc]
  address = ${toml(join(dir, 'containerd.sock.ttrpc'))}

[debug]
  address = ""

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = ${toml(join(dir, 'opt'))}

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = ${toml(PAUSE_IMAGE)}
  # These VMs deny CAP_SYS_RESOURCE: without this every sandbox fails to set the pause's oom_score_adj.
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  disable_apparmor = true
  enable_selinux = false

  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"

    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false

  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = ${toml(cniConfDir)}

  # hosts.toml per registry (<dir>/<host:port>/hosts.toml), read at each pull: useRegistry() adds one.
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = ${toml(registryDir)}
`;
}

function cniConfig(ipamDir: string): string {
  return JSON.stringify(
    {
      cniVersion: '0.4.0',
      name: 'capstan',
      plugins: [
        {
          type: 'bridge',
          bridge: BRIDGE,
          isGateway: true,
          // Pods talk to each other and to this machine only: no masquerade, and no default route.
          ipMasq: false,
          hairpinMode: true,
          ipam: {
            type: 'host-local',
            ranges: [[{ subnet: SUBNET, gateway: GATEWAY }]],
            // The one route besides the pod subnet: Service ClusterIPs, via the gateway, where kube-proxy's
            // rules send them on (to a pod, or to the apiserver for the `kubernetes` Service).
            routes: [{ dst: CLUSTER_NETWORK.serviceSubnet }],
            dataDir: join(ipamDir),
          },
        },
      ],
    },
    null,
    2,
  );
}

function kubeletConfig(opts: {
  caPath: string;
  port: number;
  healthzPort: number;
  socket: string;
  podLogsDir: string;
}): string {
  return JSON.stringify(
    {
      apiVersion: 'kubelet.config.k8s.io/v1beta1',
      kind: 'KubeletConfiguration',
      address: GATEWAY,
      port: opts.port,
      readOnlyPort: 0,
      healthzBindAddress: '127.0.0.1',
      healthzPort: opts.healthzPort,
      // Only the apiserver (its kubelet client certificate) may read logs or exec.
      authentication: {
        anonymous: { enabled: false },
        webhook: { enabled: true },
        x509: { clientCAFile: opts.caPath },
      },
      authorization: { mode: 'Webhook' },
      cgroupDriver: 'cgroupfs',
      failCgroupV1: false,
      failSwapOn: false,
      makeIPTablesUtilChains: false,
      containerRuntimeEndpoint: `unix://${opts.socket}`,
      imageServiceEndpoint: `unix://${opts.socket}`,
      podLogsDir: opts.podLogsDir,
      // A shared test machine's disk and memory run high: never evict test pods or collect their images.
      evictionHard: { 'memory.available': '1Mi', 'nodefs.available': '1%', 'imagefs.available': '1%' },
      imageGCHighThresholdPercent: 100,
      imageGCLowThresholdPercent: 99,
      nodeStatusUpdateFrequency: '2s',
      nodeStatusReportFrequency: '10s',
      registerNode: true,
      serializeImagePulls: false,
      resolvConf: '/etc/resolv.conf',
    },
    null,
    2,
  );
}

async function healthz(port: number): Promise<boolean> {
  const http = createHttpTransport({
    origin: `https://127.0.0.1:${port}`,
    tls: { rejectUnauthorized: false },
    retry: false,
  });
  try {
    const res = await httpRequest(http, { path: '/healthz', timeouts: { deadlineMs: 5_000 } });
    return res.status === 200;
  } catch {
    return false;
  } finally {
    await http.destroy();
  }
}

async function httpHealthz(port: number): Promise<boolean> {
  const http = createHttpTransport({ origin: `http://127.0.0.1:${port}`, retry: false });
  try {
    const res = await httpRequest(http, { path: '/healthz', timeouts: { deadlineMs: 5_000 } });
    return res.status === 200;
  } catch {
    return false;
  } finally {
    await http.destroy();
  }
}

function importImage(image: ImageSpec | BuiltImage, dir: string, socket: string): void {
  const built = 'manifestDigest' in image ? image : buildImage(image);
  const file = join(dir, `${built.name.replace(/[^a-z0-9.-]/gi, '_')}.tar`);
  writeDockerArchive(built, file);
  try {
    execFileSync('ctr', ['--address', socket, '--namespace', 'k8s.io', 'images', 'import', file], {
      stdio: 'pipe',
    });
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString() ?? '';
    throw new PeerError('CAP_ERR_PEER_NODE', `ctr images import ${built.name} failed`, stderr, {
      cause: err,
    });
  } finally {
    rmSync(file, { force: true });
  }
}

/** A registry on this machine, reached over plain HTTP: its containerd `hosts.toml`. */
function writeRegistryHosts(registryDir: string, host: string): void {
  if (!/^[a-z0-9.-]+(:\d+)?$/i.test(host)) {
    throw new PeerError('CAP_ERR_PEER_CONFIG', `not a registry host[:port]: ${host}`);
  }
  mkdirSync(join(registryDir, host), { recursive: true });
  writeFileSync(
    join(registryDir, host, 'hosts.toml'),
    `server = ${toml(`http://${host}`)}

[host.${toml(`http://${host}`)}]
  capabilities = ["pull", "resolve"]
`,
  );
}

/** Where the `nft` program is (Debian's nftables, part of the `node` peer). */
function nftPath(): string {
  const found = ['/usr/sbin/nft', '/sbin/nft', '/usr/bin/nft'].find((p) => existsSync(p));
  if (!found)
    throw new PeerError('CAP_ERR_PEER_NODE', 'no nft program (Debian package nftables) for kube-proxy');
  return found;
}

function kubeProxyConfig(opts: { kubeconfigPath: string; healthzPort: number; metricsPort: number }): string {
  return JSON.stringify(
    {
      apiVersion: 'kubeproxy.config.k8s.io/v1alpha1',
      kind: 'KubeProxyConfiguration',
      // nftables mode: everything kube-proxy writes lives in its own two tables (ip and ip6 kube-proxy).
      mode: 'nftables',
      clientConnection: { kubeconfig: opts.kubeconfigPath },
      hostnameOverride: NODE_NAME,
      bindAddress: GATEWAY,
      // Loopback, on free ports: upstream's default healthz address is 0.0.0.0:10256.
      healthzBindAddress: `127.0.0.1:${opts.healthzPort}`,
      metricsBindAddress: `127.0.0.1:${opts.metricsPort}`,
      bindAddressHardFail: true,
      clusterCIDR: SUBNET,
      detectLocalMode: 'ClusterCIDR',
      // NodePorts on the node's InternalIP (the bridge's gateway) only.
      nodePortAddresses: ['primary'],
      // Zero: leave the machine's conntrack table size and timeouts alone (the defaults write four sysctls).
      conntrack: {
        maxPerCore: 0,
        min: 0,
        tcpEstablishedTimeout: '0s',
        tcpCloseWaitTimeout: '0s',
        udpTimeout: '0s',
        udpStreamTimeout: '0s',
      },
      // A Service or endpoint change is programmed at once (upstream waits at least 1 s between syncs).
      nftables: { syncPeriod: '30s', minSyncPeriod: '0s' },
      // Upstream asks for -999, which these VMs refuse (no CAP_SYS_RESOURCE): keep the inherited score.
      oomScoreAdj: 0,
    },
    null,
    2,
  );
}

/**
 * Pack an image and load it into the containerd listening on `containerdAddress`: a node's, also one
 * another process runs (the shared test cluster's node, whose address its state records). Root only.
 */
export function loadNodeImage(containerdAddress: string, spec: ImageSpec | BuiltImage): void {
  const dir = mkdtempSync(join(tmpdir(), 'capstan-image-'));
  try {
    importImage(spec, dir, containerdAddress);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * An HTTPS exchange with the `kubernetes` Service's ClusterIP, checking the apiserver's certificate against
 * `caPem` for that IP: true once kube-proxy routes it (any HTTP status will do).
 */
async function kubernetesServiceAnswers(caPem: string): Promise<boolean> {
  const http = createHttpTransport({
    origin: `https://${CLUSTER_NETWORK.kubernetesServiceIp}:443`,
    tls: { ca: caPem },
    retry: false,
  });
  try {
    const res = await httpRequest(http, { path: '/readyz', timeouts: { deadlineMs: 2_000 } });
    await res.body.text();
    return true;
  } catch {
    return false;
  } finally {
    await http.destroy();
  }
}

/**
 * The first half of a node, taken before its control plane starts, because the apiserver listens on the
 * bridge: the machine-wide lock, the node's folder, the bridge `capstan0` with its gateway address.
 */
export interface NodeReservation {
  /** The node's folder (outside the control plane's, which is removed recursively). */
  readonly root: string;
  /** The bridge's gateway address: the node's InternalIP, where the apiserver and the kubelet listen. */
  readonly ip: string;
  /** Put the host back and release the lock (see {@link restoreHost}). Idempotent; the node's `stop()` ends with it. */
  release(): void;
}

/**
 * Take the machine's node (the lock; a crashed run's leftovers are cleaned up first) and make the bridge
 * `capstan0` on 10.244.0.0/24 with no route out. Root only. Installs the `node` apt peer if a package is
 * missing. Every later step of the node ({@link startNode}) runs inside this reservation.
 */
export async function reserveNode(
  options: NodeOptions & { log: (l: string) => void },
): Promise<NodeReservation> {
  const { log } = options;
  if (process.getuid?.() !== 0) {
    throw new PeerError('CAP_ERR_PEER_USER', 'a node (kubelet, containerd, a bridge) needs root');
  }
  // Not under the control plane's folder: that one is removed recursively, and nothing may recurse into
  // a node's folder before its mounts are gone.
  refuseInSharedRun();
  const root = mkdtempSync(join(tmpdir(), 'capstan-node-'));
  const before = nodeHostState();
  const owner = randomUUID();
  let previous: NodeLock | undefined;
  try {
    previous = await acquireLock(
      nodeLockPath(),
      { pid: process.pid, root, before, owner },
      options.lockTimeoutMs ?? 15 * 60_000,
      log,
    );
  } catch (err) {
    rmSync(root, { recursive: true, force: true });
    throw err;
  }
  // The lock was taken after the snapshot: re-read, in case a stale run's cleanup just changed the host.
  const state = nodeHostState();
  const lock: NodeLock = { pid: process.pid, root, before: state, owner, ...(previous ? { previous } : {}) };
  rewriteLock(nodeLockPath(), lock);
  let released = false;
  const restore = () => {
    restoreHost(root, state);
    // Back to the hold this node ran inside, if any; else free.
    if (previous) rewriteLock(nodeLockPath(), previous);
    else releaseLock(nodeLockPath());
  };
  const forget = onExitAfterProcesses(restore);
  const release = () => {
    if (released) return;
    released = true;
    restore();
    forget();
  };
  try {
    // Under the lock: no two nodes run apt at once. A no-op (dpkg queries) when all is installed.
    ensurePeers(['node'], log);
    if (execFileSync('ip', ['route', 'show', SUBNET]).toString().trim() !== '') {
      throw new PeerError('CAP_ERR_PEER_NODE', `${SUBNET} is already routed on this machine`);
    }
    const foreign = KUBE_PROXY_TABLES.filter((t) => state.nftTables?.includes(t));
    if (foreign.length > 0) {
      throw new PeerError(
        'CAP_ERR_PEER_NODE',
        `nftables table ${foreign.join(', ')} exists: another kube-proxy runs on this machine (or left its rules: nft delete table ${foreign[0]})`,
      );
    }
    // The bridge exists before the apiserver and the kubelet, which listen on its gateway address.
    execFileSync('ip', ['link', 'add', BRIDGE, 'type', 'bridge']);
    execFileSync('ip', ['addr', 'add', `${GATEWAY}/24`, 'dev', BRIDGE]);
    execFileSync('ip', ['link', 'set', BRIDGE, 'up']);
    if (readSysctl('net/bridge/bridge-nf-call-iptables') === '0') {
      writeFileSync('/proc/sys/net/bridge/bridge-nf-call-iptables', '1');
    }
  } catch (err) {
    release();
    throw err;
  }
  return { root, ip: GATEWAY, release };
}

/**
 * Join a node to a control plane, inside a {@link reserveNode} reservation: a private containerd (own root,
 * state and sockets; CRI on) whose pods get addresses on the bridge, kube-scheduler, a kubelet and
 * kube-proxy (nftables mode: Service ClusterIPs route, the `kubernetes` Service to the apiserver). Resolves
 * when the node is Ready, the `default` ServiceAccount exists and the `kubernetes` Service answers on its
 * ClusterIP.
 *
 * `stop()` (also run on process exit) puts the host back: processes, mounts, the bridge, kubepods
 * cgroups, kube-proxy's nftables tables, the sysctls the kubelet changed, and the fixed paths it created.
 */
export async function startNode(
  cp: NodeControlPlane,
  reservation: NodeReservation,
  options: NodeOptions & { readyTimeoutMs: number; log: (l: string) => void; signal?: AbortSignal },
): Promise<KubeNode> {
  const { log, readyTimeoutMs } = options;
  const { root } = reservation;
  if (!cp.assets.kubelet || !cp.assets.kubeScheduler || !cp.assets.kubeProxy) {
    reservation.release();
    throw new PeerError(
      'CAP_ERR_PEER_ASSETS',
      `no kubelet, kube-scheduler or kube-proxy in ${cp.assets.dir}`,
    );
  }
  const processes: PeerProcess[] = [];
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    for (const p of [...processes].reverse()) await p.stop();
    reservation.release();
  };
  try {
    const ctrDir = join(root, 'containerd');
    const cniDir = join(root, 'cni');
    mkdirSync(join(cniDir, 'net.d'), { recursive: true });
    mkdirSync(ctrDir, { recursive: true });
    writeFileSync(join(cniDir, 'net.d', '10-capstan.conflist'), cniConfig(join(cniDir, 'ipam')));
    const registryDir = join(ctrDir, 'registries');
    mkdirSync(registryDir);
    for (const host of options.registries ?? []) writeRegistryHosts(registryDir, host);
    writeFileSync(join(ctrDir, 'config.toml'), containerdConfig(ctrDir, join(cniDir, 'net.d'), registryDir));
    const socket = join(ctrDir, 'containerd.sock');
    const env = { ...process.env, PATH: `/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin` };

    log('starting containerd');
    processes.push(
      await startPeerProcess({
        name: 'containerd',
        command: 'containerd',
        args: ['--config', join(ctrDir, 'config.toml')],
        env,
        dir: ctrDir,
        keepDir: true,
        ready: async () =>
          existsSync(socket) && run('ctr', ['--address', socket, '--namespace', 'k8s.io', 'version']),
        readyTimeoutMs,
      }),
    );
    const imagesDir = join(root, 'images');
    mkdirSync(imagesDir);
    importImage(pauseImageSpec(imagesDir, PAUSE_IMAGE), imagesDir, socket);
    importImage(busyboxImageSpec(BUSYBOX_IMAGE), imagesDir, socket);
    for (const spec of options.images ?? []) importImage(spec, imagesDir, socket);

    log('starting kube-scheduler');
    const schedDir = join(root, 'kube-scheduler');
    mkdirSync(schedDir);
    const schedPort = await freePort();
    processes.push(
      await startPeerProcess({
        name: 'kube-scheduler',
        command: cp.assets.kubeScheduler,
        args: [
          `--kubeconfig=${cp.kubeconfigPath}`,
          `--authentication-kubeconfig=${cp.kubeconfigPath}`,
          `--authorization-kubeconfig=${cp.kubeconfigPath}`,
          '--bind-address=127.0.0.1',
          `--secure-port=${schedPort}`,
          `--cert-dir=${schedDir}`,
          '--leader-elect=false',
        ],
        dir: schedDir,
        keepDir: true,
        ready: () => healthz(schedPort),
        readyTimeoutMs,
      }),
    );

    log('starting kubelet');
    const kubeletDir = join(root, 'kubelet');
    mkdirSync(kubeletDir);
    const [port, healthzPort] = await Promise.all([freePort(), freePort()]);
    const configPath = join(kubeletDir, 'config.json');
    writeFileSync(
      configPath,
      kubeletConfig({ caPath: cp.caPath, port, healthzPort, socket, podLogsDir: join(root, 'pod-logs') }),
    );
    processes.push(
      await startPeerProcess({
        name: 'kubelet',
        command: cp.assets.kubelet,
        args: [
          `--config=${configPath}`,
          `--kubeconfig=${cp.kubeconfigPath}`,
          `--root-dir=${join(kubeletDir, 'root')}`,
          `--cert-dir=${join(kubeletDir, 'pki')}`,
          `--hostname-override=${NODE_NAME}`,
          `--node-ip=${GATEWAY}`,
          '--v=1',
        ],
        env,
        dir: kubeletDir,
        keepDir: true,
        ready: () => httpHealthz(healthzPort),
        readyTimeoutMs,
      }),
    );

    log('starting kube-proxy');
    const proxyDir = join(root, 'kube-proxy');
    const proxyBin = join(proxyDir, 'bin');
    mkdirSync(proxyBin, { recursive: true });
    // `nft` is the only program on kube-proxy's PATH. At start-up it "cleans up" after the other proxy modes
    // with whatever it finds: iptables (deleting KUBE-* chains from the machine's nat table) and IPVS
    // (flushing every IPVS service on the machine). Without iptables and modprobe it can do neither.
    symlinkSync(nftPath(), join(proxyBin, 'nft'));
    const [proxyHealthzPort, proxyMetricsPort] = await Promise.all([freePort(), freePort()]);
    const proxyConfigPath = join(proxyDir, 'config.json');
    writeFileSync(
      proxyConfigPath,
      kubeProxyConfig({
        kubeconfigPath: cp.kubeconfigPath,
        healthzPort: proxyHealthzPort,
        metricsPort: proxyMetricsPort,
      }),
    );
    processes.push(
      await startPeerProcess({
        name: 'kube-proxy',
        command: cp.assets.kubeProxy,
        args: [`--config=${proxyConfigPath}`, '--v=1'],
        env: { ...process.env, PATH: proxyBin },
        dir: proxyDir,
        keepDir: true,
        ready: () => httpHealthz(proxyHealthzPort),
        readyTimeoutMs,
      }),
    );

    log('waiting for the node to be Ready, the default ServiceAccount and the kubernetes Service');
    const caPem = readFileSync(cp.caPath, 'utf8');
    const deadline = Date.now() + readyTimeoutMs;
    for (;;) {
      const nodeRes = await cp.request(`/api/v1/nodes/${NODE_NAME}`);
      const ready =
        nodeRes.status === 200 &&
        (
          JSON.parse(nodeRes.body) as { status?: { conditions?: Array<{ type: string; status: string }> } }
        ).status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
      const sa = await cp.request('/api/v1/namespaces/default/serviceaccounts/default');
      if (ready && sa.status === 200 && (await kubernetesServiceAnswers(caPem))) break;
      if (Date.now() > deadline) {
        throw new PeerError(
          'CAP_ERR_PEER_NOT_READY',
          `node ${NODE_NAME} not Ready (or no default ServiceAccount, or the kubernetes Service unrouted) in time`,
          processes
            .slice(-2)
            .map((p) => `${p.name}:\n${p.logTail(30)}`)
            .join('\n'),
        );
      }
      if (options.signal?.aborted) {
        throw new PeerError('CAP_ERR_PEER_ABORTED', 'node start-up aborted', '', {
          cause: options.signal.reason,
        });
      }
      await sleep(200);
    }
    return {
      name: NODE_NAME,
      ip: GATEWAY,
      podSubnet: SUBNET,
      serviceSubnet: CLUSTER_NETWORK.serviceSubnet,
      bridge: BRIDGE,
      images: { pause: PAUSE_IMAGE, busybox: BUSYBOX_IMAGE },
      containerdAddress: socket,
      processes,
      loadImage: async (image) => importImage(image, imagesDir, socket),
      useRegistry: (host) => writeRegistryHosts(registryDir, host),
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
