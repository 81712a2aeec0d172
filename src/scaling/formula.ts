// The HorizontalPodAutoscaler's arithmetic, as kube-controller-manager does it (replica_calculator.go and
// horizontal.go): a proposal from the metric with a tolerance, stabilized over windows of past proposals,
// then held within min and max. Pure: time comes in as numbers, so tests need no clock at all.

/**
 * How the metric is compared with the target, as in an HPA's external metric:
 * - `AverageValue`: the metric is a total shared by the replicas (queue depth); the target is what one replica
 *   should carry. Proposal: `ceil(metric / target)`, i.e. `ceil(current × (metric / current) / target)`.
 * - `Value`: the metric is compared with the target as is (a latency, a ratio). Proposal:
 *   `ceil(current × metric / target)`.
 */
export type TargetType = 'AverageValue' | 'Value';

/** The HPA's default tolerance: no change while the usage ratio is within 10 % of 1. */
export const DEFAULT_TOLERANCE = 0.1;

/** What {@link proposeReplicas} needs. */
export interface ProposalInput {
  /** Replicas now (`spec.replicas` of the scale). */
  readonly current: number;
  /** The metric read (a queue's depth, a query's value); finite and ≥ 0. */
  readonly metric: number;
  /** The target (per replica for `AverageValue`); finite and > 0. */
  readonly target: number;
  readonly targetType: TargetType;
  /** Default {@link DEFAULT_TOLERANCE}. */
  readonly tolerance?: number;
}

/**
 * The replica count the metric asks for, before stabilization and bounds. Within the tolerance the answer
 * is `current` (no flapping on noise). From zero replicas, an `AverageValue` target proposes
 * `ceil(metric / target)` (the HPA's own arithmetic) and a `Value` target counts from one replica.
 */
export function proposeReplicas(input: ProposalInput): number {
  const { current, metric, target, targetType } = input;
  const tolerance = input.tolerance ?? DEFAULT_TOLERANCE;
  if (targetType === 'AverageValue') {
    if (current > 0) {
      const usageRatio = metric / (target * current);
      if (Math.abs(1 - usageRatio) <= tolerance) return current;
    } else if (metric === 0) {
      return 0;
    }
    return Math.ceil(metric / target);
  }
  const usageRatio = metric / target;
  if (Math.abs(1 - usageRatio) <= tolerance) return current;
  return Math.ceil(usageRatio * Math.max(current, 1));
}

/** `value` held within `[min, max]`. */
export function clampReplicas(value: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, value));
}

/** One past proposal and when it was made (ms). */
export interface Recommendation {
  readonly at: number;
  readonly replicas: number;
}

/** Windows of {@link Stabilizer}, in ms. */
export interface StabilizationWindows {
  /** Scale up only to the lowest proposal of this window. HPA default 0: up at once. */
  readonly scaleUpMs: number;
  /** Scale down only to the highest proposal of this window. HPA default 300 000 (5 min). */
  readonly scaleDownMs: number;
}

/** Why the stabilized answer differs from the proposal, as the HPA's AbleToScale condition says it. */
export type StabilizationReason = 'ScaleUpStabilized' | 'ScaleDownStabilized' | undefined;

/**
 * The HPA's stabilization (`stabilizeRecommendationWithBehaviors`): it remembers each proposal with its time;
 * the answer moves up no further than the lowest proposal within the scale-up window and down no further
 * than the highest within the scale-down window. A fresh stabilizer starts with `current` as a proposal made
 * now, as the HPA does, so a restarted autoscaler does not scale down at once on its first reading.
 */
export class Stabilizer {
  readonly windows: StabilizationWindows;
  #recommendations: Recommendation[] = [];
  #started = false;

  constructor(windows: StabilizationWindows) {
    if (!(windows.scaleUpMs >= 0) || !(windows.scaleDownMs >= 0)) {
      throw new RangeError('stabilization windows must be ≥ 0 ms');
    }
    this.windows = windows;
  }

  /** The proposals still inside a window, oldest first. */
  get recommendations(): readonly Recommendation[] {
    return this.#recommendations;
  }

  /**
   * Record `proposal` (made at `now`, ms) and return the replica count to set, with the reason when the
   * windows held it back.
   */
  stabilize(
    proposal: number,
    current: number,
    now: number,
  ): { replicas: number; reason: StabilizationReason } {
    const { scaleUpMs, scaleDownMs } = this.windows;
    if (!this.#started) {
      this.#started = true;
      if (scaleDownMs > 0) this.#recommendations.push({ at: now, replicas: current });
    }
    let up = proposal;
    let down = proposal;
    for (const r of this.#recommendations) {
      // A window of length w covers (now - w, now]: a proposal exactly w old has left it.
      if (r.at > now - scaleUpMs) up = Math.min(up, r.replicas);
      if (r.at > now - scaleDownMs) down = Math.max(down, r.replicas);
    }
    this.#recommendations.push({ at: now, replicas: proposal });
    const keep = Math.max(scaleUpMs, scaleDownMs);
    this.#recommendations = this.#recommendations.filter((r) => r.at > now - keep);

    let replicas = current;
    let reason: StabilizationReason;
    if (replicas < up) replicas = up;
    if (replicas > down) replicas = down;
    if (replicas !== proposal) {
      reason = proposal > current ? 'ScaleUpStabilized' : 'ScaleDownStabilized';
    }
    return { replicas, reason };
  }
}
