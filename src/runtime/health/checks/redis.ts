import { isIP, connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { abortReason } from '../../abort.ts';
import { scrub } from '../../redact.ts';
import { healthAbortError } from '../aborted.ts';
import { HealthError } from '../errors.ts';
import type { CheckFunction } from '../types.ts';

/** Where a Redis server is, when not given as a URL. */
export interface RedisTarget {
  host: string;
  port?: number;
  username?: string;
  password?: string;
  db?: number;
  /** Speak TLS (`true`, or options such as the CA of a private server). `rediss://` URLs imply it. */
  tls?: boolean | RedisTlsOptions;
}

/** TLS settings of {@link redisCheck}. The server certificate is verified unless told otherwise. */
export interface RedisTlsOptions {
  /** CA certificate(s) (PEM) to trust besides the system ones, e.g. a private CA. */
  ca?: string | Buffer | Array<string | Buffer>;
  /** Name to verify the certificate against; default the host (when it is not an IP address). */
  servername?: string;
  /** Default true. Turning it off proves only that something speaks TLS there. */
  rejectUnauthorized?: boolean;
}

/** Options of {@link redisCheck}. */
export interface RedisCheckOptions {
  /** TLS settings; also switches TLS on for a `redis://` URL. */
  tls?: RedisTlsOptions;
}

function parseRedisUrl(url: string): RedisTarget {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new HealthError('CAP_ERR_RUNTIME_HEALTH_INVALID', 'redisCheck: invalid URL');
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') {
    throw new HealthError('CAP_ERR_RUNTIME_HEALTH_INVALID', `redisCheck: unsupported scheme ${u.protocol}`);
  }
  const db = u.pathname.replace(/^\//, '');
  if (db !== '' && !/^\d+$/.test(db)) {
    throw new HealthError(
      'CAP_ERR_RUNTIME_HEALTH_INVALID',
      'redisCheck: database in the URL path must be a number',
    );
  }
  const target: RedisTarget = {
    host: u.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1',
    port: u.port ? Number(u.port) : 6379,
    tls: u.protocol === 'rediss:',
  };
  if (u.username) target.username = decodeURIComponent(u.username);
  if (u.password) target.password = decodeURIComponent(u.password);
  if (db !== '') target.db = Number(db);
  return target;
}

/** One RESP array command. Lengths are in bytes, hence Buffer.byteLength. */
function command(...args: string[]): string {
  return `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;
}

/**
 * A check that sends `AUTH` (when a password is set), `SELECT` (when a db is set) and `PING`, and
 * passes on `+PONG`. Speaks RESP over one short-lived socket: no client library, no pooled
 * connection that could hide an outage. Accepts `redis://[user:password@]host:port/db`, `rediss://`
 * (TLS), or a {@link RedisTarget}. Errors never contain the password.
 */
export function redisCheck(target: string | RedisTarget, options: RedisCheckOptions = {}): CheckFunction {
  const t = typeof target === 'string' ? parseRedisUrl(target) : { ...target };
  if (options.tls) t.tls = { ...(typeof t.tls === 'object' ? t.tls : {}), ...options.tls };
  if (!t || typeof t.host !== 'string' || t.host === '') {
    throw new HealthError('CAP_ERR_RUNTIME_HEALTH_INVALID', 'redisCheck: host is required');
  }
  const port = t.port ?? 6379;
  if (!Number.isInteger(port) || port < 1 || port > 65_535) {
    throw new HealthError('CAP_ERR_RUNTIME_HEALTH_INVALID', `redisCheck: invalid port ${port}`);
  }
  const secrets = [t.password, typeof target === 'string' ? target : undefined];
  const commands: Array<{ cmd: string; expect: string; what: string }> = [];
  if (t.password !== undefined) {
    const args = t.username ? ['AUTH', t.username, t.password] : ['AUTH', t.password];
    commands.push({ cmd: command(...args), expect: '+OK', what: 'AUTH' });
  }
  if (t.db !== undefined)
    commands.push({ cmd: command('SELECT', String(t.db)), expect: '+OK', what: 'SELECT' });
  commands.push({ cmd: command('PING'), expect: '+PONG', what: 'PING' });
  const where = `${t.host}:${port}`;
  const tlsOptions: RedisTlsOptions = typeof t.tls === 'object' ? t.tls : {};

  return (signal) =>
    new Promise<{ detail: string }>((resolve, reject) => {
      if (signal.aborted) return reject(abortReason(signal, healthAbortError));
      const socket: Socket = t.tls
        ? tlsConnect({
            host: t.host,
            port,
            // SNI must not carry an IP address (RFC 6066); Node checks IPs against the SAN anyway.
            ...(tlsOptions.servername || !isIP(t.host)
              ? { servername: tlsOptions.servername ?? t.host }
              : {}),
            ...(tlsOptions.ca !== undefined ? { ca: tlsOptions.ca } : {}),
            rejectUnauthorized: tlsOptions.rejectUnauthorized ?? true,
          })
        : netConnect({ host: t.host, port });
      let settled = false;
      const finish = (err?: Error) => {
        if (settled) return;
        settled = true;
        signal.removeEventListener('abort', onAbort);
        socket.destroy();
        if (err) reject(err);
        else resolve({ detail: `PONG from ${where}` });
      };
      const fail = (message: string, cause?: unknown) =>
        finish(
          new HealthError('CAP_ERR_RUNTIME_HEALTH_REDIS', `redis ${where}: ${scrub(message, secrets)}`, {
            cause,
          }),
        );
      const onAbort = () => finish(abortReason(signal, healthAbortError));
      signal.addEventListener('abort', onAbort, { once: true });

      let buffer = '';
      let index = 0;
      socket.on('data', (chunk: Buffer) => {
        buffer += chunk.toString('utf8');
        // Every reply we expect (+OK, +PONG, -ERR ...) is a single line, so lines are enough.
        let eol = buffer.indexOf('\r\n');
        while (eol !== -1 && !settled) {
          const reply = buffer.slice(0, eol);
          buffer = buffer.slice(eol + 2);
          const step = commands[index]!;
          if (reply !== step.expect) {
            return fail(`${step.what} answered ${JSON.stringify(reply.slice(0, 200))}`);
          }
          index += 1;
          if (index === commands.length) return finish();
          eol = buffer.indexOf('\r\n');
        }
        if (buffer.length > 64 * 1024) fail('reply too long');
      });
      socket.once(t.tls ? 'secureConnect' : 'connect', () => {
        // Pipelined: one round trip. Redis answers in order, and stops nothing on a failed AUTH, so
        // the replies are matched to commands one by one.
        socket.write(commands.map((c) => c.cmd).join(''));
      });
      socket.once('error', (err: NodeJS.ErrnoException) => fail(err.code ?? err.message, err));
      socket.once('close', () => fail('connection closed before PONG'));
    });
}
