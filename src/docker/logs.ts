import { setTimeout as sleep } from 'node:timers/promises';
import type { DockerClient, TimeSpec } from './client.ts';
import { Deduper } from './dedupe.ts';
import { DockerError, DockerErrorCode, isPermanentError } from './errors.ts';
import { streamEvents } from './events.ts';
import { MergeSet, mergeAsync } from './merge.ts';
import { formatDockerTime, parseTimestampNs } from './time.ts';
import type { CallOptions, ContainerInspect, Filters } from './types.ts';

/** One log line of one container. */
export interface LogLine {
  /** Full container id. */
  containerId: string;
  /** Container name without the leading slash. */
  container: string;
  stream: 'stdout' | 'stderr';
  /** The daemon's RFC3339Nano timestamp, verbatim. */
  timestamp: string;
  /** The same as nanoseconds since the epoch (exact). */
  timeNs: bigint;
  /** The line without its trailing newline. */
  text: string;
}

/** Something the follower did that a caller may want to report (reconnects, restarts, endings). */
export type LogNotice =
  | { type: 'reconnecting'; container: string; attempt: number; delayMs: number; error: string }
  | { type: 'reconnected'; container: string; downMs: number; duplicatesDropped: number }
  | { type: 'restarted'; container: string; startedAt: string }
  /** A container that started matching a followed label selector and joined the output. */
  | { type: 'joined'; container: string }
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
  /** First and largest delay between reconnect attempts (ms). Default 100 and 2000. */
  retryInitialMs?: number;
  retryMaxMs?: number;
  /** Reconnects, restarts and endings, for logs or a status line. */
  onNotice?: (notice: LogNotice) => void;
  /**
   * {@link tailLogs} with `follow` and a label selector: keep waiting for new matching containers after every
   * followed one has ended, as stern does, and end only when `signal` aborts. Default false (end then).
   */
  keepWatching?: boolean;
}

const NL = 0x0a;

/**
 * Splits demuxed payloads into lines per stream, carrying partial lines over to the next payload.
 *
 * The daemon stores a line longer than 16 KiB as several partial messages and, asked for timestamps, writes
 * each with its own timestamp prefix, one frame per message. With `framed` (multiplexed, one frame = one
 * message) a frame that continues a partial line has its timestamp dropped, so the long line comes out whole
 * with the first piece's timestamp. A TTY stream has no frames; there the pieces are found by their fixed
 * size (see `#decode`).
 */
class LineSplitter {
  readonly #partial: Record<'stdout' | 'stderr', Buffer[]> = { stdout: [], stderr: [] };
  readonly #framed: boolean;

  constructor(framed: boolean) {
    this.#framed = framed;
  }

  push(
    stream: 'stdout' | 'stderr',
    data: Buffer,
    out: Array<[stream: 'stdout' | 'stderr', line: string]>,
  ): void {
    let start = 0;
    if (this.#framed && this.#partial[stream].length > 0) start = timestampPrefixEnd(data);
    let nl = data.indexOf(NL, start);
    while (nl !== -1) {
      const pieces = this.#partial[stream];
      let line: string;
      if (pieces.length) {
        pieces.push(data.subarray(start, nl));
        line = this.#decode(Buffer.concat(pieces));
        this.#partial[stream] = [];
      } else if (!this.#framed && nl - start > PARTIAL_BYTES) {
        line = this.#decode(data.subarray(start, nl));
      } else {
        line = data.toString('utf8', start, nl);
      }
      out.push([stream, line]);
      start = nl + 1;
      nl = data.indexOf(NL, start);
    }
    if (start < data.length) this.#partial[stream].push(Buffer.from(data.subarray(start)));
  }

  /** Lines left without a final newline when the stream ended. */
  flush(out: Array<[stream: 'stdout' | 'stderr', line: string]>): void {
    for (const stream of ['stdout', 'stderr'] as const) {
      const pieces = this.#partial[stream];
      if (pieces.length) out.push([stream, this.#decode(Buffer.concat(pieces))]);
      this.#partial[stream] = [];
    }
  }

  /**
   * A whole line as text. Without frames (TTY), a line longer than one partial message still carries the
   * timestamps of its later pieces: each piece holds exactly {@link PARTIAL_BYTES} bytes after its prefix,
   * so a timestamp found right there is a piece boundary and is cut out.
   */
  #decode(line: Buffer): string {
    if (this.#framed || line.length <= PARTIAL_BYTES) return line.toString('utf8');
    let at = timestampPrefixEnd(line);
    if (at === 0) return line.toString('utf8');
    const kept: Buffer[] = [];
    let from = 0;
    for (;;) {
      const boundary = at + PARTIAL_BYTES;
      if (boundary >= line.length) break;
      const prefix = timestampPrefixEnd(line.subarray(boundary));
      if (prefix === 0) break;
      kept.push(line.subarray(from, boundary));
      from = boundary + prefix;
      at = from;
    }
    if (kept.length === 0) return line.toString('utf8');
    kept.push(line.subarray(from));
    return Buffer.concat(kept).toString('utf8');
  }
}

/** Payload bytes of one log message: dockerd stores a longer line as several partial messages. */
const PARTIAL_BYTES = 16 * 1024;

/** Length of a leading `<RFC3339Nano timestamp> ` (0 when the data does not start with one). */
function timestampPrefixEnd(data: Buffer): number {
  const space = data.indexOf(0x20);
  if (space < 20 || space > 40) return 0;
  return parseTimestampNs(data.toString('latin1', 0, space)) === undefined ? 0 : space + 1;
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
  for await (const batch of followLogBatches(client, container, options)) {
    for (let i = 0; i < batch.length; i++) yield batch[i]!;
  }
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
  const follow = options.follow ?? true;
  const signal = options.signal;
  const graceMs = options.graceMs ?? 5_000;
  const initialDelay = options.retryInitialMs ?? 100;
  const maxDelay = options.retryMaxMs ?? 2_000;
  const dedupe = new Deduper(options.overlapMs ?? 1_000);
  const notify = options.onNotice ?? (() => {});
  let attempt = 0;
  let downSince: number | undefined;
  let first = true;
  let name = container;

  /** Wait before a retry; returns false when aborted. */
  const backoff = async (err: unknown): Promise<boolean> => {
    if (signal?.aborted) return false;
    downSince ??= Date.now();
    const delayMs = Math.min(maxDelay, initialDelay * 2 ** attempt);
    attempt++;
    notify({
      type: 'reconnecting',
      container: name,
      attempt,
      delayMs,
      error: (err as Error)?.message ?? String(err),
    });
    try {
      await sleep(delayMs, undefined, { signal });
      return true;
    } catch {
      return false;
    }
  };

  const reportReconnect = () => {
    if (downSince === undefined) return;
    notify({
      type: 'reconnected',
      container: name,
      downMs: Date.now() - downSince,
      duplicatesDropped: dedupe.dropped,
    });
    downSince = undefined;
  };

  /** Inspect, retrying while the daemon is unreachable. undefined = removed; null = aborted. */
  const inspect = async (): Promise<ContainerInspect | undefined | null> => {
    for (;;) {
      try {
        return await client.inspectContainer(container, { signal });
      } catch (err) {
        if (signal?.aborted) return null;
        if (isNotFound(err)) return undefined;
        if (isPermanentError(err)) throw err;
        if (!(await backoff(err))) return null;
      }
    }
  };

  let info = await inspect();
  if (info === null) return;
  if (info === undefined) {
    throw new DockerError(DockerErrorCode.notFound, `no such container: ${container}`, {
      status: 404,
      daemonMessage: `No such container: ${container}`,
    });
  }
  name = info.Name.replace(/^\//, '');
  const id = info.Id;
  let startedAt = info.State.StartedAt;
  /** The run (StartedAt) whose output was read once more after it stopped. */
  let drainedRun: string | undefined;
  // A tail skips the output that was there at the first connection. Later connections must not bring it
  // back: neither a reconnect before the first line (no timestamp to resume from yet) nor the overlap window
  // of a resume reaching back past this moment. Every line older than it was either in the tail (delivered)
  // or left out by it.
  const tailFromNs =
    options.tail !== undefined && options.tail !== 'all' ? BigInt(Date.now()) * 1_000_000n : undefined;

  for (;;) {
    if (signal?.aborted) return;
    const resume = dedupe.resumeFrom();
    const floorNs = first ? undefined : tailFromNs;
    const from =
      resume !== undefined && floorNs !== undefined && floorNs > resume ? floorNs : (resume ?? floorNs);
    const since = from !== undefined ? formatDockerTime(from) : options.since;
    const admit = (line: LogLine | undefined): line is LogLine =>
      line !== undefined &&
      (floorNs === undefined || line.timeNs >= floorNs) &&
      dedupe.admit(line.timeNs, line.stream, line.text);
    if (!first) dedupe.beginReplay();
    const lines: Array<[stream: 'stdout' | 'stderr', line: string]> = [];
    const splitter = new LineSplitter(!info.Config.Tty);
    let cleanEnd = false;
    try {
      const batches = client.logChunks(id, {
        follow,
        timestamps: true,
        stdout: options.stdout ?? true,
        stderr: options.stderr ?? true,
        ...(since !== undefined ? { since } : {}),
        ...(first && options.tail !== undefined ? { tail: options.tail } : {}),
        tty: info.Config.Tty,
        signal,
      });
      for await (const frames of batches) {
        attempt = 0;
        for (const frame of frames) {
          if (frame.stream !== 'stdin') splitter.push(frame.stream, frame.data, lines);
        }
        const out: LogLine[] = [];
        for (const [stream, raw] of lines) {
          const line = toLine(id, name, stream, raw, info.Config.Tty);
          if (admit(line)) out.push(line);
        }
        lines.length = 0;
        if (out.length > 0) {
          // Reported at the first new line, once the replayed overlap has been dropped.
          if (downSince !== undefined) reportReconnect();
          yield out;
        }
      }
      cleanEnd = true;
    } catch (err) {
      if (signal?.aborted) return;
      if (isPermanentError(err)) throw err;
      if (!isNotFound(err) && !(await backoff(err))) return;
    } finally {
      // What arrived before the end or break still counts; a partial last line is kept.
      splitter.flush(lines);
    }
    const rest: LogLine[] = [];
    for (const [stream, raw] of lines) {
      const line = toLine(id, name, stream, raw, info.Config.Tty);
      if (admit(line)) rest.push(line);
    }
    if (rest.length > 0) yield rest;
    first = false;
    if (cleanEnd) reportReconnect();
    if (!follow) {
      notify({ type: 'ended', container: name, reason: 'not-following' });
      return;
    }
    info = await inspect();
    if (info === null) return;
    if (info === undefined) {
      notify({ type: 'ended', container: name, reason: 'removed' });
      return;
    }
    if (info.State.Running || info.State.Restarting) {
      if (info.State.StartedAt !== startedAt) {
        startedAt = info.State.StartedAt;
        notify({ type: 'restarted', container: name, startedAt });
      }
      continue;
    }
    // Stopped. One more pass (it ends at once on a stopped container) reads what is left before the grace
    // period starts: after a broken connection, and also after a clean end, because dockerd's follow can end
    // at the container's exit before it has sent the last lines (seen with 20.10: a burst just before exit
    // was cut short). What the first pass delivered is dropped as the replay's duplicates.
    if (!cleanEnd || drainedRun !== startedAt) {
      drainedRun = startedAt;
      continue;
    }
    const deadline = Date.now() + graceMs;
    let restarted = false;
    while (Date.now() < deadline) {
      try {
        await sleep(Math.min(200, Math.max(0, deadline - Date.now())), undefined, { signal });
      } catch {
        return;
      }
      const now = await inspect();
      if (now === null) return;
      if (now === undefined) {
        notify({ type: 'ended', container: name, reason: 'removed' });
        return;
      }
      info = now;
      if (now.State.Running || now.State.Restarting || now.State.StartedAt !== startedAt) {
        restarted = true;
        startedAt = now.State.StartedAt;
        notify({ type: 'restarted', container: name, startedAt });
        break;
      }
    }
    if (!restarted) {
      notify({ type: 'ended', container: name, reason: 'exited', exitCode: info.State.ExitCode });
      return;
    }
  }
}

function toLine(
  containerId: string,
  container: string,
  stream: 'stdout' | 'stderr',
  raw: string,
  tty: boolean,
): LogLine | undefined {
  const space = raw.indexOf(' ');
  const timestamp = space === -1 ? raw : raw.slice(0, space);
  const timeNs = parseTimestampNs(timestamp);
  // Every line asked with timestamps=1 starts with one; anything else is not a log line.
  if (timeNs === undefined) return undefined;
  let text = space === -1 ? '' : raw.slice(space + 1);
  if (tty && text.endsWith('\r')) text = text.slice(0, -1);
  return { containerId, container, stream, timestamp, timeNs, text };
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
  const stopDiscovery = new AbortController();
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
    const signal = options.signal
      ? AbortSignal.any([options.signal, stopDiscovery.signal])
      : stopDiscovery.signal;
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
