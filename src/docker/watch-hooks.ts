// The hook side of `capstan docker watch --exec`: a shell command run per event, the event in its env.
import { spawn } from 'node:child_process';
import type { DockerEvent } from './types.ts';

/** Environment handed to an event hook: the event's details, so the command needs no JSON parsing. */
export function eventHookEnv(event: DockerEvent): Record<string, string> {
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

/** Options of {@link runEventHook}. */
export interface EventHookOptions {
  /** Environment the hook starts from, the event's variables added on top. Default `process.env`. */
  env?: Record<string, string | undefined>;
}

/**
 * Run `command` through `sh -c` for one event, with {@link eventHookEnv} in its environment and this
 * process's stdio. Resolves with its exit status: 127 when the shell cannot start, 128 when a signal
 * ended it. Never rejects: a failing hook is the caller's to report, the watch goes on.
 */
export function runEventHook(
  command: string,
  event: DockerEvent,
  options: EventHookOptions = {},
): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn('sh', ['-c', command], {
      stdio: 'inherit',
      env: { ...(options.env ?? process.env), ...eventHookEnv(event) },
    });
    child.on('error', () => resolve(127));
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
}
