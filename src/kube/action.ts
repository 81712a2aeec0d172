// What a reconcile (or an error policy) asks the work queue to do next with its key. Requeue is a return
// value, as in kube-rs, so a reconciler never touches the queue.

/**
 * The next step for a key after a reconcile: build one with {@link Action.awaitChange},
 * {@link Action.requeueAfter} or {@link Action.backoff}.
 */
export type Action =
  | { readonly kind: 'awaitChange' }
  | { readonly kind: 'requeueAfter'; readonly afterMs: number }
  | { readonly kind: 'backoff' };

const AWAIT_CHANGE: Action = Object.freeze({ kind: 'awaitChange' });
const BACKOFF: Action = Object.freeze({ kind: 'backoff' });

/** Constructors of {@link Action}. */
export const Action = {
  /**
   * Nothing more to do until the object (or something it owns or watches) changes. The key's failure
   * count is reset. A periodic resync still reconciles it now and then.
   */
  awaitChange(): Action {
    return AWAIT_CHANGE;
  },
  /**
   * Reconcile again `ms` from now even if nothing changes (good practice for state outside the cluster:
   * a level-based check that catches what no event reports). Resets the failure count. If the key is
   * already due sooner, the sooner time stands.
   */
  requeueAfter(ms: number): Action {
    if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`requeueAfter wants a delay >= 0 ms, got ${ms}`);
    return Object.freeze({ kind: 'requeueAfter', afterMs: ms });
  },
  /**
   * Retry after the key's exponential backoff (with jitter, growing with each failure in a row) or later
   * if the queue's overall retry rate limit says so. What the default error policy returns.
   */
  backoff(): Action {
    return BACKOFF;
  },
} as const;
