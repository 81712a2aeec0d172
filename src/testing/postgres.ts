import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { PeerError } from '../runtime/errors.ts';
import { freePort } from './internal/ports.ts';
import { makePeerDir, type PeerProcess, startPeerProcess, tailFile } from './internal/process.ts';
import { ensurePeers } from './peers.ts';

const execFileAsync = promisify(execFile);

/** Options of {@link startPostgres}. */
export interface StartPostgresOptions {
  /** Role created by initdb as the superuser. Default `capstan`. */
  user?: string;
  /** Password of that role; a random one by default. */
  password?: string;
  /** Database created for the tests. Default `capstan`. */
  database?: string;
  /** How long initdb plus startup may take. Default 90 s (initdb is slow on a busy 2-core machine). */
  readyTimeoutMs?: number;
  /** Extra `-c name=value` server settings. */
  settings?: Record<string, string>;
}

/** A running throwaway PostgreSQL server. */
export interface PostgresPeer {
  /** `postgres://user:password@127.0.0.1:port/database` */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly password?: string;
  readonly database: string;
  /** Folder holding the data directory, the unix socket and the log (removed on stop). */
  readonly dir: string;
  /** Last lines of the server log. */
  logTail(lines?: number): string;
  /** Fast shutdown (terminates sessions), then removes the temp dir. Idempotent. */
  stop(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Highest PostgreSQL major version installed under /usr/lib/postgresql (Debian layout), or PATH. */
export function postgresBinDir(): string {
  const root = '/usr/lib/postgresql';
  if (existsSync(root)) {
    const versions = readdirSync(root)
      .filter((v) => /^\d+$/.test(v) && existsSync(join(root, v, 'bin', 'postgres')))
      .sort((a, b) => Number(b) - Number(a));
    if (versions[0]) return join(root, versions[0], 'bin');
  }
  // Non-Debian layouts (Homebrew, official images) put the binaries on PATH.
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (dir && existsSync(join(dir, 'postgres')) && existsSync(join(dir, 'initdb'))) return dir;
  }
  throw new PeerError('CAP_ERR_PEER_NOT_FOUND', 'PostgreSQL binaries (initdb, postgres) not found');
}

/**
 * PostgreSQL refuses to run as root. When we are root, drop to the `postgres` system user (created by
 * the Debian package) with setpriv, which execs in place so signals reach the server directly.
 */
function runAs(): { prefix: string[]; uid?: number; gid?: number } {
  if (process.getuid?.() !== 0) return { prefix: [] };
  let uid: number;
  let gid: number;
  try {
    const info = lookupUser('postgres');
    uid = info.uid;
    gid = info.gid;
  } catch (err) {
    throw new PeerError(
      'CAP_ERR_PEER_USER',
      'running as root, but there is no "postgres" system user to run PostgreSQL as',
      '',
      { cause: err },
    );
  }
  return {
    prefix: ['setpriv', `--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', '--'],
    uid,
    gid,
  };
}

function lookupUser(name: string): { uid: number; gid: number } {
  for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
    const [user, , uid, gid] = line.split(':');
    if (user === name && uid && gid) return { uid: Number(uid), gid: Number(gid) };
  }
  throw new Error(`user ${name} not in /etc/passwd`);
}

async function pgIsReady(bin: string, port: number, user: string, database: string): Promise<boolean> {
  try {
    // pg_isready only answers "accepting connections" once recovery is done, unlike a bare TCP connect.
    await execFileAsync(join(bin, 'pg_isready'), [
      '-q',
      '-h',
      '127.0.0.1',
      '-p',
      String(port),
      '-U',
      user,
      '-d',
      database,
    ]);
    return true;
  } catch {
    return false;
  }
}

/**
 * Start a throwaway PostgreSQL: initdb into a private temp dir, serve on a free loopback port with the
 * unix socket inside that dir, and create the test database. Works as root (drops to `postgres`).
 */
export async function startPostgres(options: StartPostgresOptions = {}): Promise<PostgresPeer> {
  ensurePeers(['postgres']);
  const bin = postgresBinDir();
  const user = options.user ?? 'capstan';
  const password = options.password ?? randomBytes(12).toString('hex');
  const database = options.database ?? 'capstan';
  const as = runAs();

  const dir = makePeerDir('postgres');
  const dataDir = join(dir, 'data');
  const pwFile = join(dir, 'pwfile');
  mkdirSync(dataDir, { mode: 0o700 });
  writeFileSync(pwFile, `${password}\n`, { mode: 0o600 });
  if (as.uid !== undefined && as.gid !== undefined) {
    // mkdtemp makes a 0700 root-owned dir: hand the whole tree to the postgres user.
    for (const p of [dir, dataDir, pwFile]) chownSync(p, as.uid, as.gid);
  }
  chmodSync(dir, 0o700);

  const initLog = join(dir, 'initdb.log');
  try {
    const [cmd, ...args] = [
      ...as.prefix,
      join(bin, 'initdb'),
      '-D',
      dataDir,
      '-U',
      user,
      `--pwfile=${pwFile}`,
      '--auth-host=scram-sha-256',
      '--auth-local=trust',
      '-E',
      'UTF8',
      '--locale=C',
      '--no-sync',
      '--no-instructions',
    ];
    const r = await execFileAsync(cmd!, args, { cwd: dir, maxBuffer: 4 * 1024 * 1024 });
    writeFileSync(initLog, `${r.stdout}${r.stderr}`);
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    rmSync(dir, { recursive: true, force: true });
    const output = `${e.stdout ?? ''}${e.stderr ?? ''}`;
    // As root we run as `postgres`, which must be able to traverse every parent of the temp dir.
    const hint = /permission denied/i.test(output)
      ? ` (is ${tmpdir()} traversable by the postgres user?)`
      : '';
    throw new PeerError(
      'CAP_ERR_PEER_INIT',
      `initdb failed: ${e.message.split('\n')[0]}${hint}`,
      output.split('\n').slice(-40).join('\n'),
      { cause: err },
    );
  }
  rmSync(pwFile, { force: true });

  const port = await freePort();
  const settings: Record<string, string> = {
    listen_addresses: '127.0.0.1',
    port: String(port),
    unix_socket_directories: dir,
    fsync: 'off',
    synchronous_commit: 'off',
    full_page_writes: 'off',
    max_connections: '50',
    shared_buffers: '16MB',
    ...options.settings,
  };
  const [command, ...prefixArgs] = [...as.prefix, join(bin, 'postgres')];
  let peer: PeerProcess;
  try {
    peer = await startPeerProcess({
      name: 'postgres',
      command: command!,
      args: [
        ...prefixArgs,
        '-D',
        dataDir,
        ...Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${v}`]),
      ],
      dir,
      ready: () => pgIsReady(bin, port, user, 'postgres'),
      readyTimeoutMs: options.readyTimeoutMs ?? 90_000,
      stopTimeoutMs: 15_000,
    });
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }

  const stop = async (): Promise<void> => {
    // SIGTERM is "smart" shutdown, which waits for every client to disconnect; SIGINT ("fast")
    // terminates sessions. The SIGTERM that stop() sends afterwards cannot downgrade the mode.
    try {
      process.kill(peer.pid, 'SIGINT');
    } catch {}
    await peer.stop();
  };

  try {
    await execFileAsync(
      join(bin, 'createdb'),
      ['-h', '127.0.0.1', '-p', String(port), '-U', user, database],
      { env: { ...process.env, PGPASSWORD: password } },
    );
  } catch (err) {
    const tail = tailFile(peer.logPath);
    await stop();
    throw new PeerError('CAP_ERR_PEER_INIT', `createdb ${database} failed`, tail, { cause: err });
  }

  const host = '127.0.0.1';
  return {
    url: `postgres://${encodeURIComponent(user)}:${encodeURIComponent(password)}@${host}:${port}/${encodeURIComponent(database)}`,
    host,
    port,
    user,
    password,
    database,
    dir,
    logTail: (lines) => peer.logTail(lines),
    stop,
    [Symbol.asyncDispose]: stop,
  };
}
