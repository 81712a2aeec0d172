import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { PeerError } from '../runtime/errors.ts';
import { freePort } from './internal/ports.ts';
import { startPeerProcess } from './internal/process.ts';
import { ensurePeers } from './peers.ts';

/** Options of {@link startRedis}. */
export interface StartRedisOptions {
  /** Require this password (`requirepass`); none by default. */
  password?: string;
  /** How long startup may take. Default 30 s. */
  readyTimeoutMs?: number;
  /** Extra `--name value` server settings. */
  settings?: Record<string, string>;
}

/** A running throwaway Redis server. */
export interface RedisPeer {
  /** `redis://[:password@]127.0.0.1:port` */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  readonly password?: string;
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

/** True once the server answers PING (with or without auth: NOAUTH also proves it is serving). */
function redisAnswers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
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
    socket.once('connect', () => socket.write('PING\r\n'));
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
  const settings: Record<string, string> = {
    port: String(port),
    bind: '127.0.0.1',
    save: '',
    appendonly: 'no',
    'protected-mode': 'no',
    loglevel: 'notice',
    ...(options.password !== undefined ? { requirepass: options.password } : {}),
    ...options.settings,
  };
  const args = Object.entries(settings).flatMap(([k, v]) => [`--${k}`, v]);
  const peer = await startPeerProcess({
    name: 'redis',
    command,
    // Settings go on the command line, not in a config file: nothing secret is written to disk.
    args: ['--dir', '.', ...args],
    ready: () => redisAnswers(port),
    readyTimeoutMs: options.readyTimeoutMs ?? 30_000,
  });
  const host = '127.0.0.1';
  const auth = options.password !== undefined ? `:${encodeURIComponent(options.password)}@` : '';
  return {
    url: `redis://${auth}${host}:${port}`,
    host,
    port,
    ...(options.password !== undefined ? { password: options.password } : {}),
    dir: peer.dir,
    logTail: (lines) => peer.logTail(lines),
    stop: () => peer.stop(),
    [Symbol.asyncDispose]: () => peer.stop(),
  };
}
