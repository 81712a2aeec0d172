// One autoscaler: every polling interval, read the metric, propose replicas with the HPA's formula,
// stabilize, bound, and write the Scale subresource when the answer differs. What it knows goes out as
// HPA-style conditions (AbleToScale, ScalingActive, ScalingLimited) and Prometheus series.
import type { Clock, KubeClient } from '../kube/index.ts';
import { systemClock } from '../kube/index.ts';
import { Counter, Gauge, type Logger, type MetricsRegistry } from '../runtime/index.ts';
import { ScalingError, ScalingErrorCode } from './errors.ts';
import {
  clampReplicas,
  DEFAULT_TOLERANCE,
  proposeReplicas,
  type StabilizationReason,
  Stabilizer,
  type TargetType,
} from './formula.ts';
import { type ScaleTarget, type ScaleTargetRef, scaleTarget } from './scale.ts';
import type { MetricSource } from './sources.ts';

/** HPA defaults: a 15 s sync period, a 5-minute scale-down window, no scale-up window. */
export const DEFAULT_POLLING_INTERVAL_MS = 15_000;
export const DEFAULT_SCALE_DOWN_WINDOW_SECONDS = 300;
export const DEFAULT_SCALE_UP_WINDOW_SECONDS = 0;

/** What one autoscaler scales, on which metric, within which bounds. */
export interface AutoscalerSpec {
  /** Names the autoscaler in logs, metrics (`scaler` label) and status. */
  readonly name: string;
  /** What to scale: `deployment/worker`, `statefulsets.apps/db`, a CRD's `wpool/pool`... */
  readonly scaleTargetRef: ScaleTargetRef;
  /** Namespace of the target. Default: the client's, else `default`. */
  readonly namespace?: string;
  /**
   * Lower bound. Default 1. With 0, a working source that reads 0 scales the target to zero (and a
   * reading above 0 brings it back); a failing source never does.
   */
  readonly minReplicas?: number;
  /** Upper bound (required). */
  readonly maxReplicas: number;
  readonly metric: {
    readonly source: MetricSource;
    /** The target value (per replica for `AverageValue`). */
    readonly target: number;
    /** Default `AverageValue`: the metric (a queue's depth) is shared by the replicas. */
    readonly targetType?: TargetType;
  };
  /** No change while the usage ratio is within this of 1. Default 0.1. */
  readonly tolerance?: number;
  /** Time between evaluations (ms). Default 15 000, the HPA's sync period (KEDA polls every 30 s). */
  readonly pollingIntervalMs?: number;
  /** Stabilization windows, in the HPA's `behavior` shape. Defaults: up 0 s, down 300 s. */
  readonly behavior?: {
    readonly scaleUp?: { readonly stabilizationWindowSeconds?: number };
    readonly scaleDown?: { readonly stabilizationWindowSeconds?: number };
  };
}

/** Options of {@link Autoscaler} besides its spec. */
export interface AutoscalerOptions {
  kube: KubeClient;
  /** Default: the system clock. Tests pass a `ManualClock`. */
  clock?: Clock;
  /** Where the `capstan_autoscaler_*` series go (a service's registry). */
  metrics?: MetricsRegistry;
  logger?: Logger;
}

/** One HPA-style condition. */
export interface AutoscalerCondition {
  readonly type: 'AbleToScale' | 'ScalingActive' | 'ScalingLimited';
  readonly status: 'True' | 'False';
  readonly reason: string;
  readonly message: string;
  /** When `status` last changed (ISO time). */
  readonly lastTransitionTime: string;
}

/** The outcome of one evaluation. */
export interface ScalingDecision {
  /** When it was made (ms since the epoch, by the autoscaler's clock). */
  readonly at: number;
  /**
   * `scaled`: the scale was written. `unchanged`: the formula kept the count. `held`: something could not be
   * read or written (source, scale), so nothing changed and the last decision stands.
   */
  readonly action: 'scaled' | 'unchanged' | 'held';
  /** `spec.replicas` read (undefined when the scale could not be read). */
  readonly currentReplicas: number | undefined;
  /** The count the autoscaler wants: the new one, or the last decision's when held. */
  readonly desiredReplicas: number | undefined;
  /** The metric read (undefined when the source failed). */
  readonly metric: number | undefined;
  /** The formula's proposal before stabilization and bounds. */
  readonly proposal: number | undefined;
  /** Why, in the words of the condition that explains it. */
  readonly reason: string;
  readonly message: string;
}

/** An autoscaler's state as `/status` and `capstan autoscale --once` show it. */
export interface AutoscalerStatus {
  readonly name: string;
  readonly target: string;
  readonly source: string;
  readonly currentReplicas: number | undefined;
  readonly desiredReplicas: number | undefined;
  readonly lastMetric: number | undefined;
  /** ISO time of the last write of the scale. */
  readonly lastScaleTime: string | undefined;
  readonly conditions: readonly AutoscalerCondition[];
  readonly lastDecision: ScalingDecision | undefined;
}

/** The series every autoscaler of one registry shares (one `scaler` label each). */
interface AutoscalerSeries {
  current: Gauge<'scaler'>;
  desired: Gauge<'scaler'>;
  metric: Gauge<'scaler'>;
  sourceUp: Gauge<'scaler'>;
  sourceErrors: Counter<'scaler'>;
  scaleErrors: Counter<'scaler'>;
  scaled: Counter<'scaler' | 'direction'>;
}

const seriesOf = new WeakMap<MetricsRegistry, AutoscalerSeries>();

function seriesFor(registry: MetricsRegistry): AutoscalerSeries {
  let series = seriesOf.get(registry);
  if (series) return series;
  const registers = [registry];
  series = {
    current: new Gauge({
      name: 'capstan_autoscaler_current_replicas',
      help: 'Replicas of the scale target (spec.replicas) at the last evaluation.',
      labelNames: ['scaler'],
      registers,
    }),
    desired: new Gauge({
      name: 'capstan_autoscaler_desired_replicas',
      help: 'Replicas the autoscaler wants (held at the last decision while its source fails).',
      labelNames: ['scaler'],
      registers,
    }),
    metric: new Gauge({
      name: 'capstan_autoscaler_metric_value',
      help: 'The last value read from the metric source.',
      labelNames: ['scaler'],
      registers,
    }),
    sourceUp: new Gauge({
      name: 'capstan_autoscaler_source_up',
      help: '1 when the last read of the metric source worked, else 0.',
      labelNames: ['scaler'],
      registers,
    }),
    sourceErrors: new Counter({
      name: 'capstan_autoscaler_source_errors_total',
      help: 'Failed reads of the metric source (each one held the last decision).',
      labelNames: ['scaler'],
      registers,
    }),
    scaleErrors: new Counter({
      name: 'capstan_autoscaler_scale_errors_total',
      help: 'Failed reads or writes of the scale subresource.',
      labelNames: ['scaler'],
      registers,
    }),
    scaled: new Counter({
      name: 'capstan_autoscaler_scale_changes_total',
      help: 'Writes of a new replica count, by direction.',
      labelNames: ['scaler', 'direction'],
      registers,
    }),
  };
  seriesOf.set(registry, series);
  return series;
}

const NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

function isWholeNumber(n: unknown, min = 0): n is number {
  return typeof n === 'number' && Number.isInteger(n) && n >= min && n <= 2_147_483_647;
}

/** Every problem of `spec`, as `field: what is wrong`; empty when it can run. */
export function autoscalerSpecProblems(spec: AutoscalerSpec): string[] {
  const problems: string[] = [];
  if (typeof spec.name !== 'string' || !NAME.test(spec.name)) {
    problems.push(`name: a lower-case DNS-style name is required, got ${JSON.stringify(spec.name)}`);
  }
  const ref = spec.scaleTargetRef;
  if (typeof ref === 'string') {
    if (!/^[^/\s]+\/[^/\s]+$/.test(ref))
      problems.push(`scaleTargetRef: not a <kind>/<name>: ${JSON.stringify(ref)}`);
  } else if (!ref?.kind || !ref.name) {
    problems.push('scaleTargetRef: a kind and a name are required');
  }
  const min = spec.minReplicas ?? 1;
  if (!isWholeNumber(min)) problems.push(`minReplicas: a whole number ≥ 0, got ${JSON.stringify(min)}`);
  if (!isWholeNumber(spec.maxReplicas, 1)) {
    problems.push(`maxReplicas: a whole number ≥ 1 is required, got ${JSON.stringify(spec.maxReplicas)}`);
  } else if (isWholeNumber(min) && min > spec.maxReplicas) {
    problems.push(`minReplicas (${min}) is above maxReplicas (${spec.maxReplicas})`);
  }
  const metric = spec.metric;
  if (!metric || typeof metric.source?.read !== 'function')
    problems.push('metric.source: a metric source is required');
  if (!(typeof metric?.target === 'number' && Number.isFinite(metric.target) && metric.target > 0)) {
    problems.push(`metric.target: a number > 0 is required, got ${JSON.stringify(metric?.target)}`);
  }
  const type = metric?.targetType ?? 'AverageValue';
  if (type !== 'AverageValue' && type !== 'Value') {
    problems.push(`metric.targetType: AverageValue or Value, got ${JSON.stringify(type)}`);
  }
  const tolerance = spec.tolerance ?? DEFAULT_TOLERANCE;
  if (!(typeof tolerance === 'number' && tolerance >= 0 && tolerance < 1)) {
    problems.push(`tolerance: a number from 0 to below 1, got ${JSON.stringify(tolerance)}`);
  }
  const interval = spec.pollingIntervalMs ?? DEFAULT_POLLING_INTERVAL_MS;
  if (!(typeof interval === 'number' && interval >= 10 && interval <= 2 ** 31 - 1)) {
    problems.push(`pollingInterval: from 10 ms to 24 days, got ${JSON.stringify(interval)} ms`);
  }
  for (const direction of ['scaleUp', 'scaleDown'] as const) {
    const w = spec.behavior?.[direction]?.stabilizationWindowSeconds;
    if (w !== undefined && !(typeof w === 'number' && w >= 0 && w <= 3600)) {
      problems.push(
        `behavior.${direction}.stabilizationWindowSeconds: from 0 to 3600 (the HPA's bounds), got ${JSON.stringify(w)}`,
      );
    }
  }
  return problems;
}

/** Wait `ms` on `clock`, or until `signal` aborts (then resolve early: the caller checks the signal). */
function clockSleep(clock: Clock, ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const onAbort = () => {
      clock.clearTimeout(timer);
      resolve();
    };
    const timer = clock.setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * One autoscaler ({@link AutoscalerSpec}). {@link evaluate} runs one evaluation (tests call it directly);
 * {@link run} evaluates every polling interval until its signal aborts.
 *
 * Failure behaviour: when the source cannot be read, or the scale cannot be read, nothing is written; the
 * last decision stands, `ScalingActive` (source) or `AbleToScale` (scale) turns False with the reason, and
 * `capstan_autoscaler_source_errors_total` / `_scale_errors_total` count it. A target at 0 replicas with
 * `minReplicas` ≥ 1 was scaled to zero by someone on purpose: like the HPA, the autoscaler leaves it there
 * (`ScalingDisabled`) until it is scaled up by hand.
 */
export class Autoscaler {
  readonly spec: AutoscalerSpec;
  readonly #kube: KubeClient;
  readonly #clock: Clock;
  readonly #series: AutoscalerSeries | undefined;
  readonly #logger: Logger | undefined;
  readonly #stabilizer: Stabilizer;
  readonly #min: number;
  readonly #intervalMs: number;
  #target: ScaleTarget | undefined;
  #conditions = new Map<AutoscalerCondition['type'], AutoscalerCondition>();
  #last: ScalingDecision | undefined;
  #lastDesired: number | undefined;
  #lastScaleTime: number | undefined;
  #lastMetric: number | undefined;
  #lastCurrent: number | undefined;

  constructor(spec: AutoscalerSpec, options: AutoscalerOptions) {
    const problems = autoscalerSpecProblems(spec);
    if (problems.length > 0) {
      throw new ScalingError(
        ScalingErrorCode.config,
        `autoscaler ${String(spec.name)}: ${problems.length} problem(s):\n  ${problems.join('\n  ')}`,
        { problems },
      );
    }
    this.spec = spec;
    this.#kube = options.kube;
    this.#clock = options.clock ?? systemClock;
    this.#series = options.metrics ? seriesFor(options.metrics) : undefined;
    this.#logger = options.logger?.child({ scaler: spec.name });
    this.#min = spec.minReplicas ?? 1;
    this.#intervalMs = spec.pollingIntervalMs ?? DEFAULT_POLLING_INTERVAL_MS;
    this.#stabilizer = new Stabilizer({
      scaleUpMs:
        (spec.behavior?.scaleUp?.stabilizationWindowSeconds ?? DEFAULT_SCALE_UP_WINDOW_SECONDS) * 1000,
      scaleDownMs:
        (spec.behavior?.scaleDown?.stabilizationWindowSeconds ?? DEFAULT_SCALE_DOWN_WINDOW_SECONDS) * 1000,
    });
  }

  get name(): string {
    return this.spec.name;
  }

  /** The time between evaluations (ms). */
  get pollingIntervalMs(): number {
    return this.#intervalMs;
  }

  #setCondition(
    type: AutoscalerCondition['type'],
    status: 'True' | 'False',
    reason: string,
    message: string,
  ): void {
    const previous = this.#conditions.get(type);
    const lastTransitionTime =
      previous && previous.status === status
        ? previous.lastTransitionTime
        : new Date(this.#clock.now()).toISOString();
    this.#conditions.set(type, { type, status, reason, message, lastTransitionTime });
  }

  #targetText(): string {
    const ref = this.spec.scaleTargetRef;
    return this.#target?.toString() ?? (typeof ref === 'string' ? ref : `${ref.kind}/${ref.name}`);
  }

  #decide(decision: Omit<ScalingDecision, 'at'>, at: number): ScalingDecision {
    const d: ScalingDecision = { at, ...decision };
    this.#last = d;
    if (d.desiredReplicas !== undefined) this.#lastDesired = d.desiredReplicas;
    const name = this.spec.name;
    if (this.#series) {
      if (d.currentReplicas !== undefined) this.#series.current.set({ scaler: name }, d.currentReplicas);
      if (this.#lastDesired !== undefined) this.#series.desired.set({ scaler: name }, this.#lastDesired);
    }
    return d;
  }

  /** One evaluation: read, decide, write if the count changes. Never throws but for `signal`'s abort. */
  async evaluate(options: { signal?: AbortSignal } = {}): Promise<ScalingDecision> {
    const { signal } = options;
    const at = this.#clock.now();
    const call = signal ? { signal } : {};
    const series = this.#series;
    const scaler = this.spec.name;

    // 1. The target and its scale. Resolution is retried each time until it works (a CRD installed later).
    let current: number;
    try {
      this.#target ??= await scaleTarget(this.#kube, this.spec.scaleTargetRef, {
        ...call,
        ...(this.spec.namespace ? { namespace: this.spec.namespace } : {}),
      });
      current = (await this.#target.read(call)).specReplicas;
    } catch (err) {
      if (signal?.aborted) throw err;
      if (err instanceof ScalingError && err.code !== ScalingErrorCode.notFound) this.#target = undefined;
      series?.scaleErrors.inc({ scaler });
      const message = `cannot read the scale of ${this.#targetText()}: ${messageOf(err)}`;
      if (this.#conditions.get('AbleToScale')?.reason !== 'FailedGetScale')
        this.#logger?.warn({ err }, message);
      else this.#logger?.debug({ err }, message);
      this.#setCondition('AbleToScale', 'False', 'FailedGetScale', message);
      return this.#decide(
        {
          action: 'held',
          currentReplicas: undefined,
          desiredReplicas: this.#lastDesired,
          metric: undefined,
          proposal: undefined,
          reason: 'FailedGetScale',
          message,
        },
        at,
      );
    }
    this.#lastCurrent = current;

    // 2. The metric. A failure holds: no write, the last decision stands.
    let metric: number;
    try {
      metric = await this.spec.metric.source.read(call);
    } catch (err) {
      if (signal?.aborted) throw err;
      series?.sourceErrors.inc({ scaler });
      series?.sourceUp.set({ scaler }, 0);
      const cause =
        err instanceof ScalingError
          ? err.message
          : `${this.spec.metric.source.description}: ${messageOf(err)}`;
      const message = `cannot read the metric (${cause}); holding ${this.#targetText()} at ${current} replicas`;
      // Logged when the source goes down, not on every poll while it stays down.
      if (this.#conditions.get('ScalingActive')?.reason !== 'FailedGetExternalMetric')
        this.#logger?.warn({ err }, message);
      else this.#logger?.debug({ err }, message);
      this.#setCondition('ScalingActive', 'False', 'FailedGetExternalMetric', message);
      return this.#decide(
        {
          action: 'held',
          currentReplicas: current,
          desiredReplicas: this.#lastDesired ?? current,
          metric: undefined,
          proposal: undefined,
          reason: 'FailedGetExternalMetric',
          message,
        },
        at,
      );
    }
    this.#lastMetric = metric;
    if (this.#conditions.get('ScalingActive')?.reason === 'FailedGetExternalMetric') {
      this.#logger?.info({ metric }, `the metric source is back: ${this.spec.metric.source.description}`);
    }
    series?.sourceUp.set({ scaler }, 1);
    series?.metric.set({ scaler }, metric);

    if (current === 0 && this.#min > 0) {
      const message = `${this.#targetText()} is at 0 replicas and minReplicas is ${this.#min}: scaled to zero by hand, left there`;
      this.#setCondition('ScalingActive', 'False', 'ScalingDisabled', message);
      return this.#decide(
        {
          action: 'unchanged',
          currentReplicas: 0,
          desiredReplicas: 0,
          metric,
          proposal: undefined,
          reason: 'ScalingDisabled',
          message,
        },
        at,
      );
    }
    this.#setCondition(
      'ScalingActive',
      'True',
      'ValidMetricFound',
      `the autoscaler read ${metric} from ${this.spec.metric.source.description}`,
    );

    // 3. The formula, the bounds, the windows.
    const max = this.spec.maxReplicas;
    const proposal = proposeReplicas({
      current,
      metric,
      target: this.spec.metric.target,
      targetType: this.spec.metric.targetType ?? 'AverageValue',
      tolerance: this.spec.tolerance ?? DEFAULT_TOLERANCE,
    });
    const bounded = clampReplicas(proposal, this.#min, max);
    if (proposal > max) {
      this.#setCondition(
        'ScalingLimited',
        'True',
        'TooManyReplicas',
        `the desired count ${proposal} is above maxReplicas ${max}`,
      );
    } else if (proposal < this.#min) {
      this.#setCondition(
        'ScalingLimited',
        'True',
        'TooFewReplicas',
        `the desired count ${proposal} is below minReplicas ${this.#min}`,
      );
    } else {
      this.#setCondition(
        'ScalingLimited',
        'False',
        'DesiredWithinRange',
        'the desired count is within the acceptable range',
      );
    }
    const stabilized = this.#stabilizer.stabilize(bounded, current, at);
    const desired = clampReplicas(stabilized.replicas, this.#min, max);
    const reason: NonNullable<StabilizationReason> | 'ReadyForNewScale' =
      stabilized.reason ?? 'ReadyForNewScale';

    if (desired === current) {
      const message =
        reason === 'ScaleDownStabilized'
          ? 'recent recommendations were higher than the current one, applying the highest recent recommendation'
          : reason === 'ScaleUpStabilized'
            ? 'recent recommendations were lower than the current one, applying the lowest recent recommendation'
            : 'recommended size matches current size';
      this.#setCondition('AbleToScale', 'True', reason, message);
      return this.#decide(
        {
          action: 'unchanged',
          currentReplicas: current,
          desiredReplicas: desired,
          metric,
          proposal,
          reason,
          message,
        },
        at,
      );
    }

    // 4. The write.
    try {
      await this.#target.set(desired, call);
    } catch (err) {
      if (signal?.aborted) throw err;
      series?.scaleErrors.inc({ scaler });
      const message = `cannot scale ${this.#targetText()} to ${desired}: ${messageOf(err)}`;
      this.#setCondition('AbleToScale', 'False', 'FailedUpdateScale', message);
      this.#logger?.warn({ err }, message);
      return this.#decide(
        {
          action: 'held',
          currentReplicas: current,
          desiredReplicas: desired,
          metric,
          proposal,
          reason: 'FailedUpdateScale',
          message,
        },
        at,
      );
    }
    this.#lastScaleTime = at;
    this.#lastCurrent = desired;
    series?.scaled.inc({ scaler, direction: desired > current ? 'up' : 'down' });
    const message = `scaled ${this.#targetText()} from ${current} to ${desired}: ${this.spec.metric.source.description} = ${metric}, target ${this.spec.metric.target}`;
    this.#setCondition('AbleToScale', 'True', 'SucceededRescale', message);
    this.#logger?.info({ current, desired, metric, proposal }, message);
    const decision = this.#decide(
      {
        action: 'scaled',
        currentReplicas: current,
        desiredReplicas: desired,
        metric,
        proposal,
        reason: 'SucceededRescale',
        message,
      },
      at,
    );
    series?.current.set({ scaler }, desired);
    return decision;
  }

  /**
   * Evaluate now and then every polling interval until `signal` aborts; resolves then (an abort is how it
   * stops, not an error). Evaluations never overlap; a slow one delays the next.
   */
  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      const started = this.#clock.now();
      try {
        await this.evaluate({ signal });
      } catch (err) {
        if (signal.aborted) return;
        // evaluate() reports its own failures; this is a bug, not a source or apiserver failure.
        this.#logger?.error({ err }, 'evaluation failed');
      }
      await clockSleep(this.#clock, Math.max(0, this.#intervalMs - (this.#clock.now() - started)), signal);
    }
  }

  /** What the autoscaler knows now. */
  status(): AutoscalerStatus {
    return {
      name: this.spec.name,
      target: this.#targetText(),
      source: this.spec.metric.source.description,
      currentReplicas: this.#lastCurrent,
      desiredReplicas: this.#lastDesired,
      lastMetric: this.#lastMetric,
      lastScaleTime:
        this.#lastScaleTime === undefined ? undefined : new Date(this.#lastScaleTime).toISOString(),
      conditions: [...this.#conditions.values()],
      lastDecision: this.#last,
    };
  }

  /** Release the source's connections. */
  async close(): Promise<void> {
    await this.spec.metric.source.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
