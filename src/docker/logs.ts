import { createHash } from 'node:crypto';
import {
  Backoff,
  type Connection,
  type ConnectionEnd,
  Counter,
  linkedController,
  MergeSet,
  type MetricsRegistry,
  mergeAsync,
  OverlapDedupe,
  type ResumeTracker,
  type RetryInfo,
  resumable,
  retry,
  sleep,
  unbatch,
} from '../runtime/index.ts';
import type { DockerClient, TimeSpec } from './client.ts';
import { DockerError, DockerErrorCode, isPermanentError } from './errors.ts';
import { streamEvents } from './events.ts';
import { DEFAULT_MAX_LINE_BYTES, LineSplitter, type LogLine, type RawLine, toLine } from './log-lines.ts';
import { formatDockerTime } from './time.ts';
import type { CallOptions, ContainerInspect, Filters } from './types.ts';

export type { LogLine } from './log-lines.ts';

/** Something the follower did that a caller may want to report (reconnects, restarts, endings). */
export type LogNotice =
  | { type: 'reconnecting'; container: string; attempt: number; delayMs: number; error: string }
  | { type: 'reconnected'; container: string; downMs: number; duplicatesDropped: number }
  | { type: 'restarted'; container: string; startedAt: string }
  /** A container that started matching a followed label selector and joined the output. */
  | { type: 'joined'; container: string }
  /**
   * A line longer than `maxLineBytes` began: it is delivered in pieces marked `partial`. `total` counts the
   * lines this follower split so far (with `metrics`, {@link LINES_SPLIT_METRIC} counts them too).
   */
  | {
      type: 'line-split';
      container: string;
      stream: 'stdout' | 'stderr';
      maxLineBytes: number;
      total: number;
    }
  | { type: 'ended'; container: string; reason: 'exited' | 'removed' | 'not-following'; exitCode?: number };

/** Options of {@link followLogs} and {@link tailLogs}. */
export interface FollowLogsOptions extends CallOptions {
  /** Keep following new output (default true). Without it, print what is there and end. */
  follow?: boolean;
  /** Only lines at or after this time (Date, Unix seconds, RFC3339, or a duration ago such as `'10m'`). */
  since?: TimeSpec;
  /** Only the last N lines of the existing output (first connection only). */
  tail?: number | 'all';
  stdout?: boolean;
  stderr?: boolean;
  /**
   * After every followed container stopped, how long to wait for a restart before ending (ms).
   * A restart within the grace continues the same output. Default 5000.
   */
  graceMs?: number;
  /**
   * How far back (ms) a reconnect asks for, to catch lines the daemon stamped slightly out of order across
   * stdout and stderr. Lines already delivered in that window are dropped. Default 1000.
   */
  overlapMs?: number;
  /**
   * First and largest delay between reconnect attempts (ms), doubling in between. Default 100 and 2000. Each
   * wait is jittered to between half and all of it, so followers cut off together do not retry in lockstep.
   */
  retryInitialMs?: number;
  retryMaxMs?: number;
  /**
   * Longest line held whole, in bytes of text (default {@link DEFAULT_MAX_LINE_BYTES}, 1 MiB). A longer line
   * (a container that never prints a newline) is delivered in pieces of this size, all but the last marked
   * `partial`, and reported once with a `line-split` notice: memory stays bounded and no byte is lost.
   */
  maxLineBytes?: number;
  /**
   * A registry (a service's `service.metrics`) to count split lines in: the counter
   * {@link LINES_SPLIT_METRIC}`{container}` is registered on first use and shared by every follower of the
   * registry. A line counts once, when its first piece is delivered (a replay after a reconnect does not count).
   */
  metrics?: MetricsRegistry;
  /** Reconnects, restarts and endings, for logs or a status line. */
  onNotice?: (notice: LogNotice) => void;
  /**
   * {@link tailLogs} with `follow` and a label selector: keep waiting for new matching containers after every
   * followed one has ended, as stern does, and end only when `signal` aborts. Default false (end then).
   */
  keepWatching?: boolean;
}

function isNotFound(err: unknown): boolean {
  return err instanceof DockerError && err.code === DockerErrorCode.notFound;
}

/**
 * Follow one container's logs as lines, surviving what ends `docker logs -f`: a container restart, a broken
 * connection, a daemon restart (with or without `--live-restore`). It always asks for timestamps, remembers the
 * last one, reconnects with `since` and drops the lines it already delivered, so no line is lost or repeated.
 * With `follow` it ends when the container is removed, or stopped and not restarted within `graceMs`.
 */
export async function* followLogs(
  client: DockerClient,
  container: string,
  options: FollowLogsOptions = {},
): AsyncGenerator<LogLine> {
  yield* unbatch(followLogBatches(client, container, options));
}

/**
 * {@link followLogs} yielding the lines of each received chunk together: one await per chunk instead of per
 * line, for high-volume tailing (the CLI uses it).
 */
export async function* followLogBatches(
  client: DockerClient,
  container: string,
  options: FollowLogsOptions = {},
): AsyncGenerator<LogLine[]> {
  const { signal } = options;
  const backoff = new Backoff({
    initialMs: options.retryInitialMs ?? 100,
    maxMs: options.retryMaxMs ?? 2_000,
    jitter: 'equal',
  });
  const notify = options.onNotice ?? (() => {});
  let info: ContainerInspect | undefined;
  try {
    info = await retry((s) => inspectIfPresent(client, container, s), {
      backoff,
      isPermanent: isPermanentError,
      onRetry: (r) => notify(reconnectingNotice(container, r)),
      ...(signal ? { signal } : {}),
    });
  } catch (err) {
    if (signal?.aborted) return;
    throw err;
  }
  if (info === undefined) {
    throw new DockerError(DockerErrorCode.notFound, `no such container: ${container}`, {
      status: 404,
      daemonMessage: `No such container: ${container}`,
    });
  }
  const maxLineBytes = options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
  if (!Number.isSafeInteger(maxLineBytes) || maxLineBytes < 1) {
    throw new DockerError(
      DockerErrorCode.badRequest,
      `maxLineBytes must be a positive integer, got ${options.maxLineBytes}`,
    );
  }
  const splits = options.metrics ? linesSplitCounter(options.metrics) : undefined;
  const follow = new ContainerFollow(client, container, info, options, maxLineBytes, splits);
  yield* resumable<LogLine, bigint>({
    connect: (from, connection) => follow.connect(from, connection),
    tracker: new LineDedupe(BigInt(Math.round((options.overlapMs ?? 1_000) * 1e6)), (line) =>
      follow.split(line),
    ),
    afterEnd: (end) => follow.afterEnd(end),
    backoff,
    isPermanent: isPermanentError,
    // A container removed mid-stream: find out at once rather than wait.
    skipBackoff: isNotFound,
    onNotice: (n) =>
      notify(
        n.type === 'retrying'
          ? reconnectingNotice(follow.name, n)
          : {
              type: 'reconnected',
              container: follow.name,
              downMs: n.downMs,
              duplicatesDropped: n.duplicatesDropped,
            },
      ),
    ...(signal ? { signal } : {}),
  });
  // A last line without a newline (the container exited mid-line): now that no connection follows, it is whole.
  const rest = follow.takeUnterminated();
  if (rest.length > 0 && !signal?.aborted) yield rest;
}

/** Name of the counter of lines longer than `maxLineBytes`, split into pieces, by container name. */
export const LINES_SPLIT_METRIC = 'capstan_docker_log_lines_split_total';

/**
 * The registry's split-lines counter, registered by the first follower that uses the registry. Another metric
 * of that name raises the registry's `CAP_ERR_RUNTIME_METRICS_DUPLICATE`.
 */
function linesSplitCounter(registry: MetricsRegistry): Counter<'container'> {
  const existing = registry.getSingleMetric(LINES_SPLIT_METRIC);
  if (existing instanceof Counter) return existing as Counter<'container'>;
  return new Counter({
    name: LINES_SPLIT_METRIC,
    help: 'Log lines longer than maxLineBytes, delivered in pieces marked partial.',
    labelNames: ['container'],
    registers: [registry],
  });
}

/** Lines longer than this are remembered for dedupe by a digest of their text, not the text itself. */
const DIGEST_ABOVE = 256;

/** What the dedupe window remembers of a delivered line. */
type Seen = LogLine | { timeNs: bigint | undefined; key: string };

/**
 * The follower's {@link OverlapDedupe}: it remembers every line of the last `overlap`, and all the pieces of a
 * split line share one timestamp, so a long line written within a second would be held whole again. Long
 * texts are remembered by their SHA-256 instead: the window costs a few dozen bytes per line.
 */
class LineDedupe implements ResumeTracker<LogLine, bigint> {
  readonly #inner: OverlapDedupe<Seen>;
  readonly #onDelivered: (line: LogLine) => void;

  /** `onDelivered` sees each line that is delivered (not a replayed duplicate). */
  constructor(overlap: bigint, onDelivered: (line: LogLine) => void) {
    this.#onDelivered = onDelivered;
    this.#inner = new OverlapDedupe<Seen>({
      overlap,
      position: (seen) => seen.timeNs,
      key: (seen) => ('key' in seen ? seen.key : `t|${seen.stream}|${seen.text}`),
    });
  }

  get dropped(): number {
    return this.#inner.dropped;
  }

  resumePoint(): bigint | undefined {
    return this.#inner.resumePoint();
  }

  beginReplay(): void {
    this.#inner.beginReplay();
  }

  admit(line: LogLine): boolean {
    let admitted: boolean;
    if (line.timeNs === undefined || line.text.length <= DIGEST_ABOVE) admitted = this.#inner.admit(line);
    else {
      const digest = createHash('sha256').update(line.text).digest('base64');
      const key = `d|${line.stream}|${line.partial ?? false}|${digest}`;
      admitted = this.#inner.admit({ timeNs: line.timeNs, key });
    }
    if (admitted) this.#onDelivered(line);
    return admitted;
  }
}

function reconnectingNotice(container: string, r: RetryInfo): LogNotice {
  const error = (r.error as Error)?.message ?? String(r.error);
  return { type: 'reconnecting', container, attempt: r.attempt, delayMs: r.delayMs, error };
}

/** The container as the daemon sees it, or undefined once it is removed. */
async function inspectIfPresent(
  client: DockerClient,
  container: string,
  signal: AbortSignal | undefined,
): Promise<ContainerInspect | undefined> {
  try {
    return await client.inspectContainer(container, signal ? { signal } : {});
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

/**
 * One container's follow across connections: what each connection asks for (`connect`) and, when one ends,
 * whether the container's output goes on (`afterEnd`): a restart continues it, a removal or a stop without a
 * restart within the grace period ends it.
 */
class ContainerFollow {
  readonly #client: DockerClient;
  /** The name or id the caller gave (inspected again by it). */
  readonly #target: string;
  readonly #options: FollowLogsOptions;
  readonly #follow: boolean;
  readonly #notify: (notice: LogNotice) => void;
  readonly id: string;
  /** Container name without the leading slash, for lines and notices. */
  readonly name: string;
  #info: ContainerInspect;
  /** The current run's StartedAt: a new value is a restart. */
  #startedAt: string;
  /** The run whose output was read once more after it stopped. */
  #drainedRun: string | undefined;
  /**
   * A tail skips the output that was there at the first connection. Later connections must not bring it
   * back: neither a reconnect before the first line (no timestamp to resume from yet) nor the overlap window
   * of a resume reaching back past this moment. Every line older than it was in the tail or left out by it.
   */
  readonly #tailFromNs: bigint | undefined;
  readonly #maxLineBytes: number;
  /** Per stream, the timestamp of the line being split (its pieces share it): one notice per long line. */
  readonly #splitting: Record<'stdout' | 'stderr', bigint | undefined> = {
    stdout: undefined,
    stderr: undefined,
  };
  #splits = 0;
  /** The registry's split-lines counter, when the caller passed `metrics`. */
  readonly #splitCounter: Counter<'container'> | undefined;
  /** The last connection's unterminated last lines, held back (see the end of `connect`). */
  #unterminated: LogLine[] = [];

  constructor(
    client: DockerClient,
    target: string,
    info: ContainerInspect,
    options: FollowLogsOptions,
    maxLineBytes: number,
    splitCounter: Counter<'container'> | undefined,
  ) {
    this.#client = client;
    this.#splitCounter = splitCounter;
    this.#maxLineBytes = maxLineBytes;
    this.#target = target;
    this.#options = options;
    this.#follow = options.follow ?? true;
    this.#notify = options.onNotice ?? (() => {});
    this.#info = info;
    this.id = info.Id;
    this.name = info.Name.replace(/^\//, '');
    this.#startedAt = info.State.StartedAt;
    this.#tailFromNs =
      options.tail !== undefined && options.tail !== 'all' ? BigInt(Date.now()) * 1_000_000n : undefined;
  }

  /** One `/logs` connection from `from` (the last delivered timestamp minus the overlap), as line batches. */
  async *connect(from: bigint | undefined, { index, signal }: Connection): AsyncGenerator<LogLine[]> {
    // This connection replays what the last one held back.
    this.#unterminated = [];
    const first = index === 0;
    const floorNs = first ? undefined : this.#tailFromNs;
    const start = from !== undefined && floorNs !== undefined && floorNs > from ? floorNs : (from ?? floorNs);
    const since = start !== undefined ? formatDockerTime(start) : this.#options.since;
    const tty = this.#info.Config.Tty;
    const splitter = new LineSplitter(!tty, this.#maxLineBytes);
    const raw: RawLine[] = [];
    const take = (): LogLine[] => {
      const out: LogLine[] = [];
      for (const [stream, text, partial] of raw) {
        const line = toLine(this.id, this.name, stream, text, tty, partial);
        // A line without a timestamp has no place to compare with the floor: passed through, never dropped.
        if (floorNs === undefined || line.timeNs === undefined || line.timeNs >= floorNs) out.push(line);
      }
      raw.length = 0;
      return out;
    };
    let failure: { error: unknown } | undefined;
    try {
      const chunks = this.#client.logChunks(this.id, {
        follow: this.#follow,
        timestamps: true,
        stdout: this.#options.stdout ?? true,
        stderr: this.#options.stderr ?? true,
        ...(since !== undefined ? { since } : {}),
        ...(first && this.#options.tail !== undefined ? { tail: this.#options.tail } : {}),
        tty,
        signal,
      });
      for await (const frames of chunks) {
        for (const frame of frames) {
          if (frame.stream !== 'stdin') splitter.push(frame.stream, frame.data, raw, frame.continued);
        }
        // Also when empty: the connection is alive (the stream resets its backoff).
        yield take();
      }
    } catch (error) {
      if (signal?.aborted) return;
      failure = { error };
    }
    // What arrived before the end or the failure still counts. The last line of a stream without its newline
    // is held back: the next connection replays it from its start (it may have gone on meanwhile: dockerd's
    // follow can end before the last messages), and cut at the same offsets, its pieces dedupe. Delivered
    // here it would come twice, once cut short. It goes out when the follow ends (`takeUnterminated`).
    const flushed: RawLine[] = [];
    splitter.flush(flushed);
    const held: RawLine[] = [];
    for (const stream of ['stdout', 'stderr'] as const) {
      const at = flushed.findLastIndex((r) => r[0] === stream);
      if (at !== -1) held.push(...flushed.splice(at, 1));
    }
    raw.push(...flushed);
    const rest = take();
    if (rest.length > 0) yield rest;
    raw.push(...held);
    this.#unterminated = take();
    if (failure) throw failure.error;
  }

  /** The unterminated last lines of the output, once the follow has ended: no connection will replay them. */
  takeUnterminated(): LogLine[] {
    const lines = this.#unterminated;
    this.#unterminated = [];
    return lines;
  }

  /** After a connection ended: true to connect again (same run, or the next one), false when the output ended. */
  async afterEnd(end: ConnectionEnd): Promise<boolean> {
    if (!this.#follow) {
      this.#notify({ type: 'ended', container: this.name, reason: 'not-following' });
      return false;
    }
    const info = await this.#inspect(end);
    if (info === undefined) return false;
    if (info.State.Running || info.State.Restarting) {
      if (info.State.StartedAt !== this.#startedAt) this.#restarted(info.State.StartedAt);
      return true;
    }
    // Stopped. One more pass (it ends at once on a stopped container) reads what is left before the grace
    // period starts: after a broken connection, and also after a clean end, because dockerd's follow can end
    // at the container's exit before it has sent the last lines (seen with 20.10: a burst just before exit
    // was cut short). What the first pass delivered is dropped as the replay's duplicates.
    if (end.failed || this.#drainedRun !== this.#startedAt) {
      this.#drainedRun = this.#startedAt;
      return true;
    }
    return this.#awaitRestart(end);
  }

  /** The container stopped: wait up to `graceMs` for it to run again (true) or end the follow (false). */
  async #awaitRestart(end: ConnectionEnd): Promise<boolean> {
    const deadline = Date.now() + (this.#options.graceMs ?? 5_000);
    while (Date.now() < deadline) {
      if (!(await sleep(Math.min(200, Math.max(0, deadline - Date.now())), end.signal))) return false;
      const info = await this.#inspect(end);
      if (info === undefined) return false;
      if (info.State.Running || info.State.Restarting || info.State.StartedAt !== this.#startedAt) {
        this.#restarted(info.State.StartedAt);
        return true;
      }
    }
    this.#notify({
      type: 'ended',
      container: this.name,
      reason: 'exited',
      exitCode: this.#info.State.ExitCode,
    });
    return false;
  }

  /** Inspect (retrying while the daemon is unreachable) and remember; undefined (reported) once removed. */
  async #inspect(end: ConnectionEnd): Promise<ContainerInspect | undefined> {
    const info = await end.retry((signal) => inspectIfPresent(this.#client, this.#target, signal));
    if (info === undefined) {
      this.#notify({ type: 'ended', container: this.name, reason: 'removed' });
      return undefined;
    }
    this.#info = info;
    return info;
  }

  /**
   * A line delivered (replayed duplicates are not): the first piece of a split line is reported and counted.
   * Pieces of one line share its timestamp and follow each other on their stream.
   */
  split(line: LogLine): void {
    if (!line.partial) {
      this.#splitting[line.stream] = undefined;
      return;
    }
    const at = line.timeNs ?? -1n;
    if (this.#splitting[line.stream] === at) return;
    this.#splitting[line.stream] = at;
    this.#splits++;
    this.#splitCounter?.inc({ container: this.name });
    this.#notify({
      type: 'line-split',
      container: this.name,
      stream: line.stream,
      maxLineBytes: this.#maxLineBytes,
      total: this.#splits,
    });
  }

  #restarted(startedAt: string): void {
    this.#startedAt = startedAt;
    this.#notify({ type: 'restarted', container: this.name, startedAt });
  }
}

/**
 * Resolve targets to container ids: a name or id as is, a label selector (`app=web`, `app`) to every
 * container carrying it (stopped ones included).
 */
export async function resolveTargets(
  client: DockerClient,
  targets: string[],
  options: CallOptions = {},
): Promise<string[]> {
  const ids: string[] = [];
  for (const target of targets) {
    const selector = labelSelector(target);
    if (selector !== undefined) {
      const filters: Filters = { label: [selector] };
      const found = await client.listContainers({ all: true, filters, signal: options.signal });
      ids.push(...found.sort((a, b) => a.Created - b.Created).map((c) => c.Id));
    } else {
      ids.push((await client.inspectContainer(target, options)).Id);
    }
  }
  return [...new Set(ids)];
}

/** A target that selects containers by label rather than naming one. */
function labelSelector(target: string): string | undefined {
  return target.includes('=') || target.startsWith('label:') ? target.replace(/^label:/, '') : undefined;
}

/**
 * The followers of every target, merged. With `follow` and a label selector, containers that start matching
 * later join (like stern); it then ends once every follower has ended, and waits for a first match if none
 * matched at the start.
 */
async function* tailMerged<T>(
  client: DockerClient,
  targets: string[],
  options: FollowLogsOptions,
  follower: (id: string, options: FollowLogsOptions) => AsyncIterable<T>,
): AsyncGenerator<T> {
  const selectors = targets.map(labelSelector).filter((s): s is string => s !== undefined);
  const discover = (options.follow ?? true) && selectors.length > 0;
  // Pinned before listing: a container that starts between the list and the watch is replayed by `since`.
  const listedAt = new Date();
  const ids = await resolveTargets(client, targets, options);
  if (ids.length === 0 && !discover) {
    throw new DockerError(DockerErrorCode.notFound, `no container matches ${targets.join(' ')}`, {
      status: 404,
    });
  }
  const merge = new MergeSet<T>();
  const followed = new Set(ids);
  // Discovery stops with the caller's signal, or once every follower has ended (unless keepWatching).
  const stopDiscovery = linkedController(options.signal);
  let active = 0;
  const track = (id: string, opts: FollowLogsOptions) => {
    active++;
    merge.add(
      (async function* () {
        try {
          yield* untilRemoved(follower(id, opts));
        } finally {
          if (--active === 0 && !options.keepWatching) stopDiscovery.abort();
        }
      })(),
    );
  };
  for (const id of ids) track(id, options);
  if (discover) {
    const notify = options.onNotice ?? (() => {});
    const { tail: _firstConnectionOnly, ...joinOptions } = options;
    const signal = stopDiscovery.signal;
    merge.add(
      (async function* (): AsyncGenerator<never> {
        if (signal.aborted) return;
        const starts = selectors.map((selector) =>
          streamEvents(client, {
            since: listedAt,
            filters: { type: ['container'], event: ['start'], label: [selector] },
            signal,
          }),
        );
        for await (const event of mergeAsync(starts)) {
          const id = event.Actor?.ID ?? event.id;
          if (!id || followed.has(id)) continue;
          followed.add(id);
          notify({ type: 'joined', container: event.Actor?.Attributes?.name ?? id.slice(0, 12) });
          // A container that appeared after we started: all of its output (within `since`), not a tail.
          track(id, joinOptions);
        }
      })(),
    );
  }
  yield* merge;
}

/**
 * Follow several containers (names, ids or label selectors) merged into one stream, in arrival order.
 * Ends when every follower ended (see {@link followLogs}); with `follow`, containers that start matching a
 * label selector later join.
 */
export function tailLogs(
  client: DockerClient,
  targets: string[],
  options: FollowLogsOptions = {},
): AsyncGenerator<LogLine> {
  return tailMerged(client, targets, options, (id, opts) => followLogs(client, id, opts));
}

/** A container removed between resolving the targets and following it simply has no more lines. */
async function* untilRemoved<T>(source: AsyncIterable<T>): AsyncGenerator<T> {
  try {
    yield* source;
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
}

/** {@link tailLogs} yielding each follower's batches (see {@link followLogBatches}). */
export function tailLogBatches(
  client: DockerClient,
  targets: string[],
  options: FollowLogsOptions = {},
): AsyncGenerator<LogLine[]> {
  return tailMerged(client, targets, options, (id, opts) => followLogBatches(client, id, opts));
}
