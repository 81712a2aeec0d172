import {
  Backoff,
  linkedController,
  OverlapDedupe,
  type RetryInfo,
  resumable,
  retry,
} from '../runtime/index.ts';
import type { DockerClient, TimeSpec } from './client.ts';
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
  const backoff = new Backoff({
    initialMs: options.retryInitialMs ?? 100,
    maxMs: options.retryMaxMs ?? 2_000,
    jitter: 'equal',
  });
  const stream = new EventStream(client, options);
  if (options.reconcile) {
    try {
      await stream.learnState(backoff);
    } catch (err) {
      if (signal?.aborted) return;
      throw err;
    }
    backoff.reset();
  }
  const batches = resumable<DockerEvent, bigint>({
    connect: (from) => stream.connect(from),
    tracker: stream.dedupe,
    backoff,
    isPermanent: isPermanentError,
    onNotice: (n) => {
      if (n.type === 'retrying') stream.failed(n);
    },
    ...(signal ? { signal } : {}),
  });
  for await (const [event] of batches) {
    if (event !== undefined && stream.deliver(event)) yield event;
  }
}

/**
 * The state of one {@link streamEvents} across connections: what it knows of containers (to reconcile), the
 * current outage and what the connection that ends it replayed, for the `reconnected` notice.
 */
class EventStream {
  readonly #client: DockerClient;
  readonly #options: StreamEventsOptions;
  readonly #notify: (notice: EventNotice) => void;
  readonly #reconcile: boolean;
  // Without an explicit start, "now" is pinned once so a reconnect before the first event still replays.
  readonly #start: bigint;
  readonly #until: bigint | undefined;
  readonly #apiFilters: Filters | undefined;
  readonly #actionsWanted: Set<string>;
  readonly #known = new Map<string, KnownContainer>();
  /** Events made up by reconciling: not part of the daemon's order, so never deduped nor resumed from. */
  readonly #reconciled = new WeakSet<DockerEvent>();
  readonly dedupe: OverlapDedupe<DockerEvent>;
  #downSince: number | undefined;
  #unreachable = false;
  // The daemon's socket file: a restarted daemon makes a new one, even when it came back before a retry.
  #socketIdentity: string | undefined;
  #gap = newGap(true);

  constructor(client: DockerClient, options: StreamEventsOptions) {
    this.#client = client;
    this.#options = options;
    this.#notify = options.onNotice ?? (() => {});
    this.#reconcile = options.reconcile ?? false;
    this.#start = toNs(options.since ?? new Date());
    this.#until = options.until === undefined ? undefined : toNs(options.until);
    this.#actionsWanted = new Set(options.filters?.event === undefined ? [] : [options.filters.event].flat());
    // Reconciling needs every start/die/destroy to keep state, so the action filter is applied here instead.
    this.#apiFilters =
      this.#reconcile && options.filters ? { ...options.filters, event: undefined } : options.filters;
    this.#socketIdentity = client.daemonSocketIdentity();
    this.dedupe = new OverlapDedupe<DockerEvent>({
      overlap: BigInt(Math.round((options.overlapMs ?? 1_000) * 1e6)),
      position: (e) => (this.#reconciled.has(e) ? undefined : eventNs(e)),
      key: eventKey,
    });
  }

  /** The containers' state before the first connection, waiting while the daemon is not there (yet). */
  async learnState(backoff: Backoff): Promise<void> {
    const { signal } = this.#options;
    const state = await retry((s) => snapshot(this.#client, this.#options.filters, s), {
      backoff,
      isPermanent: (err) => !(err instanceof DockerError && err.code === DockerErrorCode.connect),
      ...(signal ? { signal } : {}),
    });
    for (const [id, k] of state) this.#known.set(id, k);
  }

  /** One `/events` connection; after an outage (with `reconcile`) first the state changes it missed. */
  async *connect(from: bigint | undefined): AsyncGenerator<DockerEvent[]> {
    const { signal, filters } = this.#options;
    this.#gap = newGap(this.#downSince === undefined);
    if (this.#downSince !== undefined) {
      const identity = this.#client.daemonSocketIdentity();
      if (identity !== undefined && this.#socketIdentity !== undefined && identity !== this.#socketIdentity)
        this.#unreachable = true;
      this.#socketIdentity = identity ?? this.#socketIdentity;
      if (this.#reconcile) {
        const now = await snapshot(this.#client, filters, signal);
        for (const event of await diffState(this.#client, this.#known, now, signal)) {
          this.#reconciled.add(event);
          yield [event];
        }
      }
    }
    const since = from !== undefined && from > this.#start ? from : this.#start;
    // Events stamped after this moment are live, not the replay of what happened while we were away.
    this.#gap.connectNs = BigInt(Date.now()) * 1_000_000n;
    const events = this.#client.events({
      since: formatDockerTime(since),
      ...(this.#until !== undefined ? { until: formatDockerTime(this.#until) } : {}),
      ...(this.#apiFilters ? { filters: this.#apiFilters } : {}),
      ...(signal ? { signal } : {}),
    });
    // The replay of a reconnect arrives at once; report it when the first live event or a quiet moment comes.
    const quiet = setTimeout(() => this.#report(), 250);
    /** Something came over this connection: it is up, whatever happens to it next. */
    let received = false;
    try {
      for await (const event of events) {
        received = true;
        yield [event];
      }
    } finally {
      clearTimeout(quiet);
      // Also when the consumer stops early or this connection breaks in turn: it was up.
      if (received) this.#report();
    }
    this.#report();
    // A clean end is `until` reached, or the daemon closing the stream (shutdown).
    if (this.#until === undefined)
      throw new DockerError(DockerErrorCode.connect, 'event stream ended (daemon shutting down?)');
  }

  /** A connection failed (the stream waits `delayMs` next): the outage starts, if it had not. */
  failed(retrying: RetryInfo): void {
    this.#downSince ??= Date.now();
    if (isUnreachable(retrying.error)) this.#unreachable = true;
    const error = (retrying.error as Error).message;
    this.#notify({ type: 'disconnected', error, attempt: retrying.attempt, delayMs: retrying.delayMs });
  }

  /** Whether a (deduplicated) event goes to the consumer; keeps the known state and the replay counts. */
  deliver(event: DockerEvent): boolean {
    const gap = this.#gap;
    if (this.#reconciled.has(event)) {
      applyEvent(this.#known, event);
      if (!this.#wanted(event.Action)) return false;
      // The real event may still come in the replay: this one stands in for it.
      gap.standIns.add(`${event.Actor.ID}|${event.Action}`);
      gap.reconciled++;
      return true;
    }
    if (!gap.reported && eventNs(event) >= gap.connectNs) this.#report();
    if (!gap.reported && gap.standIns.delete(`${event.Actor?.ID}|${event.Action}`)) return false;
    if (this.#reconcile && event.Type === 'container') applyEvent(this.#known, event);
    if (this.#reconcile && !this.#wanted(event.Action)) return false;
    if (!gap.reported) gap.replayed++;
    return true;
  }

  #wanted(action: string): boolean {
    return this.#actionsWanted.size === 0 || this.#actionsWanted.has(action.split(':')[0]!);
  }

  /** Report the reconnect once the replay is over: the first live event, a quiet moment, or the end. */
  #report(): void {
    const gap = this.#gap;
    if (gap.reported || this.#downSince === undefined) return;
    gap.reported = true;
    this.#notify({
      type: 'reconnected',
      downMs: Date.now() - this.#downSince,
      replayed: gap.replayed,
      duplicatesDropped: this.dedupe.dropped,
      reconciled: gap.reconciled,
      daemonUnreachable: this.#unreachable,
    });
    this.#downSince = undefined;
    this.#unreachable = false;
  }
}

/** What one connection after an outage has replayed and reconciled so far. */
interface Gap {
  reported: boolean;
  replayed: number;
  reconciled: number;
  /** Real events already stood in for by a reconciled one (`id|action`), dropped during the replay. */
  standIns: Set<string>;
  connectNs: bigint;
}

function newGap(reported: boolean): Gap {
  return { reported, replayed: 0, reconciled: 0, standIns: new Set(), connectNs: 0n };
}

function eventNs(e: DockerEvent): bigint {
  return BigInt(e.timeNano ?? e.time * 1e9);
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
  const controller = linkedController(options.signal);
  const signal = controller.signal;
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
