// Leader election on a coordination.k8s.io/v1 Lease, with client-go's rules: a lease counts as held while
// its record keeps changing, measured on the local clock (never by comparing clocks across machines); every
// write carries the resourceVersion read, so two candidates cannot both win; a leader that cannot renew
// within the renew deadline steps down before the lease can expire for the others.
import { hostname } from 'node:os';
import { type Logger, linkedController } from '../runtime/index.ts';
import { Lease } from './builtin.ts';
import type { KubeClient } from './client.ts';
import type { Clock } from './clock.ts';
import { systemClock } from './clock.ts';
import { KubeError, KubeErrorCode } from './errors.ts';

/** Options of a {@link LeaderElector}. */
export interface LeaderElectionOptions {
  client: KubeClient;
  /** The Lease's name: one per controller set (e.g. `website-operator`). */
  name: string;
  /** The Lease's namespace (the operator's own). */
  namespace: string;
  /** This replica's identity, unique among candidates. Default `<hostname>_<random>`. */
  identity?: string;
  /** How long others wait after the last renewal they saw before taking over (ms). Default 15 000. */
  leaseDurationMs?: number;
  /** How long the leader keeps trying to renew before it steps down (ms, < lease duration). Default 10 000. */
  renewDeadlineMs?: number;
  /** Pause between attempts to acquire or renew (ms). Default 2 000. */
  retryPeriodMs?: number;
  /** Give the lease up on a clean stop so another replica takes over at once. Default true. */
  releaseOnCancel?: boolean;
  logger?: Logger;
  clock?: Clock;
}

interface Observed {
  holder: string;
  renewTime: string;
  /** Local clock time when this record was first seen. */
  at: number;
}

/** RFC 3339 with microseconds (`MicroTime`), what Lease times take. */
function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/Z$/, '000Z');
}

/** The lease is lost: leading work must stop. */
function leaseLost(message: string, cause?: unknown): KubeError {
  return new KubeError(KubeErrorCode.leaseLost, message, { cause });
}

/**
 * One candidate for leadership. {@link run} campaigns until it holds the Lease, then runs `lead` with a
 * signal that aborts (reason: a `CAP_ERR_KUBE_LEASE_LOST` error) when renewal fails past the renew deadline.
 */
export class LeaderElector {
  /** This candidate's identity (the Lease's `holderIdentity` while it leads). */
  readonly identity: string;
  readonly #client: KubeClient;
  readonly #name: string;
  readonly #namespace: string;
  readonly #durationMs: number;
  readonly #renewDeadlineMs: number;
  readonly #retryMs: number;
  readonly #release: boolean;
  readonly #logger: Logger | undefined;
  readonly #clock: Clock;
  #observed: Observed | undefined;
  #leading = false;

  constructor(options: LeaderElectionOptions) {
    this.#client = options.client;
    this.#name = options.name;
    this.#namespace = options.namespace;
    this.identity = options.identity ?? `${hostname()}_${crypto.randomUUID()}`;
    this.#durationMs = options.leaseDurationMs ?? 15_000;
    this.#renewDeadlineMs = options.renewDeadlineMs ?? 10_000;
    this.#retryMs = options.retryPeriodMs ?? 2_000;
    this.#release = options.releaseOnCancel ?? true;
    this.#logger = options.logger;
    this.#clock = options.clock ?? systemClock;
    if (
      !(
        this.#durationMs > this.#renewDeadlineMs &&
        this.#renewDeadlineMs > this.#retryMs &&
        this.#retryMs > 0
      )
    ) {
      throw new KubeError(
        KubeErrorCode.usage,
        `leader election wants leaseDuration > renewDeadline > retryPeriod > 0, got ${this.#durationMs} > ${this.#renewDeadlineMs} > ${this.#retryMs}`,
      );
    }
  }

  /** True while this candidate holds the lease. */
  get isLeader(): boolean {
    return this.#leading;
  }

  /**
   * Campaign, then lead: `lead` runs with a signal aborted when the lease is lost or `signal` aborts. When
   * `lead` settles, the lease is released (unless lost). Resolves after a clean stop; rejects with
   * `CAP_ERR_KUBE_LEASE_LOST` when the lease was lost (the process should exit or campaign again), or with
   * `lead`'s own error.
   */
  async run(signal: AbortSignal | undefined, lead: (signal: AbortSignal) => Promise<void>): Promise<void> {
    while (!signal?.aborted) {
      if (await this.#tryAcquireOrRenew(signal)) break;
      await this.#sleep(this.#retryMs * (1 + Math.random() * 0.2), signal);
    }
    if (signal?.aborted) return;
    this.#leading = true;
    this.#logger?.info({ lease: this.#name, identity: this.identity }, 'became leader');
    const leading = linkedController(signal);
    const renewing = this.#renewLoop(leading);
    let lost: unknown;
    try {
      await lead(leading.signal);
    } finally {
      lost = leading.signal.aborted && isLost(leading.signal.reason) ? leading.signal.reason : undefined;
      leading.abort();
      await renewing;
      this.#leading = false;
      if (lost === undefined && this.#release) await this.#releaseLease();
    }
    if (lost !== undefined) throw lost;
  }

  async #renewLoop(leading: AbortController): Promise<void> {
    let lastRenew = this.#clock.now();
    while (!leading.signal.aborted) {
      await this.#sleep(this.#retryMs, leading.signal);
      if (leading.signal.aborted) return;
      let renewed = false;
      let error: unknown;
      try {
        renewed = await this.#tryAcquireOrRenew(
          AbortSignal.any([leading.signal, AbortSignal.timeout(this.#retryMs)]),
        );
      } catch (err) {
        error = err;
      }
      if (leading.signal.aborted) return;
      if (renewed) {
        lastRenew = this.#clock.now();
        continue;
      }
      const since = this.#clock.now() - lastRenew;
      // Another holder took it: stop now. A failed write: keep trying until the renew deadline.
      const taken = this.#observed !== undefined && this.#observed.holder !== this.identity;
      if (taken || since >= this.#renewDeadlineMs) {
        const why = taken
          ? `lease ${this.#namespace}/${this.#name} taken by ${this.#observed?.holder}`
          : `lease ${this.#namespace}/${this.#name} not renewed for ${since} ms`;
        this.#logger?.warn({ lease: this.#name, identity: this.identity, err: error }, why);
        leading.abort(leaseLost(why, error));
        return;
      }
    }
  }

  #lease() {
    return this.#client.resource(Lease, this.#namespace);
  }

  /** One attempt: true when this candidate holds the lease afterwards. Errors count as false. */
  async #tryAcquireOrRenew(signal: AbortSignal | undefined): Promise<boolean> {
    const now = this.#clock.now();
    const leases = this.#lease();
    const durationSeconds = Math.ceil(this.#durationMs / 1000);
    try {
      const lease = await leases.getOptional(this.#name, signal ? { signal } : {});
      if (!lease) {
        const created = await leases.create(
          {
            metadata: { name: this.#name, namespace: this.#namespace },
            spec: {
              holderIdentity: this.identity,
              leaseDurationSeconds: durationSeconds,
              acquireTime: microTime(now),
              renewTime: microTime(now),
              leaseTransitions: 0,
            },
          },
          signal ? { signal } : {},
        );
        this.#observe(created, now);
        return true;
      }
      this.#observe(lease, now);
      const spec = lease.spec ?? {};
      const holder = spec.holderIdentity ?? '';
      const observed = this.#observed!;
      const heldByOther = holder !== '' && holder !== this.identity;
      if (heldByOther && observed.at + (spec.leaseDurationSeconds ?? durationSeconds) * 1000 > now)
        return false;
      const updated = await leases.replace(
        {
          ...lease,
          spec: {
            ...spec,
            holderIdentity: this.identity,
            leaseDurationSeconds: durationSeconds,
            acquireTime: holder === this.identity ? spec.acquireTime : microTime(now),
            renewTime: microTime(now),
            leaseTransitions: (spec.leaseTransitions ?? 0) + (holder === this.identity ? 0 : 1),
          },
        },
        signal ? { signal } : {},
      );
      this.#observe(updated, now);
      return true;
    } catch (err) {
      // A conflict is another candidate's write winning; anything else is retried the same way. RBAC refusing
      // the Lease is a warning on every try (client-go logs an error): quiet, it looked like a healthy standby.
      if (err instanceof KubeError && err.code === KubeErrorCode.forbidden) {
        this.#logger?.warn({ err, lease: this.#name }, 'lease attempt forbidden');
      } else if (!(err instanceof KubeError) || err.code !== KubeErrorCode.conflict) {
        this.#logger?.debug({ err, lease: this.#name }, 'lease attempt failed');
      }
      return false;
    }
  }

  #observe(lease: Lease, now: number): void {
    const holder = lease.spec?.holderIdentity ?? '';
    const renewTime = String(lease.spec?.renewTime ?? '');
    if (this.#observed?.holder === holder && this.#observed.renewTime === renewTime) return;
    this.#observed = { holder, renewTime, at: now };
  }

  /** Hand the lease over: no holder, and a 1 s duration so waiting candidates take it at their next try. */
  async #releaseLease(): Promise<void> {
    try {
      const leases = this.#lease();
      const lease = await leases.getOptional(this.#name, { timeoutMs: 5_000 });
      if (!lease || lease.spec?.holderIdentity !== this.identity) return;
      const now = microTime(this.#clock.now());
      await leases.replace(
        { ...lease, spec: { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1, renewTime: now } },
        { timeoutMs: 5_000 },
      );
      this.#logger?.info({ lease: this.#name, identity: this.identity }, 'released leader lease');
    } catch (err) {
      this.#logger?.warn({ err, lease: this.#name }, 'lease not released; others wait for it to expire');
    }
  }

  #sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
    return new Promise((resolve) => {
      if (signal?.aborted) {
        resolve();
        return;
      }
      const done = () => {
        this.#clock.clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const timer = this.#clock.setTimeout(done, ms);
      signal?.addEventListener('abort', done, { once: true });
    });
  }
}

function isLost(reason: unknown): boolean {
  return reason instanceof KubeError && reason.code === KubeErrorCode.leaseLost;
}
