import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensurePeers, PeerError, type PeerProcess, startPeerProcess } from '../peers/index.ts';
import { canConnect, createHttpTransport, freePort, httpRequest, makeProcessDir } from '../runtime/index.ts';

// Like fetch before it: one pooled client for every instance, no transparent retries (the callers poll).
const http = createHttpTransport({ retry: false });

/** Options of {@link startRabbitMQ}. */
export interface StartRabbitMQOptions {
  /** Enable the management plugin (HTTP API on a free loopback port). Default true. */
  management?: boolean;
  /** Admin user created at first boot. Default `capstan`. */
  user?: string;
  /** Its password; random by default. */
  password?: string;
  /**
   * How often the management API refreshes queue statistics. RabbitMQ's default is 5 s; we use 500 ms
   * so readers of queue depth (autoscalers, tests) see changes sooner.
   */
  statisticsIntervalMs?: number;
  /** Boot can take 10-30 s on a busy 2-core machine. Default 120 s. */
  readyTimeoutMs?: number;
  /**
   * More addresses the AMQP listener binds, on the same port, besides 127.0.0.1: a node's bridge address
   * (`cluster.node.ip`), so that pods reach the broker. Default none.
   */
  listenAddresses?: string[];
}

/** A running throwaway RabbitMQ broker. */
export interface RabbitMQPeer {
  /** `amqp://user:password@127.0.0.1:port` (default vhost `/`). */
  readonly amqpUrl: string;
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly password: string;
  /** Erlang node name, unique per broker (`capstan-<hex>@localhost`). */
  readonly nodeName: string;
  /** `http://127.0.0.1:port` of the management HTTP API, when enabled. */
  readonly managementUrl?: string;
  /** `Basic ...` header value for the management API. */
  readonly authorization: string;
  /**
   * Messages in a queue as the management API reports them (ready + unacknowledged). The API refreshes
   * every `statisticsIntervalMs`, so it lags the broker slightly: poll for an expected value.
   */
  queueDepth(queue: string, options?: { vhost?: string; signal?: AbortSignal }): Promise<number>;
  /** Private folder (config, cookie, mnesia, log), removed on stop. */
  readonly dir: string;
  /** Last lines of the broker log. */
  logTail(lines?: number): string;
  /** Graceful stop (broker, then its private epmd), then removes the temp dir. Idempotent. */
  stop(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

const SERVER = '/usr/lib/rabbitmq/bin/rabbitmq-server';

/**
 * Start a throwaway RabbitMQ (Debian `rabbitmq-server`) with everything private: its own Erlang cookie
 * and HOME, mnesia and log dirs, node name, AMQP port, distribution port, and its own `epmd` on a free
 * port (the Debian package's system epmd on 4369 is left alone), all on 127.0.0.1. Ready when AMQP
 * accepts connections and, if enabled, the management API answers.
 */
export async function startRabbitMQ(options: StartRabbitMQOptions = {}): Promise<RabbitMQPeer> {
  ensurePeers(['rabbitmq']);
  const management = options.management ?? true;
  const user = options.user ?? 'capstan';
  const password = options.password ?? randomBytes(12).toString('hex');
  const nodeName = `capstan-${randomBytes(4).toString('hex')}@localhost`;
  const [port, distPort, epmdPort, mgmtPort] = await Promise.all([
    freePort(),
    freePort(),
    freePort(),
    freePort(),
  ]);
  const authorization = `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
  const managementUrl = management ? `http://127.0.0.1:${mgmtPort}` : undefined;

  // epmd (the Erlang port mapper) would otherwise be started by the broker as a daemon that outlives it.
  // As our own child it is stopped with the broker.
  const epmd = await startPeerProcess({
    name: 'rabbitmq-epmd',
    command: 'epmd',
    args: ['-port', String(epmdPort), '-address', '127.0.0.1'],
    ready: () => canConnect(epmdPort),
    readyTimeoutMs: 20_000,
  });

  const dir = makeProcessDir('rabbitmq');
  const conf = [
    `listeners.tcp.default = 127.0.0.1:${port}`,
    ...(options.listenAddresses ?? []).map((ip, i) => `listeners.tcp.extra${i} = ${ip}:${port}`),
    `default_user = ${user}`,
    `default_pass = ${password}`,
    'default_user_tags.administrator = true',
    'default_permissions.configure = .*',
    'default_permissions.read = .*',
    'default_permissions.write = .*',
    `collect_statistics_interval = ${options.statisticsIntervalMs ?? 500}`,
    'log.console = true',
    'log.console.level = info',
    'log.file = false',
    ...(management ? [`management.tcp.port = ${mgmtPort}`, 'management.tcp.ip = 127.0.0.1'] : []),
    '',
  ].join('\n');
  // It holds default_pass: owner-only, on top of the private dir.
  writeFileSync(join(dir, 'rabbitmq.conf'), conf, { mode: 0o600 });
  writeFileSync(join(dir, 'enabled_plugins'), management ? '[rabbitmq_management].\n' : '[].\n');
  writeFileSync(join(dir, 'rabbitmq-env.conf'), '');
  // Erlang refuses a cookie file readable by others.
  writeFileSync(join(dir, '.erlang.cookie'), randomBytes(20).toString('hex'), { mode: 0o400 });
  mkdirSync(join(dir, 'mnesia'));
  mkdirSync(join(dir, 'log'));

  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    LANG: 'C.UTF-8',
    HOME: dir,
    RABBITMQ_NODENAME: nodeName,
    RABBITMQ_CONFIG_FILE: join(dir, 'rabbitmq.conf'),
    RABBITMQ_ADVANCED_CONFIG_FILE: join(dir, 'advanced.config'),
    // Without this the script sources /etc/rabbitmq/rabbitmq-env.conf, which may pin a node name.
    RABBITMQ_CONF_ENV_FILE: join(dir, 'rabbitmq-env.conf'),
    RABBITMQ_ENABLED_PLUGINS_FILE: join(dir, 'enabled_plugins'),
    RABBITMQ_MNESIA_BASE: join(dir, 'mnesia'),
    RABBITMQ_LOG_BASE: join(dir, 'log'),
    RABBITMQ_PID_FILE: join(dir, 'rabbitmq.pid'),
    // These would replace every listener of the configuration with this one.
    ...(options.listenAddresses?.length
      ? {}
      : { RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1', RABBITMQ_NODE_PORT: String(port) }),
    RABBITMQ_DIST_PORT: String(distPort),
    // Keep Erlang distribution on loopback too.
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: '-kernel inet_dist_use_interface {127,0,0,1}',
    // Makes the start script exec the Erlang VM instead of staying as a parent that forwards signals:
    // our SIGTERM (graceful) and a last-resort SIGKILL then reach the VM itself, so it cannot be orphaned.
    RUNNING_UNDER_SYSTEMD: 'true',
    ERL_EPMD_PORT: String(epmdPort),
    ERL_EPMD_ADDRESS: '127.0.0.1',
  };

  const managementReady = async (): Promise<boolean> => {
    if (!managementUrl) return true;
    const res = await httpRequest(http, {
      origin: managementUrl,
      path: '/api/overview',
      headers: { authorization },
      timeouts: { deadlineMs: 5_000 },
    });
    await res.body.dump();
    return res.status === 200;
  };

  let broker: PeerProcess;
  try {
    broker = await startPeerProcess({
      name: 'rabbitmq',
      command: SERVER,
      dir,
      env,
      ready: async () => (await canConnect(port)) && (await managementReady()),
      readyTimeoutMs: options.readyTimeoutMs ?? 120_000,
      stopTimeoutMs: 30_000,
    });
  } catch (err) {
    await epmd.stop();
    throw err;
  }

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      try {
        await broker.stop();
      } finally {
        await epmd.stop();
      }
    })();
    return stopping;
  };

  return {
    amqpUrl: `amqp://${encodeURIComponent(user)}:${encodeURIComponent(password)}@127.0.0.1:${port}`,
    host: '127.0.0.1',
    port,
    user,
    password,
    nodeName,
    managementUrl,
    authorization,
    dir,
    async queueDepth(queue, opts = {}) {
      if (!managementUrl) {
        throw new PeerError(
          'CAP_ERR_PEER_CONFIG',
          'queueDepth needs the management plugin (management: true)',
        );
      }
      const vhost = encodeURIComponent(opts.vhost ?? '/');
      const res = await httpRequest(http, {
        origin: managementUrl,
        path: `/api/queues/${vhost}/${encodeURIComponent(queue)}`,
        headers: { authorization },
        ...(opts.signal ? { signal: opts.signal } : {}),
      });
      const body = await res.body.text();
      if (res.status !== 200) {
        throw new PeerError(
          'CAP_ERR_PEER_REQUEST',
          `RabbitMQ management API: queue "${queue}" answered ${res.status}: ${body.slice(0, 200)}`,
        );
      }
      // `messages` is absent until the first statistics tick after the queue is declared.
      return (JSON.parse(body) as { messages?: number }).messages ?? 0;
    },
    logTail: (lines) => broker.logTail(lines),
    stop,
    [Symbol.asyncDispose]: stop,
  };
}
