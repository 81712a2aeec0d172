// Event filters (controller-runtime's predicates): which watch changes wake the reconciler at all. They only
// thin out hints; a filtered change is still in the cache the reconciler reads.
import { type Selector, selectorString } from './resource-client.ts';

/** One change seen by a watch: the new state, and the cache's state just before. */
export interface WatchChange<T> {
  /** `apply`: created or changed (`old` undefined when created); `delete`: gone (`object` is its last state). */
  readonly type: 'apply' | 'delete';
  readonly object: T;
  readonly old: T | undefined;
}

/** Keep (true) or drop (false) a change. */
export type Predicate<T> = (change: WatchChange<T>) => boolean;

interface Meta {
  metadata?: {
    generation?: number;
    resourceVersion?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    deletionTimestamp?: string;
    finalizers?: string[];
  };
}

function sameRecord(a: Record<string, string> | undefined, b: Record<string, string> | undefined): boolean {
  const ka = Object.keys(a ?? {});
  if (ka.length !== Object.keys(b ?? {}).length) return false;
  return ka.every((k) => a?.[k] === b?.[k]);
}

/**
 * Parse an equality-based selector (`a=b,c!=d`, `a`, `!a`, or pairs) into a test on labels. Set-based forms
 * (`in`, `notin`) are for the apiserver: give those as the controller's `labelSelector` instead.
 */
function labelTest(selector: Selector): (labels: Record<string, string>) => boolean {
  const text = selectorString(selector) ?? '';
  const terms = text
    .split(',')
    .map((t) => t.trim())
    .filter((t) => t.length > 0)
    .map((term) => {
      const ne = term.indexOf('!=');
      if (ne > 0) {
        const k = term.slice(0, ne).trim();
        const v = term.slice(ne + 2).trim();
        return (l: Record<string, string>) => l[k] !== v;
      }
      const eq = term.indexOf('=');
      if (eq > 0) {
        const k = term.slice(0, eq).trim();
        const v = term.slice(term[eq + 1] === '=' ? eq + 2 : eq + 1).trim();
        return (l: Record<string, string>) => l[k] === v;
      }
      if (term.startsWith('!')) {
        const k = term.slice(1).trim();
        return (l: Record<string, string>) => !(k in l);
      }
      return (l: Record<string, string>) => term in l;
    });
  return (labels) => terms.every((t) => t(labels));
}

/** Ready-made {@link Predicate}s. Creates and deletes pass all of those about changes. */
export const predicates = {
  /**
   * The spec changed: `metadata.generation` moved (status writes do not move it, so a controller is not
   * woken by its own status updates). Kinds without a generation (ConfigMap, Secret) pass on any new
   * resourceVersion. Deletion starting (`deletionTimestamp` set) and finalizer changes pass too: a finalizer
   * must see them, and neither moves the generation.
   */
  generationChanged<T>(): Predicate<T> {
    return ({ type, object, old }) => {
      if (type === 'delete' || old === undefined) return true;
      const n = (object as Meta).metadata;
      const o = (old as Meta).metadata;
      if (n?.generation === undefined) return n?.resourceVersion !== o?.resourceVersion;
      return (
        n.generation !== o?.generation ||
        n.deletionTimestamp !== o?.deletionTimestamp ||
        (n.finalizers ?? []).join(',') !== (o?.finalizers ?? []).join(',')
      );
    };
  },
  /** The labels changed. */
  labelsChanged<T>(): Predicate<T> {
    return ({ type, object, old }) =>
      type === 'delete' ||
      old === undefined ||
      !sameRecord((object as Meta).metadata?.labels, (old as Meta).metadata?.labels);
  },
  /** The annotations changed. */
  annotationsChanged<T>(): Predicate<T> {
    return ({ type, object, old }) =>
      type === 'delete' ||
      old === undefined ||
      !sameRecord((object as Meta).metadata?.annotations, (old as Meta).metadata?.annotations);
  },
  /** Something changed at all (drops a relist's unchanged copies). */
  resourceVersionChanged<T>(): Predicate<T> {
    return ({ type, object, old }) =>
      type === 'delete' ||
      old === undefined ||
      (object as Meta).metadata?.resourceVersion !== (old as Meta).metadata?.resourceVersion;
  },
  /** The object (new or old state) has labels matching `selector` (equality terms: `a=b,c!=d,e,!f`). */
  labels<T>(selector: Selector): Predicate<T> {
    const test = labelTest(selector);
    return ({ object, old }) =>
      test((object as Meta).metadata?.labels ?? {}) ||
      (old !== undefined && test((old as Meta).metadata?.labels ?? {}));
  },
  /** All of `list` keep the change. */
  and<T>(...list: Array<Predicate<T>>): Predicate<T> {
    return (change) => list.every((p) => p(change));
  },
  /** Any of `list` keeps the change. */
  or<T>(...list: Array<Predicate<T>>): Predicate<T> {
    return (change) => list.some((p) => p(change));
  },
  /** The opposite of `p`. */
  not<T>(p: Predicate<T>): Predicate<T> {
    return (change) => !p(change);
  },
} as const;
