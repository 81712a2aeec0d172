import { abortReason } from '../runtime/index.ts';
import { KubeError, KubeErrorCode } from './errors.ts';
import { objectKey } from './objects.ts';
import type { WatcherEvent } from './watcher.ts';

/** Values an object is filed under in an index (labels, owner uids, a spec field...). */
export type Indexer<T> = (object: T) => readonly string[];

/** Options of {@link Store}. */
export interface StoreOptions<T> {
  /** The key of an object. Default {@link objectKey}: `namespace/name`, or `name` when cluster-scoped. */
  key?: (object: T) => string;
}

interface Waiter<T> {
  key: string;
  predicate: (object: T | undefined) => boolean;
  resolve: () => void;
}

/**
 * A cache of one kind's objects, filled from a watcher's events ({@link reflector}): a `Map` by key, so a
 * read is one lookup however many objects there are. A (re)list is buffered and swapped in at `initDone`:
 * readers never see a half-listed state, and objects deleted while the watch was down disappear then.
 * Secondary indexes by label or any function are kept up to date on each change. Just a cache (kube-rs's
 * words): read it, never write to it, and never modify the objects it returns.
 */
export class Store<T> {
  readonly #key: (object: T) => string;
  #objects = new Map<string, T>();
  /** The list being received (between `init` and `initDone`), not yet visible. */
  #pending: Map<string, T> | undefined;
  readonly #indexers = new Map<string, Indexer<T>>();
  /** index name → value → keys. */
  readonly #indexes = new Map<string, Map<string, Set<string>>>();
  #synced = false;
  #markReady!: () => void;
  readonly #ready: Promise<void>;
  readonly #waiters = new Set<Waiter<T>>();

  constructor(options: StoreOptions<T> = {}) {
    this.#key = options.key ?? (objectKey as (object: T) => string);
    this.#ready = new Promise<void>((resolve) => {
      this.#markReady = resolve;
    });
  }

  /** True once the first full list was applied: from then on the store holds the complete state. */
  get hasSynced(): boolean {
    return this.#synced;
  }

  /**
   * Resolves once the first full list is in (at once if it already is). Rejects with the signal's reason if
   * `signal` aborts first. A controller waits for this before it reconciles, so it never acts on a partial view.
   */
  ready(options: { signal?: AbortSignal } = {}): Promise<void> {
    const { signal } = options;
    if (this.#synced || !signal) return this.#ready;
    if (signal.aborted) return Promise.reject(abortReason(signal));
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => reject(abortReason(signal));
      signal.addEventListener('abort', onAbort, { once: true });
      void this.#ready.then(() => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      });
    });
  }

  /** Number of objects. */
  get size(): number {
    return this.#objects.size;
  }

  /** The object under `key` (`namespace/name`, or `name`), or undefined. */
  get(key: string): T | undefined {
    return this.#objects.get(key);
  }

  /** The object `name` in `namespace` (leave it out for cluster-scoped kinds). */
  getObject(name: string, namespace?: string): T | undefined {
    return this.#objects.get(namespace ? `${namespace}/${name}` : name);
  }

  /** Every object (a new array; the objects are the cache's own, do not modify them). */
  list(): T[] {
    return [...this.#objects.values()];
  }

  /** Every key. */
  keys(): string[] {
    return [...this.#objects.keys()];
  }

  /**
   * Keep an index: `indexer` gives the values an object is filed under, {@link byIndex} finds the objects
   * filed under one. Existing objects are indexed now.
   */
  addIndex(name: string, indexer: Indexer<T>): void {
    if (this.#indexers.has(name)) {
      throw new KubeError(KubeErrorCode.usage, `store: index ${name} exists already`);
    }
    this.#indexers.set(name, indexer);
    const index = new Map<string, Set<string>>();
    this.#indexes.set(name, index);
    for (const [key, object] of this.#objects) this.#file(index, indexer, key, object);
  }

  /** The objects filed under `value` in the index `name` (see {@link addIndex}). */
  byIndex(name: string, value: string): T[] {
    const index = this.#indexes.get(name);
    if (!index) throw new KubeError(KubeErrorCode.usage, `store: no index ${name}`);
    const out: T[] = [];
    for (const key of index.get(value) ?? []) {
      const object = this.#objects.get(key);
      if (object !== undefined) out.push(object);
    }
    return out;
  }

  /**
   * Resolve once the object under `key` satisfies `predicate` (called with undefined while it is absent),
   * at once if it already does: read-your-own-writes. After a create or update, wait until the cache shows
   * it (e.g. `o => o?.metadata?.uid === created.metadata?.uid`) before reconciling again, so a stale cache
   * does not cause a second create. Rejects with `CAP_ERR_KUBE_TIMEOUT` after `timeoutMs`, or with the
   * signal's reason.
   */
  waitFor(
    key: string,
    predicate: (object: T | undefined) => boolean,
    options: { signal?: AbortSignal; timeoutMs?: number } = {},
  ): Promise<void> {
    if (predicate(this.#objects.get(key))) return Promise.resolve();
    const { signal, timeoutMs } = options;
    if (signal?.aborted) return Promise.reject(abortReason(signal));
    return new Promise<void>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const done = () => {
        this.#waiters.delete(waiter);
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      const waiter: Waiter<T> = {
        key,
        predicate,
        resolve: () => {
          done();
          resolve();
        },
      };
      const onAbort = () => {
        done();
        reject(abortReason(signal!));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => {
          done();
          reject(
            new KubeError(
              KubeErrorCode.timeout,
              `store: ${key} did not reach the state waited for in ${timeoutMs} ms`,
            ),
          );
        }, timeoutMs);
      }
      this.#waiters.add(waiter);
    });
  }

  /** Apply one watcher event (what {@link reflector} does for each). */
  apply(event: WatcherEvent<T>): void {
    switch (event.type) {
      case 'init':
        this.#pending = new Map();
        return;
      case 'initApply':
        if (this.#pending) this.#pending.set(this.#key(event.object), event.object);
        else this.#set(this.#key(event.object), event.object);
        return;
      case 'initDone': {
        if (this.#pending) this.#swap(this.#pending);
        this.#pending = undefined;
        if (!this.#synced) {
          this.#synced = true;
          this.#markReady();
        }
        return;
      }
      case 'apply':
        this.#set(this.#key(event.object), event.object);
        return;
      case 'delete':
        this.#delete(this.#key(event.object));
        return;
    }
  }

  #file(index: Map<string, Set<string>>, indexer: Indexer<T>, key: string, object: T): void {
    for (const value of indexer(object)) {
      const keys = index.get(value);
      if (keys) keys.add(key);
      else index.set(value, new Set([key]));
    }
  }

  #unfile(index: Map<string, Set<string>>, indexer: Indexer<T>, key: string, object: T): void {
    for (const value of indexer(object)) {
      const keys = index.get(value);
      if (!keys) continue;
      keys.delete(key);
      if (keys.size === 0) index.delete(value);
    }
  }

  #set(key: string, object: T): void {
    const old = this.#objects.get(key);
    this.#objects.set(key, object);
    for (const [name, indexer] of this.#indexers) {
      const index = this.#indexes.get(name)!;
      if (old !== undefined) this.#unfile(index, indexer, key, old);
      this.#file(index, indexer, key, object);
    }
    this.#notify(key);
  }

  #delete(key: string): void {
    const old = this.#objects.get(key);
    if (old === undefined) return;
    this.#objects.delete(key);
    for (const [name, indexer] of this.#indexers) this.#unfile(this.#indexes.get(name)!, indexer, key, old);
    this.#notify(key);
  }

  #swap(next: Map<string, T>): void {
    const previous = this.#objects;
    this.#objects = next;
    for (const [name, indexer] of this.#indexers) {
      const index = new Map<string, Set<string>>();
      for (const [key, object] of next) this.#file(index, indexer, key, object);
      this.#indexes.set(name, index);
    }
    if (this.#waiters.size === 0) return;
    for (const key of new Set([...previous.keys(), ...next.keys()])) this.#notify(key);
  }

  #notify(key: string): void {
    if (this.#waiters.size === 0) return;
    const object = this.#objects.get(key);
    for (const waiter of [...this.#waiters]) {
      if (waiter.key === key && waiter.predicate(object)) waiter.resolve();
    }
  }
}

/** An index of {@link Store.addIndex} by the value of one label (objects without it are not filed). */
export function labelIndexer<T extends { metadata?: { labels?: Record<string, string> } }>(
  label: string,
): Indexer<T> {
  return (object) => {
    const value = object.metadata?.labels?.[label];
    return value === undefined ? [] : [value];
  };
}

/**
 * Pass a watcher's events through, writing each to `store` first (kube-rs's reflector): the consumer sees
 * an event only once the store reflects it, so a reconcile triggered by it reads at least that state.
 */
export async function* reflector<T>(
  store: Store<T>,
  events: AsyncIterable<WatcherEvent<T>>,
): AsyncGenerator<WatcherEvent<T>> {
  for await (const event of events) {
    store.apply(event);
    yield event;
  }
}
