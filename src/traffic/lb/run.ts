// `capstan lb` as a library call: load the configuration (file and flags), run the load balancer, and
// reload it without dropping a connection on SIGHUP and whenever the file changes.
import { watch } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { CertificateHolder, type Lifecycle, type Logger } from '../../runtime/index.ts';
import { TrafficError, TrafficErrorCode } from '../errors.ts';
import { type LbConfig, type LbFlags, parseLbConfig } from './config.ts';
import { createLoadBalancer, type LoadBalancer } from './load-balancer.ts';

/** Options of {@link runLoadBalancer}. */
export interface RunLoadBalancerOptions {
  /** The YAML/JSON file, if any; watched for changes. */
  configFile?: string;
  flags?: LbFlags;
  logger: Logger;
  /** Reload on SIGHUP. Default true. */
  reloadOnSighup?: boolean;
  /** Reload when the file changes. Default true (with a file). */
  watchFile?: boolean;
  /** A shared lifecycle (`capstan up`), or the load balancer's own. */
  lifecycle?: Lifecycle;
  /** Listen on this address whatever the configuration says (`capstan up --host`). */
  listenHost?: string;
}

/** A running load balancer with its reload machinery. */
export interface RunningLoadBalancer {
  readonly lb: LoadBalancer;
  readonly config: LbConfig;
  /** Read the file and flags again and apply them; resolves false (and logs every problem) when refused. */
  reload(reason: string): Promise<boolean>;
  /** Stop watching and reloading (the load balancer itself stops with its lifecycle, or `lb.stop()`). */
  close(): void;
}

async function load(
  file: string | undefined,
  flags: LbFlags,
): Promise<{ config: LbConfig; text: string | undefined }> {
  let text: string | undefined;
  if (file !== undefined) {
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      throw new TrafficError(TrafficErrorCode.config, `cannot read ${file}: ${(err as Error).message}`, {
        cause: err,
        problems: [`cannot read ${file}`],
      });
    }
  }
  return { config: parseLbConfig(text, flags, { where: file ?? 'flags' }), text };
}

/**
 * Load the configuration, start the load balancer and keep it in step with its file. A bad configuration
 * at start throws a {@link TrafficError} `config` listing every problem; at a reload the running
 * configuration stays and the problems are logged. Listen addresses take a restart; the TLS certificate
 * is swapped in place (new connections get the new one).
 */
export async function runLoadBalancer(options: RunLoadBalancerOptions): Promise<RunningLoadBalancer> {
  const flags = options.flags ?? {};
  const first = await load(options.configFile, flags);
  let config = first.config;
  let lastText = first.text;
  const log = options.logger.child({ component: 'lb-reload' });
  const certificate = config.tls ? new CertificateHolder(config.tls) : undefined;
  const lb = createLoadBalancer({
    ...config.settings,
    port: config.listen.port,
    host: options.listenHost ?? config.listen.host,
    logger: options.logger,
    ...(options.lifecycle ? { lifecycle: options.lifecycle } : {}),
    ...(certificate ? { tls: { certificate } } : {}),
    ...(config.admin ? { admin: config.admin } : {}),
  });
  await lb.start();

  let chain = Promise.resolve(true);
  const reload = (reason: string): Promise<boolean> => {
    chain = chain.then(async () => {
      let next: Awaited<ReturnType<typeof load>>;
      try {
        next = await load(options.configFile, flags);
      } catch (err) {
        const problems = err instanceof TrafficError ? err.problems : [String(err)];
        log.error(
          { reason, problems },
          'reload refused: the configuration has problems; the running one stays',
        );
        return false;
      }
      const c = next.config;
      if (
        (!options.listenHost && c.listen.host !== config.listen.host) ||
        c.listen.port !== config.listen.port
      ) {
        log.warn({ listen: c.listen }, 'a new listen address takes a restart; the other changes apply');
      }
      if (certificate && c.tls) certificate.update(c.tls);
      else if (Boolean(certificate) !== Boolean(c.tls)) log.warn('turning TLS on or off takes a restart');
      try {
        const change = await lb.update(c.settings);
        log.info({ reason, ...change, policy: lb.policy }, 'configuration reloaded');
      } catch (err) {
        log.error({ reason, err }, 'reload refused');
        return false;
      }
      config = c;
      lastText = next.text;
      return true;
    });
    return chain;
  };

  const closers: Array<() => void> = [];
  if (options.reloadOnSighup ?? true) {
    const onHup = () => void reload('SIGHUP');
    process.on('SIGHUP', onHup);
    closers.push(() => process.off('SIGHUP', onHup));
  }
  if (options.configFile !== undefined && (options.watchFile ?? true)) {
    // The folder, not the file: editors and config maps replace a file by renaming another over it.
    const file = options.configFile;
    let timer: NodeJS.Timeout | undefined;
    const watcher = watch(dirname(file), (_event, name) => {
      if (name !== null && name !== basename(file) && !name.startsWith('..')) return;
      clearTimeout(timer);
      timer = setTimeout(async () => {
        const text = await readFile(file, 'utf8').catch(() => undefined);
        if (text !== undefined && text !== lastText) void reload('file changed');
      }, 100);
    });
    watcher.on('error', (err) =>
      log.warn({ err }, 'cannot watch the configuration file; SIGHUP still reloads'),
    );
    closers.push(() => {
      clearTimeout(timer);
      watcher.close();
    });
  }
  const close = () => {
    for (const c of closers.splice(0)) c();
  };
  lb.service.lifecycle.onShutdown('load balancer reloads', close);
  return {
    lb,
    get config() {
      return config;
    },
    reload,
    close,
  };
}
