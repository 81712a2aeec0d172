import { setTimeout as sleep } from 'node:timers/promises';
import type { DockerClient, TimeSpec } from './client.ts';
import { Deduper } from './dedupe.ts';
import { DockerError, DockerErrorCode, isPermanentError } from './errors.ts';
import { formatDockerTime, parseTimestampNs, toNs } from './time.ts';
import type { DockerEvent, Filters } from './types.ts';

/** What a resilient event stream reports besides events. */
export type EventNotice =
  | { type: 'disconnected'; error: string; attempt: number; delayMs: number }
  | {
      type: 'reconnected';
      /** How long the stream was down. */
      downMs: number;
      /** Events that happened while we were away and were delivered from the daemon's replay (`since`). */
      replayed: number;
      /** Events the replay sent again and were dropped. */
      duplicatesDropped: number;
      /**
       * Container state changes the daemon never sent (a container that died while dockerd was down under
       * `--live-restore` gets no `die` event), found by comparing container state and delivered as events with
       * the attribute `capstan.reconciled=true`. Only with `reconcile`.
       */
      reconciled: number;
      /**
       * The daemon restarted: a reconnect attempt found no daemon, or (unix socket) the daemon's socket file
       * was made anew, as a fast restart does before any retry. The daemon keeps its event buffer in memory
       * only, so events from around its shutdown may be missing: reconcile from current state if they matter.
       */
      daemonUnreachable: boolean;
    };

/** Options of {@link streamEvents}. */
export interface StreamEventsOptions {
  signal?: AbortSignal;
  /** Start from here (Date, Unix seconds, RFC3339, duration ago). Default: now. */
  since?: TimeSpec;
  /** Stop at this time (then the stream ends). */
  until?: TimeSpec;
  /** API filters, e.g. `{ type: ['container'], event: ['die'], label: ['app=web'] }`. */
  filters?: Filters;
  /** Replay window asked on reconnect, to catch events recorded out of order (ms). Default 1000. */
  overlapMs?: number;
  retryInitialMs?: number;
  retryMaxMs?: number;
  onNotice?: (notice: EventNotice) => void;
  /**
   * After a reconnect, compare container state with what the events said and emit the `start`, `die` and
   * `destroy` events the daemon never sent. Default false (true in {@link watchEvents} for containers).
   */
  reconcile?: boolean;
}

/** What the stream last knew of a container, to detect changes no event reported. */
interface KnownContainer {
  running: boolean;
  name: string;
  image: string;
}

function eventKey(e: DockerEvent): string {
  return `${e.Type}|${e.Action}|${e.Actor?.ID ?? e.id ?? ''}|${e.scope ?? ''}`;
}

/**
 * `/events` that survives daemon restarts and broken connections: on each reconnect it asks with `since` = the
 * last event time (minus a small overlap), drops the events it already delivered, and reports the gap through
 * `onNotice` (how long it was down, how many events were replayed). Runs until aborted or `until`.
 */
export async function* streamEvents(
  client: DockerClient,
  options: StreamEventsOptions = {},
): AsyncGenerator<DockerEvent> {
  const { signal } = options;
  const dedupe = new Deduper(options.overlapMs ?? 1_000);
  const notify = options.onNotice ?? (() => {});
  const initialDelay = options.retryInitialMs ?? 100;
  const maxDelay = options.retryMaxMs ?? 2_000;
  // Without an explicit start, "now" is pinned once so a reconnect before the first event still replays.
  const start = toNs(options.since ?? new Date());
  const until = options.until === undefined ? undefined : toNs(options.until);
  let attempt = 0;
  let downSince: number | undefined;
  let connectedOnce = false;
  let unreachable = false;
  // The daemon's socket file: a restarted daemon makes a new one, even when it came back before a retry.
  let socketIdentity = client.daemonSocketIdentity();
  const reconcile = options.reconcile ?? false;
  const known = new Map<string, KnownContainer>();
  const actionsWanted = new Set(options.filters?.event === undefined ? [] : [options.filters.event].flat());
  // Reconciling needs every start/die/destroy to keep state, so the action filter is applied here instead.
  const apiFilters: Filters | undefined =
    reconcile && options.filters ? { ...options.filters, event: undefined } : options.filters;
  const wanted = (action: string) => actionsWanted.size === 0 || actionsWanted.has(action.split(':')[0]!);
  if (reconcile) {
    for (;;) {
      try {
        for (const [id, k] of await snapshot(client, options.filters, signal)) known.set(id, k);
        break;
      } catch (err) {
        if (signal?.aborted) return;
        if (!isUnreachable(err) && !(err instanceof DockerError && err.code === DockerErrorCode.connect))
          throw err;
        await sleep(Math.min(maxDelay, initialDelay * 2 ** attempt++), undefined, { signal }).catch(() => {});
      }
    }
    attempt = 0;
  }
  for (;;) {
    if (signal?.aborted) return;
    const resume = dedupe.resumeFrom();
    const since = resume !== undefined && resume > start ? resume : start;
    if (connectedOnce) dedupe.beginReplay();
    let replayed = 0;
    let reconciled = 0;
    let reported = downSince === undefined;
    /** Something came over this connection: it is up, whatever happens to it next. */
    let received = false;
    // Real events already stood in for by a reconciled one: `id|action`, dropped during the replay.
    const standIns = new Set<string>();
    if (downSince !== undefined) {
      const identity = client.daemonSocketIdentity();
      if (identity !== undefined && socketIdentity !== undefined && identity !== socketIdentity)
        unreachable = true;
      socketIdentity = identity ?? socketIdentity;
    }
    const report = () => {
      if (reported || downSince === undefined) return;
      reported = true;
      notify({
        type: 'reconnected',
        downMs: Date.now() - downSince,
        replayed,
        duplicatesDropped: dedupe.dropped,
        reconciled,
        daemonUnreachable: unreachable,
      });
      downSince = undefined;
      unreachable = false;
    };
    try {
      if (reconcile && downSince !== undefined) {
        const now = await snapshot(client, options.filters, signal);
        for (const event of await diffState(client, known, now, signal)) {
          if (!wanted(event.Action)) {
            applyEvent(known, event);
            continue;
          }
          standIns.add(`${event.Actor.ID}|${event.Action}`);
          applyEvent(known, event);
          reconciled++;
          yield event;
        }
      }
      // Events stamped after this moment are live, not the replay of what happened while we were away.
      const connectNs = BigInt(Date.now()) * 1_000_000n;
      const events = client.events({
        since: formatDockerTime(since),
        ...(until !== undefined ? { until: formatDockerTime(until) } : {}),
        ...(apiFilters ? { filters: apiFilters } : {}),
        ...(signal ? { signal } : {}),
      });
      connectedOnce = true;
      // The replay of a reconnect arrives at once; report it when the first live event or a quiet moment comes.
      const quiet = setTimeout(report, 250);
      try {
        for await (const event of events) {
          attempt = 0;
          received = true;
          const ns = BigInt(event.timeNano ?? event.time * 1e9);
          if (!reported && ns >= connectNs) report();
          if (!dedupe.admit(ns, 'event', eventKey(event))) continue;
          if (!reported && standIns.delete(`${event.Actor?.ID}|${event.Action}`)) continue;
          if (reconcile && event.Type === 'container') applyEvent(known, event);
          if (reconcile && !wanted(event.Action)) continue;
          if (!reported) replayed++;
          yield event;
        }
      } finally {
        clearTimeout(quiet);
        // Also when the consumer stops early or this connection breaks in turn: it was up.
        if (received) report();
      }
      report();
      // A clean end is `until` reached, or the daemon closing the stream (shutdown).
      if (until !== undefined) return;
      throw new DockerError(DockerErrorCode.connect, 'event stream ended (daemon shutting down?)');
    } catch (err) {
      if (signal?.aborted) return;
      if (isPermanentError(err)) throw err;
      downSince ??= Date.now();
      if (isUnreachable(err)) unreachable = true;
      const delayMs = Math.min(maxDelay, initialDelay * 2 ** attempt);
      attempt++;
      notify({ type: 'disconnected', error: (err as Error).message, attempt, delayMs });
      try {
        await sleep(delayMs, undefined, { signal });
      } catch {
        return;
      }
    }
  }
}

/** Containers matching the label / container filters of an event watch, by id. */
async function snapshot(
  client: DockerClient,
  filters: Filters | undefined,
  signal: AbortSignal | undefined,
): Promise<Map<string, KnownContainer>> {
  const label = filters?.label;
  const list = await client.listContainers({
    all: true,
    ...(label ? { filters: { label } } : {}),
    ...(signal ? { signal } : {}),
  });
  const only = filters?.container === undefined ? undefined : new Set([filters.container].flat());
  const out = new Map<string, KnownContainer>();
  for (const c of list) {
    const name = (c.Names[0] ?? '').replace(/^\//, '');
    if (only && !only.has(name) && !only.has(c.Id) && ![...only].some((x) => c.Id.startsWith(x))) continue;
    out.set(c.Id, { running: c.State === 'running', name, image: c.Image });
  }
  return out;
}

function applyEvent(known: Map<string, KnownContainer>, event: DockerEvent): void {
  const id = event.Actor?.ID;
  if (!id || event.Type !== 'container') return;
  const attrs = event.Actor.Attributes ?? {};
  const k = known.get(id) ?? { running: false, name: attrs.name ?? '', image: attrs.image ?? '' };
  if (event.Action === 'start') known.set(id, { ...k, running: true });
  else if (event.Action === 'die') known.set(id, { ...k, running: false });
  else if (event.Action === 'destroy') known.delete(id);
  else if (!known.has(id)) known.set(id, k);
}

function synthetic(
  id: string,
  k: KnownContainer,
  action: string,
  ns: bigint,
  extra: Record<string, string> = {},
): DockerEvent {
  return {
    Type: 'container',
    Action: action,
    Actor: { ID: id, Attributes: { name: k.name, image: k.image, ...extra, 'capstan.reconciled': 'true' } },
    scope: 'local',
    status: action,
    id,
    from: k.image,
    time: Number(ns / 1_000_000_000n),
    timeNano: Number(ns),
  };
}

/** The events that explain the difference between what we knew and the daemon's current state. */
async function diffState(
  client: DockerClient,
  known: Map<string, KnownContainer>,
  now: Map<string, KnownContainer>,
  signal: AbortSignal | undefined,
): Promise<DockerEvent[]> {
  const out: DockerEvent[] = [];
  const nowNs = BigInt(Date.now()) * 1_000_000n;
  for (const [id, k] of known) {
    const cur = now.get(id);
    if (k.running && !cur?.running) {
      let exitCode = '';
      let at = nowNs;
      if (cur) {
        try {
          const info = await client.inspectContainer(id, signal ? { signal } : {});
          exitCode = String(info.State.ExitCode);
          at = parseTimestampNs(info.State.FinishedAt) ?? nowNs;
        } catch {}
      }
      out.push(synthetic(id, k, 'die', at, exitCode ? { exitCode } : {}));
    }
    if (!cur) out.push(synthetic(id, k, 'destroy', nowNs));
  }
  for (const [id, cur] of now) {
    const k = known.get(id);
    if (cur.running && !k?.running) out.push(synthetic(id, cur, 'start', nowNs));
  }
  return out;
}

/** The daemon's socket was missing or refused: it was down, not just our connection. */
function isUnreachable(err: unknown): boolean {
  const cause = (err as { cause?: { code?: string } })?.cause;
  return (
    err instanceof DockerError &&
    err.code === DockerErrorCode.connect &&
    ['ECONNREFUSED', 'ENOENT'].includes(cause?.code ?? '')
  );
}

/** Options of {@link watchEvents}. */
export interface WatchEventsOptions extends Omit<StreamEventsOptions, 'signal'> {
  /** Actions to react to (`die`, `start`, `oom`, `health_status: unhealthy`...). Empty or absent: all. */
  on?: string[];
  /** Object type; default `container`. */
  type?: string;
  /** Called once per event, one at a time; a throwing handler is reported, the watch goes on. */
  handler: (event: DockerEvent) => void | Promise<void>;
  onHandlerError?: (err: unknown, event: DockerEvent) => void;
  signal?: AbortSignal;
}

/** A running {@link watchEvents}. */
export interface EventWatcher {
  /** Resolves when the watch stops (close, abort, `until`); rejects on a fatal error. */
  readonly done: Promise<void>;
  /** Events handed to the handler so far. */
  readonly handled: number;
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Sidecar-style watch: call `handler` for each matching event (e.g. every container `die`), reconnecting
 * across daemon restarts without repeating or skipping what the daemon can replay (see {@link streamEvents}).
 */
export function watchEvents(client: DockerClient, options: WatchEventsOptions): EventWatcher {
  const controller = new AbortController();
  const signal = options.signal ? AbortSignal.any([options.signal, controller.signal]) : controller.signal;
  const type = options.type ?? 'container';
  const filters: Filters = { type: [type], ...options.filters };
  const actions = options.on?.filter((a) => a !== '');
  // The API filter matches an action's prefix-less name (`health_status`), so filter exact names here too.
  if (actions?.length) filters.event = actions.map((a) => a.split(':')[0]!);
  let handled = 0;
  const done = (async () => {
    const reconcile = options.reconcile ?? type === 'container';
    for await (const event of streamEvents(client, { ...options, filters, signal, reconcile })) {
      if (actions?.length && !actions.some((a) => event.Action === a || event.Action.startsWith(`${a}:`)))
        continue;
      try {
        await options.handler(event);
      } catch (err) {
        options.onHandlerError?.(err, event);
      }
      handled++;
    }
  })();
  const close = async () => {
    controller.abort();
    await done.catch(() => {});
  };
  return {
    done,
    get handled() {
      return handled;
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}
