import { Command } from 'commander';
import type { DockerEvent, EventHookReport, EventNotice } from '../docker/index.ts';
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
  hookTimeout: string;
  hookConcurrency: string;
  hookQueue: string;
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

/** A positive (or, with `min` 0, non-negative) integer option. */
function parseCount(flag: string, text: string, min = 1): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < min) {
    throw new CliError(CliErrorCode.usage, `${flag} wants an integer >= ${min}, got ${JSON.stringify(text)}`);
  }
  return n;
}

const who = (event: DockerEvent) => `${event.Action} ${event.Actor.Attributes.name ?? event.Actor.ID}`;

/** One warning line per hook worth a person's attention: a failure, a timeout, a dropped event. */
function describeHookReport(r: EventHookReport): string {
  if (r.type === 'failed') return `hook exited with ${r.code} for ${who(r.event)}`;
  if (r.type === 'timeout') {
    return `hook for ${who(r.event)} passed its timeout (${r.timeoutMs / 1000} s) and was killed (exit ${r.code})`;
  }
  return r.reason === 'queue full'
    ? `hook queue full (${r.queueSize} waiting): dropped ${who(r.event)} (${r.event.Actor.ID}), its hook will not run`
    : `stopping: dropped ${who(r.event)} (${r.event.Actor.ID}), its hook will not run`;
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
    .option(
      '--hook-timeout <duration>',
      'stop a hook running longer than this (SIGTERM to its process group, SIGKILL 5 s later)',
      '60s',
    )
    .option('--hook-concurrency <n>', 'hooks running at once', '4')
    .option(
      '--hook-queue <n>',
      'events waiting for a hook slot; past it an event is dropped and reported',
      '100',
    )
    .option('--filter <key=value>', 'API filter, e.g. label=app=web, container=web (repeatable)', collect, [])
    .option('--type <type>', 'object type', 'container')
    .option('--since <time>', 'replay events since a time or duration ago (default: now)')
    .option('--json', 'print each event as JSON on stdout')
    .option('-H, --host <host>', 'daemon address (default: DOCKER_HOST, else the system socket)')
    .action((opts: WatchCliOptions) =>
      runAction('capstan docker watch', async ({ signal }) => {
        const filters = parseFilters(opts.filter);
        const { DEFAULT_HOOK_KILL_GRACE_MS, DockerClient, EventHookQueue, parseDurationMs, watchEvents } =
          await import('../docker/index.ts');
        let timeoutMs: number;
        try {
          timeoutMs = parseDurationMs(opts.hookTimeout);
        } catch (err) {
          throw new CliError(CliErrorCode.usage, `--hook-timeout: ${(err as Error).message}`, { cause: err });
        }
        if (timeoutMs < 1) throw new CliError(CliErrorCode.usage, '--hook-timeout must be above 0');
        const log = (text: string) => process.stderr.write(`[capstan docker watch] ${text}\n`);
        // The watch hands each event over and goes on: hooks run beside the event stream, never in it.
        const hooks = opts.exec
          ? new EventHookQueue(opts.exec, {
              timeoutMs,
              killGraceMs: DEFAULT_HOOK_KILL_GRACE_MS,
              concurrency: parseCount('--hook-concurrency', opts.hookConcurrency),
              queueSize: parseCount('--hook-queue', opts.hookQueue, 0),
              onReport: (r) => log(describeHookReport(r)),
            })
          : undefined;
        const client = new DockerClient(opts.host ? { host: opts.host } : {});
        const watcher = watchEvents(client, {
          on: opts.on,
          type: opts.type,
          filters,
          signal,
          ...(opts.since ? { since: opts.since } : {}),
          handler: (event) => {
            if (opts.json || !hooks) process.stdout.write(`${JSON.stringify(event)}\n`);
            hooks?.submit(event);
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
          await hooks?.close();
          await client.close();
          const s = hooks?.stats;
          log(
            `stopped after ${watcher.handled} event(s)` +
              (s
                ? `; hooks: ${s.ok} ok, ${s.failed} failed, ${s.timedOut} timed out, ${s.dropped} dropped`
                : ''),
          );
        }
        // A sidecar stopped by its supervisor (SIGTERM) or by hand ended as asked.
        return ExitCode.ok;
      }),
    );
  return docker;
}
