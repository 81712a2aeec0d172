import { spawn } from 'node:child_process';
import { Command } from 'commander';
import type { DockerEvent } from '../docker/index.ts';

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

/** Environment handed to `--exec`: the event's details, so the command needs no JSON parsing. */
export function eventEnv(event: DockerEvent): Record<string, string> {
  const attrs = event.Actor?.Attributes ?? {};
  const ns = BigInt(event.timeNano ?? event.time * 1e9);
  const iso = new Date(Number(ns / 1_000_000n)).toISOString().slice(0, 19);
  return {
    CAPSTAN_EVENT_TYPE: event.Type,
    CAPSTAN_EVENT_ACTION: event.Action,
    CAPSTAN_EVENT_TIME: `${iso}.${(ns % 1_000_000_000n).toString().padStart(9, '0')}Z`,
    CAPSTAN_EVENT_TIME_NANO: ns.toString(),
    CAPSTAN_EVENT_JSON: JSON.stringify(event),
    CAPSTAN_CONTAINER_ID: event.Actor?.ID ?? '',
    CAPSTAN_CONTAINER_NAME: attrs.name ?? '',
    CAPSTAN_CONTAINER_IMAGE: attrs.image ?? '',
    CAPSTAN_EXIT_CODE: attrs.exitCode ?? '',
  };
}

function runHook(command: string, env: Record<string, string>): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn('sh', ['-c', command], { stdio: 'inherit', env: { ...process.env, ...env } });
    child.on('error', () => resolve(127));
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
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
    .action(async (opts: WatchCliOptions) => {
      const { DockerClient, watchEvents } = await import('../docker/index.ts');
      const filters: Record<string, string[]> = {};
      for (const f of opts.filter) {
        const eq = f.indexOf('=');
        if (eq <= 0) throw new Error(`--filter wants key=value, got ${f}`);
        const key = f.slice(0, eq);
        filters[key] = [...(filters[key] ?? []), f.slice(eq + 1)];
      }
      const client = new DockerClient(opts.host ? { host: opts.host } : {});
      const controller = new AbortController();
      const stop = () => controller.abort();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      const log = (text: string) => process.stderr.write(`[capstan docker watch] ${text}\n`);
      const watcher = watchEvents(client, {
        on: opts.on,
        type: opts.type,
        filters,
        signal: controller.signal,
        ...(opts.since ? { since: opts.since } : {}),
        handler: async (event) => {
          if (opts.json || !opts.exec) process.stdout.write(`${JSON.stringify(event)}\n`);
          if (opts.exec) {
            const code = await runHook(opts.exec, eventEnv(event));
            if (code !== 0)
              log(
                `hook exited with ${code} for ${event.Action} ${event.Actor.Attributes.name ?? event.Actor.ID}`,
              );
          }
        },
        onNotice: (n) => {
          if (n.type === 'disconnected') {
            if (n.attempt === 1) log(`event stream lost (${n.error}); reconnecting`);
            return;
          }
          log(
            `reconnected after ${(n.downMs / 1000).toFixed(1)} s, replayed ${n.replayed} missed event(s), ` +
              `reconciled ${n.reconciled} change(s) the daemon never reported, ` +
              `dropped ${n.duplicatesDropped} duplicate(s)` +
              (n.daemonUnreachable
                ? '; the daemon was down: events from around its shutdown may be missing (it keeps them in memory)'
                : ''),
          );
        },
      });
      log(`watching ${opts.type} events${opts.on.length ? ` (${opts.on.join(', ')})` : ''}`);
      try {
        await watcher.done;
      } finally {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        await client.close();
      }
    });
  return docker;
}
