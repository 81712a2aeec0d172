// The hook side of `capstan docker watch --exec`: a shell command run per event, the event in its env.
import { spawn } from 'node:child_process';
import { DockerError, DockerErrorCode } from './errors.ts';
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

/** Default of {@link EventHookOptions.timeoutMs}: a hook running longer is stopped. */
export const DEFAULT_HOOK_TIMEOUT_MS = 60_000;
/** Default of {@link EventHookOptions.killGraceMs}: time between SIGTERM and SIGKILL. */
export const DEFAULT_HOOK_KILL_GRACE_MS = 5_000;
/** Default of {@link EventHookQueueOptions.concurrency}. */
export const DEFAULT_HOOK_CONCURRENCY = 4;
/** Default of {@link EventHookQueueOptions.queueSize}. */
export const DEFAULT_HOOK_QUEUE_SIZE = 100;

/** Options of {@link runEventHook}. */
export interface EventHookOptions {
  /** Environment the hook starts from, the event's variables added on top. Default `process.env`. */
  env?: Record<string, string | undefined>;
  /**
   * How long the hook may run: past it, its process group gets SIGTERM, then SIGKILL after `killGraceMs`.
   * Default {@link DEFAULT_HOOK_TIMEOUT_MS}.
   */
  timeoutMs?: number;
  /** Default {@link DEFAULT_HOOK_KILL_GRACE_MS}. */
  killGraceMs?: number;
}

/** How one hook ended. */
export interface EventHookResult {
  /** Exit status: 127 when the shell cannot start, 128 + n when signal n ended it. */
  code: number;
  /** It passed its timeout and was killed. */
  timedOut: boolean;
}

const SIGNAL_NUMBERS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 };

/**
 * Run `command` through `sh -c` for one event, with {@link eventHookEnv} in its environment and this
 * process's stdio, in a process group of its own so a timeout stops what it started too. Never rejects:
 * a failing or hung hook is the caller's to report, the watch goes on.
 */
export function runEventHook(
  command: string,
  event: DockerEvent,
  options: EventHookOptions = {},
): Promise<EventHookResult> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_HOOK_TIMEOUT_MS;
  const graceMs = options.killGraceMs ?? DEFAULT_HOOK_KILL_GRACE_MS;
  return new Promise((resolve) => {
    const child = spawn('sh', ['-c', command], {
      stdio: 'inherit',
      detached: true,
      env: { ...(options.env ?? process.env), ...eventHookEnv(event) },
    });
    let timedOut = false;
    let killTimer: NodeJS.Timeout | undefined;
    // Signal the whole group: `sh -c 'a; sleep 3600'` would otherwise leave the sleep behind.
    const killGroup = (signal: NodeJS.Signals) => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, signal);
      } catch {
        // ESRCH: the group is gone already.
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup('SIGTERM');
      killTimer = setTimeout(() => killGroup('SIGKILL'), graceMs);
    }, timeoutMs);
    const done = (code: number) => {
      clearTimeout(timer);
      clearTimeout(killTimer);
      resolve({ code, timedOut });
    };
    child.on('error', () => done(127));
    child.on('exit', (code, signal) => done(code ?? (signal ? 128 + (SIGNAL_NUMBERS[signal] ?? 0) : 1)));
  });
}

/** Options of {@link EventHookQueue}. */
export interface EventHookQueueOptions extends EventHookOptions {
  /** Hooks running at once. Default {@link DEFAULT_HOOK_CONCURRENCY}. */
  concurrency?: number;
  /** Events waiting for a free slot; an event arriving when it is full is dropped. Default {@link DEFAULT_HOOK_QUEUE_SIZE}. */
  queueSize?: number;
  /** Told of each hook that failed, timed out, or was dropped (for a warning line). */
  onReport?: (report: EventHookReport) => void;
}

/** What {@link EventHookQueue} tells `onReport`. */
export type EventHookReport =
  | { type: 'failed'; event: DockerEvent; code: number }
  | { type: 'timeout'; event: DockerEvent; code: number; timeoutMs: number }
  | { type: 'dropped'; event: DockerEvent; reason: 'queue full' | 'stopping'; queueSize: number };

/** Counters of an {@link EventHookQueue}. */
export interface EventHookStats {
  /** Hooks that exited 0. */
  ok: number;
  /** Hooks that exited non-zero on their own. */
  failed: number;
  /** Hooks killed at their timeout. */
  timedOut: number;
  /** Events whose hook never ran: the queue was full, or the watch stopped first. */
  dropped: number;
  running: number;
  queued: number;
}

/**
 * Runs one shell hook per event with bounded concurrency behind a bounded queue, so a hung or slow hook
 * never stalls the event stream or the hooks after it: `submit` never waits; past the queue's bound an
 * event is dropped, reported and counted.
 */
export class EventHookQueue {
  readonly #command: string;
  readonly #options: EventHookQueueOptions;
  readonly #concurrency: number;
  readonly #queueSize: number;
  readonly #queue: DockerEvent[] = [];
  readonly #running = new Set<Promise<void>>();
  readonly #stats = { ok: 0, failed: 0, timedOut: 0, dropped: 0 };
  #closed = false;

  constructor(command: string, options: EventHookQueueOptions = {}) {
    this.#command = command;
    this.#options = options;
    this.#concurrency = options.concurrency ?? DEFAULT_HOOK_CONCURRENCY;
    this.#queueSize = options.queueSize ?? DEFAULT_HOOK_QUEUE_SIZE;
    for (const [name, value] of [
      ['concurrency', this.#concurrency],
      ['queueSize', this.#queueSize],
      ['timeoutMs', options.timeoutMs ?? DEFAULT_HOOK_TIMEOUT_MS],
    ] as const) {
      if (!Number.isInteger(value) || value < (name === 'queueSize' ? 0 : 1)) {
        throw new DockerError(
          DockerErrorCode.badRequest,
          `hook ${name} must be a positive integer, got ${value}`,
        );
      }
    }
  }

  /** Run the hook for `event` now, or queue it; false when it was dropped (the queue is full or closed). */
  submit(event: DockerEvent): boolean {
    if (this.#closed) return this.#drop(event, 'stopping');
    if (this.#running.size < this.#concurrency) {
      this.#start(event);
      return true;
    }
    if (this.#queue.length >= this.#queueSize) return this.#drop(event, 'queue full');
    this.#queue.push(event);
    return true;
  }

  /** Counters so far. */
  get stats(): EventHookStats {
    return { ...this.#stats, running: this.#running.size, queued: this.#queue.length };
  }

  /**
   * Stop taking events: queued ones are dropped (reported, counted), running hooks are awaited, each
   * bounded by its own timeout.
   */
  async close(): Promise<void> {
    this.#closed = true;
    for (const event of this.#queue.splice(0)) this.#drop(event, 'stopping');
    while (this.#running.size > 0) await Promise.race(this.#running);
  }

  #drop(event: DockerEvent, reason: 'queue full' | 'stopping'): false {
    this.#stats.dropped++;
    this.#options.onReport?.({ type: 'dropped', event, reason, queueSize: this.#queueSize });
    return false;
  }

  #start(event: DockerEvent): void {
    const run = (async () => {
      const { code, timedOut } = await runEventHook(this.#command, event, this.#options);
      if (timedOut) {
        this.#stats.timedOut++;
        this.#options.onReport?.({
          type: 'timeout',
          event,
          code,
          timeoutMs: this.#options.timeoutMs ?? DEFAULT_HOOK_TIMEOUT_MS,
        });
      } else if (code !== 0) {
        this.#stats.failed++;
        this.#options.onReport?.({ type: 'failed', event, code });
      } else {
        this.#stats.ok++;
      }
    })();
    this.#running.add(run);
    void run.finally(() => {
      this.#running.delete(run);
      const next = this.#queue.shift();
      if (next) this.#start(next);
    });
  }
}
