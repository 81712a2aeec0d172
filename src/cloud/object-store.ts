// The object-storage port and what is built on it (listing totals, gc planning and batched deletes), so
// the logic is tested without a server and the S3 adapter stays a thin translation.
import { CloudError, CloudErrorCode } from './errors.ts';

/** One object of a listing. */
export interface StoredObject {
  readonly key: string;
  readonly size: number;
  readonly lastModified: Date;
}

/** What a deletion of one batch came back with. */
export interface DeleteOutcome {
  readonly deleted: readonly string[];
  readonly failed: readonly { readonly key: string; readonly message: string }[];
}

/** The few calls gc and the listings need from an object store (S3 or a fake). */
export interface ObjectStore {
  /** Every object under `prefix`, page by page (all pages, not the first only). */
  listPages(prefix: string | undefined, signal?: AbortSignal): AsyncIterable<readonly StoredObject[]>;
  /** Deletes up to {@link DELETE_BATCH} keys in one call. */
  deleteBatch(keys: readonly string[], signal?: AbortSignal): Promise<DeleteOutcome>;
}

/** S3's DeleteObjects limit: at most this many keys per call. */
export const DELETE_BATCH = 1000;

/** Totals of a listing. */
export interface Usage {
  readonly objects: number;
  readonly bytes: number;
}

/** Reads every page; `onPage` sees the running count (for progress on long listings). */
export async function listAll(
  store: ObjectStore,
  prefix: string | undefined,
  options: { signal?: AbortSignal; onPage?: (seen: number) => void } = {},
): Promise<StoredObject[]> {
  const all: StoredObject[] = [];
  for await (const page of store.listPages(prefix, options.signal)) {
    all.push(...page);
    options.onPage?.(all.length);
  }
  return all;
}

/** Object count and summed size. */
export function usageOf(objects: readonly StoredObject[]): Usage {
  let bytes = 0;
  for (const object of objects) bytes += object.size;
  return { objects: objects.length, bytes };
}

/** Which objects gc removes: every criterion given must hold (at least one must be given). */
export interface GcRule {
  /** Only objects last modified more than this many milliseconds before `now`. */
  readonly olderThanMs?: number;
  /** Only keys starting with this. */
  readonly prefix?: string;
  /** Only keys this matches. */
  readonly pattern?: RegExp;
  readonly now?: Date;
}

/** The objects `rule` selects, oldest first; pure, so a plan can be shown before anything is deleted. */
export function planGc(objects: readonly StoredObject[], rule: GcRule): StoredObject[] {
  if (rule.olderThanMs === undefined && rule.prefix === undefined && rule.pattern === undefined) {
    // Guard against "gc" meaning "delete the bucket's contents" by a forgotten flag.
    throw new CloudError(CloudErrorCode.invalid, 'gc needs a criterion: an age, a prefix or a pattern');
  }
  if (rule.olderThanMs !== undefined && !(rule.olderThanMs >= 0)) {
    throw new CloudError(CloudErrorCode.invalid, `gc age must be 0 or more, got ${rule.olderThanMs}`);
  }
  const cutoff =
    rule.olderThanMs === undefined ? undefined : (rule.now ?? new Date()).getTime() - rule.olderThanMs;
  return objects
    .filter(
      (object) =>
        (cutoff === undefined || object.lastModified.getTime() < cutoff) &&
        (rule.prefix === undefined || object.key.startsWith(rule.prefix)) &&
        (rule.pattern === undefined || rule.pattern.test(object.key)),
    )
    .sort((a, b) => a.lastModified.getTime() - b.lastModified.getTime() || a.key.localeCompare(b.key));
}

/** Deletes a plan in batches of {@link DELETE_BATCH}; throws `partialDelete` when the store refused keys. */
export async function executeGc(
  store: ObjectStore,
  plan: readonly StoredObject[],
  options: { signal?: AbortSignal; onBatch?: (done: number) => void } = {},
): Promise<{ deleted: number }> {
  let deleted = 0;
  const failed: { key: string; message: string }[] = [];
  for (let start = 0; start < plan.length; start += DELETE_BATCH) {
    options.signal?.throwIfAborted();
    const keys = plan.slice(start, start + DELETE_BATCH).map((object) => object.key);
    const outcome = await store.deleteBatch(keys, options.signal);
    deleted += outcome.deleted.length;
    failed.push(...outcome.failed);
    options.onBatch?.(deleted);
  }
  if (failed.length > 0) {
    const first = failed[0]!;
    throw new CloudError(
      CloudErrorCode.partialDelete,
      `deleted ${deleted} of ${plan.length} objects; ${failed.length} refused (first: ${first.key}: ${first.message})`,
    );
  }
  return { deleted };
}
