// Finalizers, kube-rs's way: one helper that adds the finalizer before the first real work, runs cleanup when
// the object is being deleted, and removes the finalizer only once cleanup succeeded, so cleanup runs to
// completion (retried on failure) before the object can go.
import type { Action } from './action.ts';
import { Action as Actions } from './action.ts';
import type { HasMetadata } from './owner.ts';
import type { CallOptions, ResourceClient } from './resource-client.ts';

/** What {@link finalizer} asks the handler to do. */
export type FinalizerEvent<T> =
  /** The object is live, and carries the finalizer: reconcile it. */
  | { type: 'apply'; object: T }
  /** The object is being deleted and still carries the finalizer: clean up. Throw to retry later. */
  | { type: 'cleanup'; object: T };

/** Options of {@link finalizer}. */
export interface FinalizerOptions<T> extends CallOptions {
  /**
   * Read-your-own-writes: called after each finalizer write with a test of the cache's copy, resolving once
   * the cache passes it. Without it, the next reconcile of the key may read the cache from before the write
   * and run cleanup a second time. The controller's `ctx.finalize` passes the primary cache's `waitFor`.
   */
  waitForCache?: (predicate: (cached: T | undefined) => boolean) => Promise<void>;
}

/**
 * Run `handle` under finalizer `name` (a qualified name: `example.com/cleanup`):
 *
 * - live object without the finalizer: add it (a merge patch guarded by `resourceVersion`, so a concurrent
 *   change fails with a conflict and the key is retried), then `apply`;
 * - live object with it: `apply`;
 * - object being deleted, with the finalizer: `cleanup`; when that resolves, remove the finalizer (guarded
 *   the same way) and return its action; when it throws, the finalizer stays and the error propagates;
 * - object being deleted without it (cleanup done, other finalizers pending): nothing to do.
 *
 * `resource` must be able to write the object (a client in its namespace, or without one).
 */
export async function finalizer<T extends HasMetadata>(
  resource: ResourceClient<T>,
  name: string,
  object: T,
  handle: (event: FinalizerEvent<T>) => Promise<Action>,
  options: FinalizerOptions<T> = {},
): Promise<Action> {
  const { waitForCache, ...callOptions } = options;
  const meta = object.metadata ?? {};
  const finalizers = meta.finalizers ?? [];
  const has = finalizers.includes(name);
  const uid = meta.uid;
  const carries = (o: T | undefined) =>
    o !== undefined && o.metadata?.uid === uid && (o.metadata?.finalizers ?? []).includes(name);
  if (meta.deletionTimestamp) {
    if (!has) return Actions.awaitChange();
    const action = await handle({ type: 'cleanup', object });
    await patchFinalizers(
      resource,
      object,
      finalizers.filter((f) => f !== name),
      callOptions,
    );
    // Found twice without this: the object was gone, the cache not yet, and cleanup ran again.
    await waitForCache?.((cached) => !carries(cached));
    return action;
  }
  let current = object;
  if (!has) {
    current = await patchFinalizers(resource, object, [...finalizers, name], callOptions);
    await waitForCache?.((cached) => cached === undefined || carries(cached));
  }
  return handle({ type: 'apply', object: current });
}

function patchFinalizers<T extends HasMetadata>(
  resource: ResourceClient<T>,
  object: T,
  finalizers: string[],
  options: CallOptions,
): Promise<T> {
  const meta = object.metadata ?? {};
  const target = meta.namespace && !resource.namespace ? resource.inNamespace(meta.namespace) : resource;
  // A merge patch replaces the whole list; the resourceVersion makes it fail on a list changed meanwhile.
  return target.patch(
    meta.name ?? '',
    {
      metadata: {
        finalizers: finalizers.length > 0 ? finalizers : null,
        resourceVersion: meta.resourceVersion,
      },
    },
    { ...options, type: 'merge' },
  );
}
