import { Command } from 'commander';
import type { EventNotice } from '../docker/index.ts';
import { CliError, CliErrorCode } from './errors.ts';
import { ExitCode } from './exit-code.ts';
import { runAction } from './run-action.ts';

interface WatchCliOptions {
  on: string[];
  exec?: string;
  filter: string[];
  type: string;
  since?: string;
  host?: string;
  json?: boolean;
}

const collect = (value: string, previous: string[]) => [...previous, ...value.split(',').filter(Boolean)];

/** `--filter key=value` options as the API's filters: values of one key gathered. */
function parseFilters(pairs: readonly string[]): Record<string, string[]> {
  const filters: Record<string, string[]> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new CliError(CliErrorCode.usage, `--filter wants key=value, got ${pair}`);
    const key = pair.slice(0, eq);
    filters[key] = [...(filters[key] ?? []), pair.slice(eq + 1)];
  }
  return filters;
}

/** One line on stderr per notice worth a person's attention (the first failed attempt, each recovery). */
function describeNotice(n: EventNotice): string | undefined {
  if (n.type === 'disconnected') {
    return n.attempt === 1 ? `event stream lost (${n.error}); reconnecting` : undefined;
  }
  return (
    `reconnected after ${(n.downMs / 1000).toFixed(1)} s, replayed ${n.replayed} missed event(s), ` +
    `reconciled ${n.reconciled} change(s) the daemon never reported, ` +
    `dropped ${n.duplicatesDropped} duplicate(s)` +
    (n.daemonUnreachable
      ? '; the daemon was down: events from around its shutdown may be missing (it keeps them in memory)'
      : '')
  );
}

/** `capstan docker`: Docker Engine helpers (sidecar watch, events). */
export function command(): Command {
  const docker = new Command('docker').description('Docker Engine helpers');
  docker
    .command('watch')
    .description(
      'Sidecar: react to container events (e.g. --on die --exec "notify.sh"). Survives daemon restarts by ' +
        'reconnecting with since=<last event>, reports what it missed, never runs a hook twice for one event.',
    )
    .option(
      '--on <actions>',
      'event actions to react to (comma separated or repeated): die, start, oom...',
      collect,
      [],
    )
    .option(
      '--exec <command>',
      'shell command run per event, with CAPSTAN_EVENT_* / CAPSTAN_CONTAINER_* env vars',
    )
    .option('--filter <key=value>', 'API filter, e.g. label=app=web, container=web (repeatable)', collect, [])
    .option('--type <type>', 'object type', 'container')
    .option('--since <time>', 'replay events since a time or duration ago (default: now)')
    .option('--json', 'print each event as JSON on stdout')
    .option('-H, --host <host>', 'daemon address (default: DOCKER_HOST, else the system socket)')
    .action((opts: WatchCliOptions) =>
      runAction('capstan docker watch', async ({ signal }) => {
        const filters = parseFilters(opts.filter);
        const { DockerClient, runEventHook, watchEvents } = await import('../docker/index.ts');
        const client = new DockerClient(opts.host ? { host: opts.host } : {});
        const log = (text: string) => process.stderr.write(`[capstan docker watch] ${text}\n`);
        const watcher = watchEvents(client, {
          on: opts.on,
          type: opts.type,
          filters,
          signal,
          ...(opts.since ? { since: opts.since } : {}),
          handler: async (event) => {
            if (opts.json || !opts.exec) process.stdout.write(`${JSON.stringify(event)}\n`);
            if (!opts.exec) return;
            const code = await runEventHook(opts.exec, event);
            if (code !== 0) {
              const who = event.Actor.Attributes.name ?? event.Actor.ID;
              log(`hook exited with ${code} for ${event.Action} ${who}`);
            }
          },
          onNotice: (n) => {
            const text = describeNotice(n);
            if (text !== undefined) log(text);
          },
        });
        log(`watching ${opts.type} events${opts.on.length ? ` (${opts.on.join(', ')})` : ''}`);
        try {
          await watcher.done;
        } finally {
          await client.close();
        }
        // A sidecar stopped by its supervisor (SIGTERM) or by hand ended as asked.
        return ExitCode.ok;
      }),
    );
  return docker;
}
