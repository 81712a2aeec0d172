// `capstan up` joins the services every area contributes (`upServices` in its index) and runs them. Areas
// are found through package.json `exports`, so adding an area never edits this file.
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import type { UpService } from '../runtime/index.ts';
import { CliError, CliErrorCode } from './errors.ts';
import { runAction } from './run-action.ts';

/** One module a package exports, resolved to a file. */
export interface ExportedModule {
  /** The subpath as package.json spells it, e.g. `./runtime`. */
  subpath: string;
  /** The file imported for it. */
  url: URL;
}

/** An `exports` value: a path, or conditions mapping to one (nested conditions not used here). */
type ExportTarget = string | Record<string, string>;

/**
 * The modules a package's `exports` names, in its order, resolved as this CLI runs: from source (Node
 * running the `.ts` files, `capstan-source` condition) or from `dist/` (`default`). Entries that are not
 * JavaScript or TypeScript modules, such as `./package.json`, are left out.
 */
export function exportedModules(packageJsonUrl: URL, fromSource: boolean): ExportedModule[] {
  const pkg = JSON.parse(readFileSync(packageJsonUrl, 'utf8')) as { exports?: Record<string, ExportTarget> };
  const modules: ExportedModule[] = [];
  for (const [subpath, target] of Object.entries(pkg.exports ?? {})) {
    const file =
      typeof target === 'string'
        ? target
        : fromSource
          ? (target['capstan-source'] ?? target.default)
          : target.default;
    if (file === undefined || !/\.(ts|js|mjs)$/.test(file)) continue;
    modules.push({ subpath, url: new URL(file, packageJsonUrl) });
  }
  return modules;
}

/** Where this file's own package.json is, from `src/cli/up.ts` and `dist/cli/up.js` alike. */
const OWN_PACKAGE_JSON = new URL('../../package.json', import.meta.url);

/**
 * Every service the package's areas contribute to `capstan up`: each exported module is imported and its
 * `upServices` (when it has one) appended, in `exports` order, then each area's own order.
 */
export async function discoverUpServices(
  packageJsonUrl: URL = OWN_PACKAGE_JSON,
  fromSource: boolean = import.meta.url.endsWith('.ts'),
): Promise<UpService[]> {
  const services: UpService[] = [];
  const owner = new Map<string, string>();
  for (const { subpath, url } of exportedModules(packageJsonUrl, fromSource)) {
    const mod = (await import(url.href)) as { upServices?: readonly UpService[] };
    for (const service of mod.upServices ?? []) {
      const first = owner.get(service.name);
      if (first !== undefined) {
        throw new CliError(
          CliErrorCode.failed,
          `two areas contribute a service named ${service.name}: ${first} and ${subpath}`,
        );
      }
      owner.set(service.name, subpath);
      services.push(service);
    }
  }
  return services;
}

/** Resolves once `signal` is aborted. */
function aborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
}

/** `capstan up`: start every Capstan service on this machine on embedded defaults. */
export function command(): Command {
  return new Command('up')
    .description('Start every Capstan service on this machine on embedded defaults; Ctrl-C stops them')
    .option('--host <address>', 'listen address', '127.0.0.1')
    .option('--only <names>', 'comma-separated subset of services')
    .action((opts: { host: string; only?: string }) =>
      runAction('capstan up', async (ctx) => {
        const services = await discoverUpServices();
        const wanted = opts.only?.split(',').map((s) => s.trim());
        const unknown = wanted?.filter((w) => !services.some((s) => s.name === w)) ?? [];
        if (unknown.length > 0) {
          throw new CliError(
            CliErrorCode.usage,
            `unknown service(s): ${unknown.join(', ')}; known: ${services.map((s) => s.name).join(', ')}`,
          );
        }
        const chosen = services.filter((s) => !wanted || wanted.includes(s.name));
        const { createLogger, flushLogs, Lifecycle, loadConfig, logConfig } = await import(
          '../runtime/index.ts'
        );
        // The edge: LOG_LEVEL/LOG_FORMAT are read here, once; services get values (PORT is not read at all).
        const logger = createLogger({ name: 'capstan-up', ...loadConfig(logConfig, process.env) });
        // No load balancer in front of a local run: no propagation delay before closing listeners.
        const lifecycle = new Lifecycle({
          drainDelayMs: 0,
          log: (level, msg, fields) => logger[level](fields ?? {}, msg),
        });
        lifecycle.onShutdown('flush logs', () => flushLogs());
        const lines: string[] = [];
        for (const service of chosen) {
          if (ctx.signal.aborted) break;
          try {
            const started = await service.start({
              host: opts.host,
              lifecycle,
              logger,
              signal: ctx.signal,
              env: process.env,
            });
            if (started.stop) lifecycle.onShutdown(`stop ${service.name}`, () => started.stop?.());
            lines.push(`  ${service.name} — ${service.description}`);
            for (const [label, url] of Object.entries(started.urls))
              lines.push(`    ${label.padEnd(8)} ${url}`);
          } catch (err) {
            if (ctx.signal.aborted) break;
            logger.error({ err, service: service.name }, 'service failed to start');
            const report = await lifecycle.shutdown(`${service.name} failed to start`);
            return report.exitCode || 1;
          }
        }
        if (!ctx.signal.aborted) {
          process.stdout.write(
            `capstan up: ${chosen.length} service(s) running\n${lines.join('\n')}\nCtrl-C stops them.\n`,
          );
        }
        await aborted(ctx.signal);
        // The lifecycle's report decides: 0 when everything drained, 1 when something missed its deadline.
        const report = await lifecycle.shutdown(ctx.stoppedBy() ?? 'stopped');
        return report.exitCode;
      }),
    );
}
