// The reconcile contract (controller-runtime's pkg/reconcile, kube-rs's reconcile/error_policy): a key in, an
// Action out. The reconciler reads the current state from the cache, never from the event that woke it: events
// are only hints that something changed, and several of them collapse into one key.
import { Action } from './action.ts';
import type { KubeClient } from './client.ts';
import type { Condition } from './conditions.ts';
import { isTerminalError } from './errors.ts';
import type { EventInput } from './events.ts';
import type { FinalizerEvent } from './finalizer.ts';
import type { PartialObjectMetadata } from './objects.ts';
import type { ApplyOptions, ResourceClient } from './resource-client.ts';
import type { ResourceType } from './resource-type.ts';
import type { Store } from './store.ts';

/** Which object to reconcile: its name, and its namespace unless the kind is cluster-scoped. */
export interface ReconcileRequest {
  readonly namespace?: string;
  readonly name: string;
}

/** The queue key of a request: `namespace/name`, or `name` (client-go's key format). */
export function requestKey(request: ReconcileRequest): string {
  return request.namespace ? `${request.namespace}/${request.name}` : request.name;
}

/** The request of a queue key (the inverse of {@link requestKey}). */
export function requestOf(key: string): ReconcileRequest {
  const slash = key.indexOf('/');
  return slash < 0 ? { name: key } : { namespace: key.slice(0, slash), name: key.slice(slash + 1) };
}

/** What a reconciler gets besides its request. */
export interface ReconcileContext<T> {
  /** Aborted when the controller shuts down past its drain deadline, or loses the leader lease. */
  readonly signal: AbortSignal;
  /** The controller's name. */
  readonly controller: string;
  readonly client: KubeClient;
  /** The primary kind's typed client (all namespaces, or the controller's namespace). */
  readonly resource: ResourceClient<T>;
  /** The primary kind's cache. */
  readonly store: Store<T>;
  /** Failures of this key in a row before this run (0 on a first try or after a success). */
  readonly failures: number;
  /** The field manager of the controller's writes. */
  readonly fieldManager: string;
  /** The object as the cache has it now; undefined when it is gone. */
  get(): T | undefined;
  /**
   * The cache of a kind the controller owns or watches (`CAP_ERR_KUBE_USAGE` for any other kind). Each watch
   * has its own cache; for a kind watched twice (the primary kind also owned), the first watch's.
   */
  cache<U>(type: ResourceType<U>): Store<U>;
  /** The cache of a kind watched with `metadataOnly: true`: names, labels, owners, no spec or status. */
  metadataCache(type: ResourceType): Store<PartialObjectMetadata>;
  /**
   * Server-side apply `object` (of `type`) as the controller's field manager, with `force` (a controller owns
   * what it writes), and with the reconciled object as its controlling owner unless `owned: false`. Creates or
   * updates; sending the same fields again changes nothing, so a retry never duplicates a child.
   */
  apply<U>(type: ResourceType<U>, object: U, options?: ApplyOptions & { owned?: boolean }): Promise<U>;
  /**
   * Server-side apply of the reconciled object's status subresource: only the fields given are owned by the
   * controller. `conditions` are typically built with {@link setCondition}.
   */
  applyStatus(status: Record<string, unknown> & { conditions?: Condition[] }): Promise<T>;
  /** {@link finalizer} on the reconciled object (the one in the cache). */
  finalize(name: string, handle: (event: FinalizerEvent<T>) => Promise<Action>): Promise<Action>;
  /** Record a Kubernetes Event about the reconciled object (best effort, never throws). */
  event(event: EventInput): Promise<void>;
  /** The controller's clock (ms). */
  now(): number;
}

/** Reconcile one object: make the world match its spec. Throwing goes to the {@link ErrorPolicy}. */
export type Reconciler<T> = (request: ReconcileRequest, ctx: ReconcileContext<T>) => Promise<Action>;

/** What to do after a reconcile threw. */
export type ErrorPolicy<T> = (error: unknown, request: ReconcileRequest, ctx: ReconcileContext<T>) => Action;

/**
 * The default error policy: a {@link TerminalError} waits for a change (retrying cannot help); anything else
 * retries with the key's exponential backoff.
 */
export function defaultErrorPolicy(error: unknown): Action {
  return isTerminalError(error) ? Action.awaitChange() : Action.backoff();
}
