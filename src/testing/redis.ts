import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { ensurePeers, PeerError, startPeerProcess } from '../peers/index.ts';
import { freePort, makeProcessDir } from '../runtime/index.ts';
import { createTestCertificates } from './tls.ts';

/** Options of {@link startRedis}. */
export interface StartRedisOptions {
  /** Require this password (`requirepass`); none by default. */
  password?: string;
  /** How long startup may take. Default 30 s. */
  readyTimeoutMs?: number;
  /** Extra `--name value` server settings. */
  settings?: Record<string, string>;
  /**
   * Serve TLS only (no plain port), with a fresh certificate for 127.0.0.1 from a throwaway CA
   * ({@link createTestCertificates}). The URL is then `rediss://` and `ca` holds the CA to trust.
   */
  tls?: boolean;
}

/** A running throwaway Redis server. */
export interface RedisPeer {
  /** `redis://[:password@]127.0.0.1:port` */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  /** The server's process id. */
  readonly pid: number;
  readonly password?: string;
  /** With `tls`: the PEM CA certificate clients must trust. */
  readonly ca?: string;
  readonly dir: string;
  logTail(lines?: number): string;
  /** Stops the server and removes its temp dir. Idempotent. */
  stop(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

function redisBinary(): string {
  for (const dir of ['/usr/bin', '/usr/local/bin', ...(process.env.PATH ?? '').split(':')]) {
    if (dir && existsSync(join(dir, 'redis-server'))) return join(dir, 'redis-server');
  }
  throw new PeerError('CAP_ERR_PEER_NOT_FOUND', 'redis-server not found');
}

/** A value as a double-quoted redis.conf argument (the escapes `sdssplitargs` reads), so any text survives. */
function redisQuote(value: string): string {
  let out = '"';
  for (const ch of value) {
    const code = ch.charCodeAt(0);
    if (ch === '"' || ch === '\\') out += `\\${ch}`;
    else if (code < 0x20 || code === 0x7f) out += `\\x${code.toString(16).padStart(2, '0')}`;
    else out += ch;
  }
  return `${out}"`;
}

/** True once the server answers PING (with or without auth: NOAUTH also proves it is serving). */
function redisAnswers(port: number, ca?: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket =
      ca === undefined ? connect({ host: '127.0.0.1', port }) : tlsConnect({ host: '127.0.0.1', port, ca });
    let buf = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(2_000, () => done(false));
    socket.once('error', () => done(false));
    socket.on('data', (chunk) => {
      buf += chunk.toString('utf8');
      // "-LOADING" means it is still loading a dataset: not ready yet.
      if (buf.includes('\r\n')) done(buf.startsWith('+PONG') || buf.startsWith('-NOAUTH'));
    });
    socket.once(ca === undefined ? 'connect' : 'secureConnect', () => socket.write('PING\r\n'));
  });
}

/**
 * Start a throwaway redis-server on a free loopback port, with persistence off (`--save ''`,
 * `--appendonly no`) and its working dir in a private temp dir.
 */
export async function startRedis(options: StartRedisOptions = {}): Promise<RedisPeer> {
  ensurePeers(['redis']);
  const command = redisBinary();
  // redis-server treats port 0 as "no TCP listener", so a free port is picked up front.
  const port = await freePort();
  const dir = makeProcessDir('redis');
  let ca: string | undefined;
  const tlsSettings: Record<string, string> = {};
  if (options.tls) {
    try {
      const certs = await createTestCertificates({ hosts: ['127.0.0.1'] });
      const cert = join(dir, 'tls.crt');
      const key = join(dir, 'tls.key');
      writeFileSync(cert, certs.certPem);
      writeFileSync(key, certs.keyPem, { mode: 0o600 });
      writeFileSync(join(dir, 'ca.crt'), certs.caPem);
      ca = certs.caPem;
      Object.assign(tlsSettings, {
        port: '0',
        'tls-port': String(port),
        'tls-cert-file': cert,
        'tls-key-file': key,
        'tls-ca-cert-file': join(dir, 'ca.crt'),
        // Clients authenticate with AUTH, not certificates.
        'tls-auth-clients': 'no',
      });
    } catch (err) {
      rmSync(dir, { recursive: true, force: true });
      throw err;
    }
  }
  const settings: Record<string, string> = {
    port: String(port),
    bind: '127.0.0.1',
    save: '',
    appendonly: 'no',
    'protected-mode': 'no',
    loglevel: 'notice',
    ...(options.password !== undefined ? { requirepass: options.password } : {}),
    ...tlsSettings,
    ...options.settings,
  };
  // Settings go in a config file, not on the command line: a command line is readable by every local user in
  // /proc/<pid>/cmdline (redis rewrites its process title once started, but not before, and not with
  // `set-proc-title no`), and `requirepass` is a secret. The file is 0600 inside the private 0700 dir, which
  // stop() removes.
  const configPath = join(dir, 'redis.conf');
  const config = Object.entries({ dir: '.', ...settings }).map(([k, v]) => `${k} ${redisQuote(v)}\n`);
  try {
    writeFileSync(configPath, config.join(''), { mode: 0o600 });
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const peer = await startPeerProcess({
    name: 'redis',
    command,
    args: [configPath],
    dir,
    ready: () => redisAnswers(port, ca),
    readyTimeoutMs: options.readyTimeoutMs ?? 30_000,
  });
  const host = '127.0.0.1';
  const auth = options.password !== undefined ? `:${encodeURIComponent(options.password)}@` : '';
  return {
    url: `${ca === undefined ? 'redis' : 'rediss'}://${auth}${host}:${port}`,
    host,
    port,
    pid: peer.pid,
    ...(options.password !== undefined ? { password: options.password } : {}),
    ...(ca !== undefined ? { ca } : {}),
    dir: peer.dir,
    logTail: (lines) => peer.logTail(lines),
    stop: () => peer.stop(),
    [Symbol.asyncDispose]: () => peer.stop(),
  };
}
