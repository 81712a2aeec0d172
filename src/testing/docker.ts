import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  createReadStream,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DockerClient } from '../docker/index.ts';
import { ensurePeers, PeerError, type PeerProcess, peerCacheDir, startPeerProcess } from '../peers/index.ts';
import {
  createHttpTransport,
  freePort,
  httpRequest,
  makeProcessDir,
  processesWithCommandLine,
} from '../runtime/index.ts';
import { createTestCertificates } from './tls.ts';

/** Options of {@link startDocker}. */
export interface StartDockerOptions {
  /** Run dockerd with `--live-restore`: containers keep running across {@link DockerPeer.restart}. */
  liveRestore?: boolean;
  /** How long dockerd may take to answer `/_ping`. Default 60 s. */
  readyTimeoutMs?: number;
  /**
   * Also listen on `tcp://127.0.0.1:<free port>` with `--tlsverify`, using a throwaway CA, server and client
   * certificates (from a throwaway CA) in `<dir>/certs`, laid out for `DOCKER_CERT_PATH`.
   */
  tls?: boolean;
}

/** A private dockerd for tests, with the `busybox:local` image imported. */
export interface DockerPeer {
  /** The daemon's unix socket. */
  readonly socketPath: string;
  /** `unix://<socketPath>`, for `DOCKER_HOST` or `new DockerClient({ host })`. */
  readonly dockerHost: string;
  /** A small local image (busybox applets as /bin/*), imported on start: no registry needed. */
  readonly image: string;
  /** Private folder holding socket, data root, exec root and log. */
  readonly dir: string;
  readonly liveRestore: boolean;
  /** With `tls`: `tcp://127.0.0.1:<port>` (TLS, client certificate required). */
  readonly tcpHost?: string;
  /** With `tls`: folder holding `ca.pem`, `cert.pem`, `key.pem` (client), for `DOCKER_CERT_PATH`. */
  readonly certPath?: string;
  /** Tail of dockerd's log (all runs), for failure messages. */
  logTail(lines?: number): string;
  /**
   * Stop dockerd and start it again on the same data root (with live restore, containers keep running).
   * `whileDown` runs between the two, e.g. to let a container exit while no daemon watches.
   */
  restart(options?: { whileDown?: () => Promise<void> }): Promise<void>;
  /** Kill all containers, stop dockerd, unmount and remove everything. Idempotent. */
  stop(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** The image every {@link DockerPeer} holds. */
export const DOCKER_TEST_IMAGE = 'busybox:local';

/** Options of {@link createTestContainer}. */
export interface TestContainerOptions {
  name?: string;
  labels?: Record<string, string>;
  /** Run under a TTY (raw log stream, no multiplexing). */
  tty?: boolean;
  /** Start it once created (default false). */
  start?: boolean;
}

/**
 * Create a container of the test image running `cmd`, with no network (tests never send traffic off this
 * machine), and start it when asked; resolves to its id.
 */
export async function createTestContainer(
  client: DockerClient,
  cmd: string[],
  options: TestContainerOptions = {},
): Promise<string> {
  const { Id } = await client.createContainer(
    {
      Image: DOCKER_TEST_IMAGE,
      Cmd: cmd,
      Tty: options.tty ?? false,
      Labels: options.labels ?? {},
      HostConfig: { NetworkMode: 'none' },
    },
    options.name ? { name: options.name } : {},
  );
  if (options.start) await client.startContainer(Id);
  return Id;
}

/**
 * Build (once, cached in the peer cache dir) a rootfs tarball with Debian's static busybox as `/bin/busybox`
 * and a symlink per applet. Returns its path.
 */
export function busyboxTarball(): string {
  const cache = peerCacheDir('docker');
  const tarball = join(cache, 'busybox.tar');
  if (existsSync(tarball)) return tarball;
  mkdirSync(cache, { recursive: true });
  const work = join(cache, `build-${process.pid}-${randomBytes(4).toString('hex')}`);
  const root = join(work, 'root');
  try {
    for (const d of ['bin', 'tmp', 'etc', 'proc', 'sys', 'dev'])
      mkdirSync(join(root, d), { recursive: true });
    const copy = spawnSync('cp', ['/bin/busybox', join(root, 'bin', 'busybox')]);
    if (copy.status !== 0)
      throw new PeerError('CAP_ERR_PEER_INSTALL', `cannot copy /bin/busybox: ${copy.stderr}`);
    const list = spawnSync('/bin/busybox', ['--list'], { encoding: 'utf8' });
    if (list.status !== 0) throw new PeerError('CAP_ERR_PEER_INSTALL', 'busybox --list failed', list.stderr);
    for (const applet of list.stdout.split('\n')) {
      if (applet && applet !== 'busybox') symlinkSync('busybox', join(root, 'bin', applet));
    }
    const tmp = join(work, 'busybox.tar');
    const tar = spawnSync('tar', ['-C', root, '-cf', tmp, '.'], { encoding: 'utf8' });
    if (tar.status !== 0)
      throw new PeerError('CAP_ERR_PEER_INSTALL', 'tar of busybox rootfs failed', tar.stderr);
    // rename is atomic: parallel test files building at once both end with a whole tarball.
    renameSync(tmp, tarball);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return tarball;
}

/** True when the daemon on `socketPath` answers `/_ping` with 200 within 2 s. */
async function ping(socketPath: string): Promise<boolean> {
  // A fresh connection per probe: the socket file may not exist yet, or belong to a daemon just restarted.
  const http = createHttpTransport({ origin: 'http://localhost', socketPath, retry: false });
  try {
    const res = await httpRequest(http, { path: '/_ping', timeouts: { deadlineMs: 2_000 } });
    await res.body.dump();
    return res.status === 200;
  } catch {
    return false;
  } finally {
    await http.destroy();
  }
}

/** Dirs of daemons not stopped yet: swept synchronously if the test process exits without stopping them. */
const liveDirs = new Set<string>();
let sweepInstalled = false;

function installExitSweep(): void {
  if (sweepInstalled) return;
  sweepInstalled = true;
  // 'exit' handlers cannot await: kill what runs from the dir (dockerd, containerd, shims and their
  // containers), unmount and remove, all synchronously.
  process.on('exit', () => {
    for (const dir of liveDirs) {
      const pids = processesWithCommandLine(dir);
      for (const pid of [...childrenOf(pids), ...pids]) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {}
      }
      for (const mount of mountsUnder(dir)) spawnSync('umount', ['-l', mount]);
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

/** A throwaway CA plus server (IP 127.0.0.1) and client certificates, named as the Docker CLI expects. */
async function makeCertificates(dir: string): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const certs = await createTestCertificates({ hosts: ['127.0.0.1'], client: 'capstan-client' });
  const files: Record<string, string> = {
    'ca.pem': certs.caPem,
    'server-cert.pem': certs.certPem,
    'server-key.pem': certs.keyPem,
    'cert.pem': certs.clientCertPem!,
    'key.pem': certs.clientKeyPem!,
  };
  for (const [name, pem] of Object.entries(files)) {
    writeFileSync(join(dir, name), pem, { mode: name.endsWith('key.pem') ? 0o600 : 0o644 });
  }
}

function childrenOf(pids: number[]): number[] {
  const wanted = new Set(pids);
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (wanted.has(ppid)) out.push(Number(entry));
    } catch {}
  }
  return out;
}

function mountsUnder(dir: string): string[] {
  const text = readFileSync('/proc/self/mountinfo', 'utf8');
  const points = text
    .split('\n')
    .map((line) => line.split(' ')[4] ?? '')
    .map((p) => p.replace(/\\040/g, ' '))
    .filter((p) => p === dir || p.startsWith(`${dir}/`));
  // Deepest first, so parents unmount after their children.
  return [...new Set(points)].sort((a, b) => b.length - a.length);
}

/**
 * Start a private dockerd (own socket, data root, exec root and managed containerd namespace) with
 * `--bridge none` and no iptables, so it touches no host networking: run containers with `--network none`.
 * Imports `busybox:local` from a cached tarball. Several may run at once.
 */
export async function startDocker(options: StartDockerOptions = {}): Promise<DockerPeer> {
  ensurePeers(['docker']);
  const tarball = busyboxTarball();
  const dir = makeProcessDir('docker');
  const socketPath = join(dir, 'd.sock');
  const ns = `capstan-${randomBytes(4).toString('hex')}`;
  const liveRestore = options.liveRestore ?? false;
  let tlsArgs: string[] = [];
  let tcpHost: string | undefined;
  let certPath: string | undefined;
  if (options.tls) {
    certPath = join(dir, 'certs');
    try {
      await makeCertificates(certPath);
    } catch (err) {
      rmSync(dir, { recursive: true, force: true });
      throw err;
    }
    tcpHost = `tcp://127.0.0.1:${await freePort()}`;
    tlsArgs = [
      '--host',
      tcpHost,
      '--tlsverify',
      '--tlscacert',
      join(certPath, 'ca.pem'),
      '--tlscert',
      join(certPath, 'server-cert.pem'),
      '--tlskey',
      join(certPath, 'server-key.pem'),
    ];
  }
  const args = [
    ...tlsArgs,
    '--host',
    `unix://${socketPath}`,
    '--data-root',
    join(dir, 'data'),
    '--exec-root',
    join(dir, 'exec'),
    '--pidfile',
    join(dir, 'd.pid'),
    '--bridge',
    'none',
    '--iptables=false',
    '--ip6tables=false',
    '--userland-proxy=false',
    '--containerd-namespace',
    ns,
    '--containerd-plugins-namespace',
    `${ns}-plugins`,
    // Containers that ignore SIGTERM (sleep as PID 1) would hold a stop for the default 15 s.
    '--shutdown-timeout',
    '2',
    ...(liveRestore ? ['--live-restore'] : []),
  ];
  let proc: PeerProcess | undefined;
  const launch = async () => {
    proc = await startPeerProcess({
      name: 'docker',
      command: 'dockerd',
      args,
      dir,
      keepDir: true,
      ready: () => ping(socketPath),
      readyTimeoutMs: options.readyTimeoutMs ?? 60_000,
      stopTimeoutMs: 20_000,
    });
  };
  const cleanup = async () => {
    liveDirs.delete(dir);
    const leftovers = processesWithCommandLine(dir);
    if (leftovers.length) {
      for (const pid of [...childrenOf(leftovers), ...leftovers]) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {}
      }
      await sleep(200);
    }
    // A lazily unmounted overlay can stay busy for a moment (EBUSY): unmount again and retry.
    for (let attempt = 0; ; attempt++) {
      for (const mount of mountsUnder(dir)) spawnSync('umount', ['-l', mount]);
      try {
        rmSync(dir, { recursive: true, force: true, maxRetries: 3, retryDelay: 100 });
        return;
      } catch (err) {
        if (attempt >= 5) {
          throw new PeerError(
            'CAP_ERR_PEER_STOP',
            `cannot remove dockerd dir ${dir}: ${(err as Error).message}`,
            '',
            {
              cause: err,
            },
          );
        }
        await sleep(300);
      }
    }
  };
  liveDirs.add(dir);
  installExitSweep();
  try {
    await launch();
    const client = new DockerClient({ host: `unix://${socketPath}` });
    try {
      await client.importImage(createReadStream(tarball), DOCKER_TEST_IMAGE);
    } finally {
      await client.close();
    }
  } catch (err) {
    const tail = proc?.logTail() ?? '';
    await proc?.stop();
    await cleanup();
    if (err instanceof PeerError) throw err;
    throw new PeerError(
      'CAP_ERR_PEER_NOT_READY',
      `dockerd started but setup failed: ${(err as Error).message}`,
      tail,
      {
        cause: err,
      },
    );
  }

  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    // Kill containers through the API first: with --live-restore they would outlive the daemon.
    const client = new DockerClient({ host: `unix://${socketPath}` });
    try {
      const signal = AbortSignal.timeout(15_000);
      const all = await client.listContainers({ all: true, signal });
      await Promise.all(
        all.map((c) => client.removeContainer(c.Id, { force: true, signal }).catch(() => {})),
      );
    } catch {
      // Daemon already gone: the process sweep below covers it.
    } finally {
      await client.close();
    }
    await proc?.stop();
    await cleanup();
  };
  return {
    socketPath,
    dockerHost: `unix://${socketPath}`,
    image: DOCKER_TEST_IMAGE,
    dir,
    liveRestore,
    ...(tcpHost ? { tcpHost } : {}),
    ...(certPath ? { certPath } : {}),
    logTail: (lines) => proc?.logTail(lines) ?? '',
    restart: async (opts) => {
      await proc?.stop();
      await opts?.whileDown?.();
      await launch();
    },
    stop,
    [Symbol.asyncDispose]: stop,
  };
}

/** A unix-socket proxy in front of a daemon whose connections a test can cut at will. */
export interface SocketProxy {
  /** Socket path clients connect to. */
  readonly socketPath: string;
  /** `unix://<socketPath>`. */
  readonly dockerHost: string;
  /** Destroy every open connection (both sides); new connections still work. Returns how many were cut. */
  cut(): number;
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Listen on `listenPath` and pipe each connection to `targetPath`: a broken connection on demand, for tests
 * of reconnect logic (the daemon stays up, only the client's sockets die).
 */
export async function startSocketProxy(targetPath: string, listenPath: string): Promise<SocketProxy> {
  /** Open connections, each a client side and a daemon side. */
  const live = new Set<{ down: Socket; up: Socket }>();
  const server = createServer((down) => {
    const up = connect(targetPath);
    const pair = { down, up };
    live.add(pair);
    const destroyBoth = () => {
      down.destroy();
      up.destroy();
    };
    // A side that ends ends the other once what is in flight was written (pipe does that); destroying it at
    // once would drop the last bytes of a response. Errors and cut() break both at once.
    down.on('error', destroyBoth);
    up.on('error', destroyBoth);
    const forget = () => {
      if (down.destroyed && up.destroyed) live.delete(pair);
    };
    down.on('close', forget);
    up.on('close', forget);
    down.pipe(up).pipe(down);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listenPath, () => resolve());
  });
  const close = async () => {
    for (const { down, up } of live) {
      down.destroy();
      up.destroy();
    }
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return {
    socketPath: listenPath,
    dockerHost: `unix://${listenPath}`,
    cut: () => {
      const n = live.size;
      for (const { down, up } of [...live]) {
        down.destroy();
        up.destroy();
      }
      return n;
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}
