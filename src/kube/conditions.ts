// Status conditions as Kubernetes API conventions define them (metav1.Condition): one entry per type, the
// transition time moves only when the status does, and observedGeneration says which spec was looked at.

/** A `metav1.Condition`, as it travels in `status.conditions`. */
export interface Condition {
  /** CamelCase: `Ready`, `Available`, `Progressing`, `Degraded`. */
  type: string;
  status: 'True' | 'False' | 'Unknown';
  /** The `metadata.generation` the controller acted on when it set this condition. */
  observedGeneration?: number;
  /** When `status` last changed (RFC 3339, second precision). */
  lastTransitionTime: string;
  /** CamelCase, machine-readable: `MinimumReplicasAvailable`. Required by the API (non-empty). */
  reason: string;
  /** Human-readable detail; may be empty. */
  message: string;
}

/** What {@link setCondition} takes: a condition without its transition time. */
export type ConditionInput = Omit<Condition, 'lastTransitionTime' | 'message'> & { message?: string };

/** RFC 3339 to the second, the precision `metav1.Time` keeps (a finer one would differ after a round trip). */
export function conditionTime(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}

/**
 * The conditions with `input` set (a new array; the input is not modified). `lastTransitionTime` is `now`
 * when the type is new or its status changed, and kept otherwise, so "Ready since" stays true across
 * reconciles that only refresh the reason, message or observedGeneration.
 */
export function setCondition(
  conditions: readonly Condition[] | undefined,
  input: ConditionInput,
  now: number = Date.now(),
): Condition[] {
  const list = [...(conditions ?? [])];
  const at = list.findIndex((c) => c.type === input.type);
  const previous = at >= 0 ? list[at] : undefined;
  const next: Condition = {
    type: input.type,
    status: input.status,
    ...(input.observedGeneration !== undefined ? { observedGeneration: input.observedGeneration } : {}),
    lastTransitionTime:
      previous && previous.status === input.status ? previous.lastTransitionTime : conditionTime(now),
    reason: input.reason,
    message: input.message ?? '',
  };
  if (at >= 0) list[at] = next;
  else list.push(next);
  return list;
}

/** The condition of `type`, or undefined. */
export function findCondition(
  conditions: readonly Condition[] | undefined,
  type: string,
): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}

/**
 * True when the condition of `type` is `True` and, if `generation` is given, was set for that generation
 * (a Ready from an older spec does not count).
 */
export function isConditionTrue(
  conditions: readonly Condition[] | undefined,
  type: string,
  generation?: number,
): boolean {
  const c = findCondition(conditions, type);
  return c?.status === 'True' && (generation === undefined || c.observedGeneration === generation);
}

/** The conditions without `type` (a new array). */
export function removeCondition(conditions: readonly Condition[] | undefined, type: string): Condition[] {
  return (conditions ?? []).filter((c) => c.type !== type);
}
