import {
  type BackoffOptions,
  linkedController,
  type ResumeTracker,
  resumable,
  type StreamNotice,
} from '../runtime/index.ts';
import { KubeError, KubeErrorCode } from './errors.ts';
import type { ObjectMeta } from './objects.ts';
import type { ResourceClient, SelectorOptions } from './resource-client.ts';
import { apiVersionOf } from './resource-type.ts';

/**
 * What a {@link watcher} yields (kube-rs's watcher events). A (re)list comes as `init`, one `initApply` per
 * object, then `initDone`: the objects between `init` and `initDone` are the complete state, so a cache
 * swaps its contents at `initDone` and drops objects deleted while it was not watching. After that, each
 * change is an `apply` (created or modified) or a `delete`.
 */
export type WatcherEvent<T> =
  /** A full list begins (the first one, or a relist after 410 Gone). */
  | { type: 'init' }
  /** One object of the list. */
  | { type: 'initApply'; object: T }
  /** The list is complete; watching from `resourceVersion` on. */
  | { type: 'initDone'; resourceVersion: string }
  /** The object was created or changed: this is its new state. */
  | { type: 'apply'; object: T }
  /** The object was deleted: its last state. */
  | { type: 'delete'; object: T };

/** What a {@link watcher} reports besides its events: nothing happens to a watch silently. */
export type WatcherNotice =
  /** A connection (list or watch) failed; the watcher reconnects after `delayMs`. */
  | { type: 'reconnecting'; attempt: number; delayMs: number; error: unknown }
  /** Events flow again after failures, `downMs` after the first one. */
  | { type: 'resumed'; downMs: number }
  /**
   * A full list starts: `initial` at start, `gone` after 410 (resourceVersion too old), `retry` after a failed
   * list; `via` says whether by paged list or streamed by the watch (`initialList: 'stream'`).
   */
  | { type: 'relist'; reason: 'initial' | 'gone' | 'retry'; via: 'list' | 'stream' }
  /** The watchdog cut a watch that sent nothing (no event, no bookmark) for `silentMs`. */
  | { type: 'stalled'; silentMs: number }
  /** The apiserver ended a watch cleanly (its timeout); the watcher goes on from the last resourceVersion. */
  | { type: 'watchEnded'; resourceVersion: string | undefined };

/** Options of {@link watcher}. */
export interface WatcherOptions<T = unknown> extends SelectorOptions {
  /** Objects per page of the (re)list. Default 500; smaller pages keep memory flat on big lists. */
  pageSize?: number;
  /**
   * Longest silence (no event, no bookmark, no end) before the watch is taken as stalled and reconnected,
   * ms. Default 180 000: the apiserver sends a bookmark about every minute, then stays quiet for up to two
   * minutes before it ends a watch at its timeout. 0 turns the watchdog off.
   */
  stallTimeoutMs?: number;
  /**
   * How long the apiserver keeps one watch open before ending it cleanly, s. Default: random in [300, 600),
   * like client-go, so many watchers do not reconnect in step.
   */
  watchTimeoutSeconds?: number;
  /** Ask for bookmarks (progress with no change: a resume from close to now). Default true. */
  bookmarks?: boolean;
  /**
   * How the full state is fetched: `list` (paged GETs, then a watch) or `stream` (one watch with
   * `sendInitialEvents`, the WatchList feature: the apiserver streams the state from its cache, then a
   * bookmark, with no large list answer to hold in memory). `stream` falls back to `list` when the
   * apiserver refuses it. Default `list`.
   */
  initialList?: 'list' | 'stream';
  /** Reconnect backoff. Default 800 ms doubling to 30 s, full jitter (client-go's and kube-rs's). */
  backoff?: BackoffOptions;
  /**
   * Errors that end the watcher (thrown from the iteration) instead of a reconnect. Default: 401/403
   * (`FORBIDDEN`: RBAC does not allow the watch), 404 (`NOT_FOUND`: the kind is not served), 400/422
   * (`INVALID`: a bad selector), a certificate that does not verify (`CONFIG`) and `USAGE`.
   */
  isPermanent?: (error: unknown) => boolean;
  /**
   * Applied to every object before it is delivered (and cached): drop what the consumer never reads. A
   * cache of many objects keeps far less memory without `metadata.managedFields` ({@link stripManagedFields},
   * what controller-runtime's cache does by default). Mutating the object in place is fine: it is fresh
   * from the wire.
   */
  transform?: (object: T) => T;
  /** Reconnects, relists, stalls: log them or count them. */
  onNotice?: (notice: WatcherNotice) => void;
  /** Ends the watcher cleanly (the iteration ends), from any state. */
  signal?: AbortSignal;
}

/** Codes no reconnect fixes. */
const PERMANENT: ReadonlySet<string> = new Set([
  KubeErrorCode.forbidden,
  KubeErrorCode.notFound,
  KubeErrorCode.invalid,
  KubeErrorCode.config,
  KubeErrorCode.usage,
]);

/** The default test of {@link WatcherOptions.isPermanent}. */
export function isPermanentWatchError(error: unknown): boolean {
  return error instanceof KubeError && PERMANENT.has(error.code);
}

const isGone = (err: unknown) => err instanceof KubeError && err.code === KubeErrorCode.gone;

/** A bookmark travels through the stream to move the resume point, and is dropped before the consumer. */
type Item<T> = WatcherEvent<T> | { type: 'bookmark'; resourceVersion: string };

function resourceVersionOf(object: unknown): string | undefined {
  return (object as { metadata?: ObjectMeta } | undefined)?.metadata?.resourceVersion;
}

/**
 * A watch that survives: list (paged), then watch from the list's resourceVersion with bookmarks; on a
 * broken connection resume from the last resourceVersion seen (no gap, no duplicate) after a backoff with
 * jitter; on 410 Gone relist at once and report the full state again (`init` ... `initDone`), so caches drop
 * what was deleted meanwhile; a watchdog reconnects a stream that went silent. It ends only when `signal`
 * aborts or the client closes (cleanly) or on a permanent error (thrown). Built on the runtime's resumable
 * stream; every reconnect, relist and stall is reported through `onNotice`.
 *
 * ```ts
 * for await (const event of watcher(kube.resource(ConfigMap, 'default'), { signal })) {
 *   if (event.type === 'apply') console.log('changed', event.object.metadata?.name);
 * }
 * ```
 */
export async function* watcher<T>(
  resource: ResourceClient<T>,
  options: WatcherOptions<T> = {},
): AsyncGenerator<WatcherEvent<T>> {
  const stop = linkedController(options.signal, resource.client.closedSignal);
  const notify = options.onNotice ?? (() => {});
  const pageSize = options.pageSize ?? 500;
  const stallMs = options.stallTimeoutMs ?? 180_000;
  const selectors = {
    ...(options.labelSelector !== undefined ? { labelSelector: options.labelSelector } : {}),
    ...(options.fieldSelector !== undefined ? { fieldSelector: options.fieldSelector } : {}),
  };
  const apiVersion = apiVersionOf(resource.type);
  const kind = resource.type.kind;

  // The resume point: the last resourceVersion delivered, or none while a (re)list is due.
  let resourceVersion: string | undefined;
  let relistReason: 'initial' | 'gone' | 'retry' = 'initial';
  const tracker: ResumeTracker<Item<T>, string> = {
    resumePoint: () => resourceVersion,
    beginReplay: () => {},
    admit(item) {
      switch (item.type) {
        case 'initDone':
        case 'bookmark':
          resourceVersion = item.resourceVersion;
          break;
        case 'apply':
        case 'delete':
          resourceVersion = resourceVersionOf(item.object) ?? resourceVersion;
          break;
      }
      return item.type !== 'bookmark';
    },
    dropped: 0,
  };

  let streamInitial = options.initialList === 'stream';
  const transform = options.transform ?? ((object: T) => object);
  /** Items of a list carry no apiVersion/kind; events do: make cached objects look alike. */
  const typed = (item: unknown): T => {
    const object = item as { apiVersion?: string; kind?: string };
    object.apiVersion ??= apiVersion;
    object.kind ??= kind;
    return transform(object as T);
  };

  async function* connect(from: string | undefined, signal: AbortSignal): AsyncGenerator<Item<T>[]> {
    let rv = from;
    // This connection streams the full state before the changes (until the initial-events-end bookmark).
    let streaming = false;
    const reason = relistReason;
    if (rv === undefined) {
      notify({ type: 'relist', reason, via: streamInitial ? 'stream' : 'list' });
      relistReason = 'retry';
    }
    if (rv === undefined && streamInitial) {
      streaming = true;
    } else if (rv === undefined) {
      let listed = '';
      let first = true;
      try {
        for await (const page of resource.listPages({ ...selectors, limit: pageSize, signal })) {
          // `init` rides with the first page: a batch resets the backoff, and a list that fails before its
          // first page must let the backoff grow.
          const batch: Item<T>[] = first ? [{ type: 'init' }] : [];
          first = false;
          for (const item of page.items) batch.push({ type: 'initApply', object: typed(item) });
          listed = page.metadata?.resourceVersion ?? listed;
          yield batch;
        }
      } catch (err) {
        // The continue token outlived etcd's history (compacted between pages): the list starts over.
        if (isGone(err)) relistReason = 'gone';
        throw err;
      }
      yield [{ type: 'initDone', resourceVersion: listed }];
      rv = listed;
    }

    const connection = linkedController(signal);
    let stalled: KubeError | undefined;
    let timer: NodeJS.Timeout | undefined;
    const arm = () => {
      if (stallMs <= 0) return;
      clearTimeout(timer);
      timer = setTimeout(() => {
        stalled = new KubeError(
          KubeErrorCode.timeout,
          `watch ${resource.collectionPath()}: nothing for ${stallMs} ms (stalled)`,
        );
        notify({ type: 'stalled', silentMs: stallMs });
        connection.abort(stalled);
      }, stallMs);
    };
    const opened = Date.now();
    let events = 0;
    try {
      arm();
      let initial = streaming;
      let sentInit = false;
      for await (const event of resource.watch({
        ...selectors,
        ...(streaming
          ? { sendInitialEvents: true, resourceVersionMatch: 'NotOlderThan' as const }
          : { resourceVersion: rv }),
        // The end of a streamed state is a bookmark: asked for whatever `bookmarks` says.
        allowWatchBookmarks: streaming || (options.bookmarks ?? true),
        timeoutSeconds: options.watchTimeoutSeconds ?? Math.floor(300 + Math.random() * 300),
        signal: connection.signal,
      })) {
        // The watchdog measures the apiserver's silence, not the consumer's: paused while an event is
        // handed over (a slow reconcile must not look like a stalled stream), armed again for the next one.
        clearTimeout(timer);
        try {
          events++;
          if (initial) {
            const batch: Item<T>[] = [];
            if (event.type === 'BOOKMARK') {
              if (event.object.metadata?.annotations?.['k8s.io/initial-events-end'] !== 'true') continue;
              initial = false;
              batch.push({ type: 'initDone', resourceVersion: resourceVersionOf(event.object) ?? '' });
            } else if (event.type === 'ADDED' || event.type === 'MODIFIED') {
              batch.push({ type: 'initApply', object: typed(event.object) });
            }
            if (batch.length === 0) continue;
            if (!sentInit) batch.unshift({ type: 'init' });
            sentInit = true;
            yield batch;
            continue;
          }
          switch (event.type) {
            case 'ADDED':
            case 'MODIFIED':
              yield [{ type: 'apply', object: transform(event.object) }];
              break;
            case 'DELETED':
              yield [{ type: 'delete', object: transform(event.object) }];
              break;
            case 'BOOKMARK': {
              const bookmarkRv = resourceVersionOf(event.object);
              if (bookmarkRv) yield [{ type: 'bookmark', resourceVersion: bookmarkRv }];
              break;
            }
          }
        } finally {
          arm();
        }
      }
    } catch (err) {
      if (stalled && !signal.aborted) throw stalled;
      if (streaming && events === 0 && err instanceof KubeError && err.code === KubeErrorCode.invalid) {
        // The apiserver does not do WatchList (feature gate off, or too old): list from now on.
        streamInitial = false;
        relistReason = reason;
        clearTimeout(timer);
        yield* connect(undefined, signal);
        return;
      }
      if (isGone(err)) {
        // The resume point is older than the apiserver keeps: only a full list can restore the state.
        resourceVersion = undefined;
        relistReason = 'gone';
      }
      throw err;
    } finally {
      clearTimeout(timer);
    }
    notify({ type: 'watchEnded', resourceVersion });
    if (events === 0 && Date.now() - opened < 1000) {
      // An apiserver (or proxy) that ends every watch at once would make this a busy loop: back off.
      throw new KubeError(KubeErrorCode.connect, `watch ${resource.collectionPath()}: ended at once`);
    }
  }

  const isPermanent = options.isPermanent ?? isPermanentWatchError;
  const onNotice = (n: StreamNotice) => {
    if (n.type === 'retrying') {
      notify({ type: 'reconnecting', attempt: n.attempt, delayMs: n.delayMs, error: n.error });
    } else {
      notify({ type: 'resumed', downMs: n.downMs });
    }
  };
  const stream = resumable<Item<T>, string>({
    connect: (from, c) => connect(from, c.signal ?? stop.signal),
    tracker,
    backoff: options.backoff ?? { initialMs: 800, maxMs: 30_000, jitter: 'full' },
    isPermanent,
    // After 410 the next step is a relist, not a wait.
    skipBackoff: isGone,
    afterEnd: () => !stop.signal.aborted,
    onNotice,
    signal: stop.signal,
  });
  for await (const batch of stream) {
    for (const item of batch) {
      if (item.type !== 'bookmark') yield item;
    }
  }
}

/**
 * A {@link WatcherOptions.transform} that drops `metadata.managedFields` (server-side apply's bookkeeping,
 * often the largest part of an object and never read by a controller). Objects cached without it cannot be
 * sent back as an update that keeps field ownership; apply and patch do not need it.
 */
export function stripManagedFields<T>(object: T): T {
  const meta = (object as { metadata?: { managedFields?: unknown } }).metadata;
  if (meta && 'managedFields' in meta) delete meta.managedFields;
  return object;
}
