import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { ensurePeers, PeerError, type PeerProcess, peerCacheDir, startPeerProcess } from '../peers/index.ts';
import { freePort, makeProcessDir, tailFile } from '../runtime/index.ts';

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

/** Bump when the initdb options below change, so stale templates are not reused. */
const TEMPLATE_FORMAT = 2;

/** Database pre-created in the template; renamed at start, which is instant (CREATE DATABASE copies). */
const TEMPLATE_DB = 'capstan';

function initdbError(err: unknown, what: string): PeerError {
  const e = err as { stdout?: string; stderr?: string; message: string };
  const output = `${e.stdout ?? ''}${e.stderr ?? ''}`;
  return new PeerError(
    'CAP_ERR_PEER_INIT',
    `${what}: ${e.message.split('\n')[0]}`,
    output.split('\n').slice(-40).join('\n'),
    { cause: err },
  );
}

/** As root, the postgres user must be able to reach the data dir: every parent must be traversable. */
async function assertReachable(as: ReturnType<typeof runAs>, dir: string): Promise<void> {
  const [cmd, ...args] = [...as.prefix, 'test', '-x', dir];
  try {
    await execFileAsync(cmd!, args);
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw new PeerError(
      'CAP_ERR_PEER_INIT',
      `the postgres user cannot reach ${dir} (is ${tmpdir()} traversable by the postgres user?)`,
      '',
      { cause: err },
    );
  }
}

/**
 * A pristine data directory, made once per PostgreSQL version and cached in the peer cache: copying
 * it (~0.4 s) is an order of magnitude cheaper than initdb (~5 s, far more on a loaded machine).
 */
async function dataTemplate(bin: string, as: ReturnType<typeof runAs>): Promise<string> {
  const { stdout } = await execFileAsync(join(bin, 'postgres'), ['--version']);
  const version = /(\d+(?:\.\d+)*)/.exec(stdout)?.[1] ?? 'unknown';
  const target = join(peerCacheDir('postgres'), `data-template-${version}-f${TEMPLATE_FORMAT}`);
  if (existsSync(join(target, 'PG_VERSION'))) return target;

  const work = makeProcessDir('postgres-initdb');
  try {
    if (as.uid !== undefined && as.gid !== undefined) {
      chownSync(work, as.uid, as.gid);
      await assertReachable(as, work);
    }
    const [cmd, ...args] = [
      ...as.prefix,
      join(bin, 'initdb'),
      '-D',
      join(work, 'data'),
      '-U',
      'postgres',
      '--auth-host=scram-sha-256',
      '--auth-local=trust',
      '-E',
      'UTF8',
      '--locale=C',
      '--no-sync',
      '--no-instructions',
      // 1 MB WAL segments instead of 16: less to copy at every start.
      '--wal-segsize=1',
    ];
    try {
      await execFileAsync(cmd!, args, { cwd: work, maxBuffer: 4 * 1024 * 1024 });
      // Single-user mode: no server, no port, no auth; runs the statement from stdin and exits.
      await runWithInput(
        [
          ...as.prefix,
          join(bin, 'postgres'),
          '--single',
          '-D',
          join(work, 'data'),
          '-c',
          'fsync=off',
          'postgres',
        ],
        `CREATE DATABASE ${TEMPLATE_DB};\n`,
        work,
      );
    } catch (err) {
      throw initdbError(err, 'initdb failed');
    }
    mkdirSync(dirname(target), { recursive: true });
    // Copy next to the target, then rename: concurrent first runs must never see a half-copied template.
    const staging = `${target}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
    await execFileAsync('cp', ['-a', join(work, 'data'), staging]);
    try {
      renameSync(staging, target);
    } catch (err) {
      rmSync(staging, { recursive: true, force: true });
      // Another process won the race: use its template.
      if (!existsSync(join(target, 'PG_VERSION'))) throw err;
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return target;
}

/** Run a command with `input` on stdin; rejects with its stderr on a non-zero exit. */
function runWithInput(argv: string[], input: string, cwd?: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const [cmd, ...args] = argv;
    const child = spawn(cmd!, args, { cwd, stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    child.once('error', reject);
    child.once('exit', (code) => {
      if (code === 0) resolve();
      else
        reject(
          Object.assign(new Error(`${cmd} exited with ${code}: ${stderr.trim().slice(-2000)}`), { stderr }),
        );
    });
    child.stdin.end(input);
  });
}

/** Run SQL as the template superuser over the unix socket; statements come on stdin, not argv. */
function psql(bin: string, socketDir: string, port: number, sql: string): Promise<void> {
  return runWithInput(
    [
      join(bin, 'psql'),
      '-X',
      '-q',
      '-v',
      'ON_ERROR_STOP=1',
      '-h',
      socketDir,
      '-p',
      String(port),
      '-U',
      'postgres',
      '-d',
      'postgres',
      '-f',
      '-',
    ],
    sql,
  );
}

/**
 * Start a throwaway PostgreSQL: copy a cached initdb template into a private temp dir, serve on a free
 * loopback port with the unix socket inside that dir, and create the role and database. Works as root
 * (drops to the `postgres` user).
 */
export async function startPostgres(options: StartPostgresOptions = {}): Promise<PostgresPeer> {
  ensurePeers(['postgres']);
  const bin = postgresBinDir();
  const user = options.user ?? 'capstan';
  const password = options.password ?? randomBytes(12).toString('hex');
  const database = options.database ?? 'capstan';
  const as = runAs();

  const template = await dataTemplate(bin, as);
  const dir = makeProcessDir('postgres');
  const dataDir = join(dir, 'data');
  if (as.uid !== undefined && as.gid !== undefined) {
    // mkdtemp makes a 0700 root-owned dir: hand it to the postgres user, who needs to reach it.
    chownSync(dir, as.uid, as.gid);
    await assertReachable(as, dir);
  }
  chmodSync(dir, 0o700);
  try {
    // cp -a keeps the postgres ownership and the 0700 mode the server insists on.
    await execFileAsync('cp', ['-a', template, dataDir]);
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw new PeerError('CAP_ERR_PEER_INIT', `copying the data template failed: ${(err as Error).message}`);
  }

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
    // The template's only role is a password-less `postgres` superuser, reachable only through the
    // unix socket in our private dir (local trust). Create the caller's role and database through it.
    const ident = (v: string) => `"${v.replaceAll('"', '""')}"`;
    const literal = (v: string) => `'${v.replaceAll("'", "''")}'`;
    const sql = [
      user === 'postgres'
        ? `ALTER ROLE postgres PASSWORD ${literal(password)};`
        : `CREATE ROLE ${ident(user)} LOGIN SUPERUSER PASSWORD ${literal(password)};`,
      database === 'postgres'
        ? ''
        : database === TEMPLATE_DB
          ? `ALTER DATABASE ${TEMPLATE_DB} OWNER TO ${ident(user)};`
          : `ALTER DATABASE ${TEMPLATE_DB} RENAME TO ${ident(database)};\n` +
            `ALTER DATABASE ${ident(database)} OWNER TO ${ident(user)};`,
    ].join('\n');
    await psql(bin, dir, port, sql);
  } catch (err) {
    const tail = tailFile(peer.logPath);
    await stop();
    throw new PeerError(
      'CAP_ERR_PEER_INIT',
      `creating role ${user} and database ${database} failed: ${(err as Error).message}`,
      tail,
      { cause: err },
    );
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
