import type { V1Scale } from '@kubernetes/client-node';
import { ndjson } from '../runtime/index.ts';
import { KubeError, KubeErrorCode } from './errors.ts';
import type {
  KubeStatus,
  ObjectList,
  ObjectMeta,
  PartialObjectMetadata,
  WatchEvent,
  Wire,
} from './objects.ts';
import { type KubeApi, type KubeRequest, kubeErrorFromResponse } from './request.ts';
import { apiVersionOf, type ResourceType } from './resource-type.ts';

/** `autoscaling/v1` Scale: what the scale subresource reads and writes. */
export type Scale = Wire<V1Scale>;

/** Options every call takes. */
export interface CallOptions {
  signal?: AbortSignal;
  /** A limit on the whole call, retries included (ms). Default: the client's transport's. */
  timeoutMs?: number;
}

/** A selector: the apiserver's string syntax (`app=web,tier!=db`), or equality pairs. */
export type Selector = string | Record<string, string>;

/** Which objects a list or watch covers. */
export interface SelectorOptions {
  /** By labels: `app=web`, `env in (a,b)`, `!legacy`, or `{ app: 'web' }`. */
  labelSelector?: Selector;
  /** By fields the kind supports: `metadata.name=x`, `status.phase=Running`. */
  fieldSelector?: Selector;
}

/** Options of {@link ResourceClient.list}. */
export interface ListOptions extends CallOptions, SelectorOptions {
  /** Page size; the answer's `metadata.continue` asks for the next page. */
  limit?: number;
  /** The `metadata.continue` of the previous page. */
  continue?: string;
  /** Unset: the latest state (a consistent read). `'0'`: any state the apiserver's cache holds (cheap). */
  resourceVersion?: string;
  resourceVersionMatch?: 'Exact' | 'NotOlderThan';
}

/** Options of {@link ResourceClient.watch}. */
export interface WatchOptions extends SelectorOptions {
  /** Start after this version (exclusive); unset: from now, with no initial state. */
  resourceVersion?: string;
  /** Ask for `BOOKMARK` events (progress without changes). Default true. */
  allowWatchBookmarks?: boolean;
  /** The apiserver ends the watch after this long (a clean end). Default: the apiserver's (5-10 min). */
  timeoutSeconds?: number;
  /**
   * Stream the current state as `ADDED` events first, then a bookmark marked
   * `k8s.io/initial-events-end` (the WatchList feature); needs `resourceVersionMatch: NotOlderThan`.
   */
  sendInitialEvents?: boolean;
  resourceVersionMatch?: 'NotOlderThan';
  signal?: AbortSignal;
}

/** Options of writes (`create`, `replace`, `patch`). */
export interface WriteOptions extends CallOptions {
  /** Validate and default but store nothing (`dryRun=All`). */
  dryRun?: boolean;
  /** Who owns the fields written. Default: the client's `fieldManager`. */
  fieldManager?: string;
  /** What the apiserver does with unknown or duplicate fields. Default: the apiserver's (`Warn`). */
  fieldValidation?: 'Strict' | 'Warn' | 'Ignore';
}

/**
 * How a patch is merged: `merge` (RFC 7386 JSON merge patch: maps merge, lists are replaced), `strategic`
 * (built-in kinds only: lists merge by key, e.g. containers by name), `json` (RFC 6902 operations, with
 * `test` for preconditions).
 */
export type PatchType = 'merge' | 'strategic' | 'json';

/** Options of `patch` and `patchStatus`. */
export interface PatchOptions extends WriteOptions {
  /** Default `merge`. */
  type?: PatchType;
}

/** Options of server-side apply (`apply`, `applyStatus`). */
export interface ApplyOptions extends CallOptions {
  /** The field manager that will own the fields sent. Default: the client's `fieldManager`. */
  fieldManager?: string;
  /** Take fields owned by another manager instead of failing with `CAP_ERR_KUBE_CONFLICT`. */
  force?: boolean;
  dryRun?: boolean;
}

/** Options of `delete`. */
export interface DeleteOptions extends CallOptions {
  /** What happens to dependents: `Background` (default for most kinds), `Foreground` or `Orphan`. */
  propagationPolicy?: 'Foreground' | 'Background' | 'Orphan';
  gracePeriodSeconds?: number;
  /** Delete only if the object still has this uid / resourceVersion (else `CAP_ERR_KUBE_CONFLICT`). */
  preconditions?: { uid?: string; resourceVersion?: string };
  dryRun?: boolean;
}

/** A full list: every page's items and the resourceVersion to watch from. */
export interface FullList<T> {
  items: T[];
  resourceVersion: string;
}

const CONTENT_TYPE: Record<PatchType | 'apply', string> = {
  merge: 'application/merge-patch+json',
  strategic: 'application/strategic-merge-patch+json',
  json: 'application/json-patch+json',
  apply: 'application/apply-patch+yaml',
};

const METADATA_ACCEPT = 'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1';
const METADATA_LIST_ACCEPT = 'application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1';

/** `a=b,c=d` for equality pairs; a string passes as is. */
export function selectorString(selector: Selector | undefined): string | undefined {
  if (selector === undefined || typeof selector === 'string') return selector || undefined;
  const parts = Object.entries(selector).map(([k, v]) => `${k}=${v}`);
  return parts.length > 0 ? parts.join(',') : undefined;
}

const seg = encodeURIComponent;

/**
 * The typed client of one kind, in one namespace or across all: CRUD, list with paging, raw watch, patch
 * (merge, strategic, JSON), server-side apply, delete with preconditions, and the `status` and `scale`
 * subresources. Errors are {@link KubeError}s mapped from the apiserver's `Status`. Made by
 * `KubeClient.resource`; cheap to make, holds no connection of its own.
 */
export class ResourceClient<T> {
  /** The API client every call goes through. */
  readonly client: KubeApi;
  /** The kind this client reads and writes. */
  readonly type: ResourceType<T>;
  /** The namespace of every call, or undefined for all namespaces (and for cluster-scoped kinds). */
  readonly namespace: string | undefined;
  readonly #metadataOnly: boolean;

  constructor(client: KubeApi, type: ResourceType<T>, namespace?: string, metadataOnly = false) {
    this.client = client;
    this.type = type;
    this.namespace = type.namespaced ? namespace : undefined;
    this.#metadataOnly = metadataOnly;
  }

  /** The same kind, in `namespace` (or all namespaces with undefined). */
  inNamespace(namespace: string | undefined): ResourceClient<T> {
    return new ResourceClient<T>(this.client, this.type, namespace, this.#metadataOnly);
  }

  /**
   * The same kind read as metadata only (`PartialObjectMetadata`): `get`, `list` and `watch` return names,
   * labels, annotations, owners and versions without spec or status. Far less memory for a cache of many
   * objects whose bodies a controller does not need.
   */
  metadataOnly(): ResourceClient<PartialObjectMetadata> {
    return new ResourceClient<PartialObjectMetadata>(
      this.client,
      this.type as ResourceType<unknown> as ResourceType<PartialObjectMetadata>,
      this.namespace,
      true,
    );
  }

  /** `/api/v1` or `/apis/group/version`. */
  get #base(): string {
    const t = this.type;
    return t.group === '' ? `/api/${seg(t.version)}` : `/apis/${seg(t.group)}/${seg(t.version)}`;
  }

  /** The collection URL; a namespace given wins over the client's. */
  collectionPath(namespace: string | undefined = this.namespace): string {
    const ns = this.type.namespaced && namespace ? `/namespaces/${seg(namespace)}` : '';
    return `${this.#base}${ns}/${seg(this.type.plural)}`;
  }

  /** The URL of one object (and a subresource). */
  objectPath(name: string, namespace?: string, subresource?: string): string {
    if (!name) throw new KubeError(KubeErrorCode.usage, `${this.type.kind}: an object needs a name`);
    const ns = namespace ?? this.namespace;
    if (this.type.namespaced && !ns) {
      throw new KubeError(
        KubeErrorCode.usage,
        `${this.type.kind} ${name}: a namespaced kind needs a namespace (resource(type, namespace))`,
      );
    }
    return `${this.collectionPath(ns)}/${seg(name)}${subresource ? `/${subresource}` : ''}`;
  }

  /** The path of an object given as a value: its name, and its namespace unless the client has one. */
  #pathOf(object: { metadata?: ObjectMeta } | undefined, subresource?: string): string {
    const meta = object?.metadata;
    if (this.namespace && meta?.namespace && meta.namespace !== this.namespace && this.type.namespaced) {
      throw new KubeError(
        KubeErrorCode.usage,
        `${this.type.kind} ${meta.name}: in namespace ${meta.namespace}, but this client is for ${this.namespace}`,
      );
    }
    return this.objectPath(meta?.name ?? '', this.namespace ?? meta?.namespace, subresource);
  }

  #call<R>(req: KubeRequest, options: CallOptions | undefined): Promise<R> {
    return this.client.json<R>({
      ...req,
      ...(options?.signal ? { signal: options.signal } : {}),
      ...(options?.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
    });
  }

  #writeQuery(options: WriteOptions | ApplyOptions | undefined, force?: boolean) {
    const o = (options ?? {}) as WriteOptions & ApplyOptions;
    return {
      fieldManager: o.fieldManager ?? this.client.fieldManager,
      dryRun: o.dryRun ? 'All' : undefined,
      fieldValidation: o.fieldValidation,
      force: force ? 'true' : undefined,
    };
  }

  /** With `apiVersion` and `kind` filled in from the type when missing (create and apply need them). */
  #typed(object: T): T {
    const o = object as { apiVersion?: string; kind?: string };
    if (o.apiVersion && o.kind) return object;
    return { apiVersion: apiVersionOf(this.type), kind: this.type.kind, ...object } as T;
  }

  /** Read one object; `CAP_ERR_KUBE_NOT_FOUND` when it does not exist. */
  async get(name: string, options?: CallOptions): Promise<T> {
    return this.#call<T>(
      { path: this.objectPath(name), ...(this.#metadataOnly ? { accept: METADATA_ACCEPT } : {}) },
      options,
    );
  }

  /** {@link get}, but undefined instead of `CAP_ERR_KUBE_NOT_FOUND`. */
  async getOptional(name: string, options?: CallOptions): Promise<T | undefined> {
    try {
      return await this.get(name, options);
    } catch (err) {
      if (err instanceof KubeError && err.code === KubeErrorCode.notFound) return undefined;
      throw err;
    }
  }

  /** One page (with `limit`) or all objects in one answer (without). */
  async list(options: ListOptions = {}): Promise<ObjectList<T>> {
    const page = await this.#call<ObjectList<T>>(
      {
        path: this.collectionPath(),
        query: {
          labelSelector: selectorString(options.labelSelector),
          fieldSelector: selectorString(options.fieldSelector),
          limit: options.limit,
          continue: options.continue,
          resourceVersion: options.resourceVersion,
          resourceVersionMatch: options.resourceVersionMatch,
        },
        ...(this.#metadataOnly ? { accept: METADATA_LIST_ACCEPT } : {}),
      },
      options,
    );
    // An empty PartialObjectMetadataList comes with `items: null`.
    page.items ??= [];
    page.metadata ??= {};
    return page;
  }

  /**
   * Each page of a list, following `continue` until the end (a consistent snapshot: every page is at the
   * first page's resourceVersion). A continue token that expired meanwhile fails with `CAP_ERR_KUBE_GONE`.
   */
  async *listPages(options: ListOptions & { limit: number }): AsyncGenerator<ObjectList<T>> {
    let next = options.continue;
    do {
      const page = await this.list({ ...options, ...(next ? { continue: next } : {}) });
      next = page.metadata?.continue || undefined;
      yield page;
    } while (next);
  }

  /** Every object, page by page (`limit` per page, default 500), and the version to watch from. */
  async listAll(options: Omit<ListOptions, 'continue'> = {}): Promise<FullList<T>> {
    const items: T[] = [];
    let resourceVersion = '';
    for await (const page of this.listPages({ ...options, limit: options.limit ?? 500 })) {
      for (const item of page.items) items.push(item);
      resourceVersion = page.metadata?.resourceVersion ?? resourceVersion;
    }
    return { items, resourceVersion };
  }

  /**
   * One raw watch connection: the apiserver's events as they come, until it ends the watch (a clean end,
   * after `timeoutSeconds`), the connection breaks (`CAP_ERR_KUBE_CONNECT`), or `signal` aborts (rejects with
   * its reason). An `ERROR` event is thrown as the {@link KubeError} of its `Status` (`CAP_ERR_KUBE_GONE` for a
   * resourceVersion that is too old). It does not resume: {@link watcher} does, with relists and a watchdog.
   */
  async *watch(options: WatchOptions = {}): AsyncGenerator<WatchEvent<T>> {
    const what = `WATCH ${this.collectionPath()}`;
    const res = await this.client.request({
      path: this.collectionPath(),
      query: {
        watch: 'true',
        resourceVersion: options.resourceVersion,
        allowWatchBookmarks: options.allowWatchBookmarks === false ? undefined : 'true',
        timeoutSeconds: options.timeoutSeconds,
        labelSelector: selectorString(options.labelSelector),
        fieldSelector: selectorString(options.fieldSelector),
        sendInitialEvents: options.sendInitialEvents ? 'true' : undefined,
        resourceVersionMatch: options.resourceVersionMatch,
      },
      stream: true,
      ...(this.#metadataOnly ? { accept: METADATA_ACCEPT } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    });
    if (res.status !== 200) {
      const text = await res.body.text().catch(() => '');
      throw kubeErrorFromResponse(res.status, text, what);
    }
    const events = ndjson<WatchEvent<T>>(res.body, {
      badJson: (text, cause) =>
        new KubeError(KubeErrorCode.decode, `${what}: an event is not JSON: ${text}`, { cause }),
    });
    try {
      for await (const event of events) {
        if (event === null || typeof event !== 'object' || typeof event.type !== 'string') {
          throw new KubeError(KubeErrorCode.decode, `${what}: an event without a type`);
        }
        if (event.type === 'ERROR') {
          const status = event.object as KubeStatus;
          throw kubeErrorFromResponse(status.code ?? 500, JSON.stringify(status), what);
        }
        yield event;
      }
    } catch (err) {
      if (err instanceof KubeError || options.signal?.aborted || this.client.closedSignal.aborted) throw err;
      // The body broke off (reset, closed, proxy gone): a connection failure the watcher resumes from.
      throw new KubeError(KubeErrorCode.connect, `${what}: the stream broke: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }

  /** Create an object (its namespace: the client's, else its own); `CAP_ERR_KUBE_CONFLICT` if it exists. */
  async create(object: T, options?: WriteOptions): Promise<T> {
    const meta = (object as { metadata?: ObjectMeta }).metadata;
    const ns = this.namespace ?? meta?.namespace;
    if (this.type.namespaced && !ns) {
      throw new KubeError(KubeErrorCode.usage, `${this.type.kind}: create needs a namespace`);
    }
    return this.#call<T>(
      {
        method: 'POST',
        path: this.collectionPath(ns),
        query: this.#writeQuery(options),
        json: this.#typed(object),
      },
      options,
    );
  }

  /**
   * Replace an object (PUT). With `metadata.resourceVersion` set, it fails with `CAP_ERR_KUBE_CONFLICT` if
   * the object changed since: optimistic concurrency.
   */
  async replace(object: T, options?: WriteOptions): Promise<T> {
    return this.#call<T>(
      {
        method: 'PUT',
        path: this.#pathOf(object as { metadata?: ObjectMeta }),
        query: this.#writeQuery(options),
        json: this.#typed(object),
      },
      options,
    );
  }

  /** Patch an object: a merge patch by default, `type: 'strategic'` or `'json'` (operations) on request. */
  async patch(name: string, patch: unknown, options?: PatchOptions): Promise<T> {
    return this.#patch(this.objectPath(name), patch, options);
  }

  #patch(path: string, patch: unknown, options: PatchOptions | undefined): Promise<T> {
    return this.#call<T>(
      {
        method: 'PATCH',
        path,
        query: this.#writeQuery(options),
        json: patch,
        contentType: CONTENT_TYPE[options?.type ?? 'merge'],
      },
      options,
    );
  }

  /**
   * Server-side apply: send the fields this manager wants (a partial object with name, and namespace unless
   * the client has one); the apiserver merges them, tracks ownership per field, and fails with
   * `CAP_ERR_KUBE_CONFLICT` when another manager owns a field with a different value, unless `force`.
   * Creates the object when it does not exist. Safe to retry.
   */
  async apply(object: T, options?: ApplyOptions): Promise<T> {
    return this.#apply(object, undefined, options);
  }

  #apply(object: T, subresource: string | undefined, options: ApplyOptions | undefined): Promise<T> {
    return this.#call<T>(
      {
        method: 'PATCH',
        path: this.#pathOf(object as { metadata?: ObjectMeta }, subresource),
        query: this.#writeQuery(options, options?.force),
        // JSON is YAML: the apply content type takes it as is.
        json: this.#typed(object),
        contentType: CONTENT_TYPE.apply,
        idempotent: true,
      },
      options,
    );
  }

  /**
   * Delete an object. Answers the object when deletion is pending (finalizers, foreground deletion, grace
   * period), else the apiserver's `Status`. `CAP_ERR_KUBE_NOT_FOUND` when already gone.
   */
  async delete(name: string, options: DeleteOptions = {}): Promise<T | KubeStatus> {
    return this.#call<T | KubeStatus>(
      {
        method: 'DELETE',
        path: this.objectPath(name),
        json: deleteBody(options),
      },
      options,
    );
  }

  /** Delete every object the selectors match (in the client's namespace). */
  async deleteCollection(options: DeleteOptions & SelectorOptions = {}): Promise<ObjectList<T> | KubeStatus> {
    return this.#call<ObjectList<T> | KubeStatus>(
      {
        method: 'DELETE',
        path: this.collectionPath(),
        query: {
          labelSelector: selectorString(options.labelSelector),
          fieldSelector: selectorString(options.fieldSelector),
        },
        json: deleteBody(options),
      },
      options,
    );
  }

  /** Read the `status` subresource (the whole object, as the apiserver answers it). */
  async getStatus(name: string, options?: CallOptions): Promise<T> {
    return this.#call<T>({ path: this.objectPath(name, undefined, 'status') }, options);
  }

  /** Replace the status (PUT `/status`): only `status` changes; `metadata.resourceVersion` guards it. */
  async replaceStatus(object: T, options?: WriteOptions): Promise<T> {
    return this.#call<T>(
      {
        method: 'PUT',
        path: this.#pathOf(object as { metadata?: ObjectMeta }, 'status'),
        query: this.#writeQuery(options),
        json: this.#typed(object),
      },
      options,
    );
  }

  /** Patch the status subresource (`{ status: {...} }` as a merge patch by default). */
  async patchStatus(name: string, patch: unknown, options?: PatchOptions): Promise<T> {
    return this.#patch(this.objectPath(name, undefined, 'status'), patch, options);
  }

  /** Server-side apply of the status subresource: the way a controller reports what it observed. */
  async applyStatus(object: T, options?: ApplyOptions): Promise<T> {
    return this.#apply(object, 'status', options);
  }

  /** Read the `scale` subresource (`spec.replicas`, `status.replicas`, `status.selector`). */
  async getScale(name: string, options?: CallOptions): Promise<Scale> {
    return this.#call<Scale>({ path: this.objectPath(name, undefined, 'scale') }, options);
  }

  /** Replace the scale (PUT `/scale`, an `autoscaling/v1` Scale). */
  async replaceScale(name: string, scale: Scale, options?: WriteOptions): Promise<Scale> {
    return this.#call<Scale>(
      {
        method: 'PUT',
        path: this.objectPath(name, undefined, 'scale'),
        query: this.#writeQuery(options),
        json: { apiVersion: 'autoscaling/v1', kind: 'Scale', ...scale },
      },
      options,
    );
  }

  /** Set `spec.replicas` through the scale subresource (a merge patch: no read, no conflict). */
  async scale(name: string, replicas: number, options?: WriteOptions): Promise<Scale> {
    return this.#call<Scale>(
      {
        method: 'PATCH',
        path: this.objectPath(name, undefined, 'scale'),
        query: this.#writeQuery(options),
        json: { spec: { replicas } },
        contentType: CONTENT_TYPE.merge,
      },
      options,
    );
  }
}

function deleteBody(options: DeleteOptions): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'DeleteOptions',
    ...(options.propagationPolicy ? { propagationPolicy: options.propagationPolicy } : {}),
    ...(options.gracePeriodSeconds !== undefined ? { gracePeriodSeconds: options.gracePeriodSeconds } : {}),
    ...(options.preconditions ? { preconditions: options.preconditions } : {}),
    ...(options.dryRun ? { dryRun: ['All'] } : {}),
  };
}
