// The Manager (controller-runtime's): runs a set of controllers, only while this replica leads when leader
// election is on, reports readiness through the runtime's Health and stops through its Lifecycle.
import type { Health, Lifecycle, Logger, MetricsRegistry } from '../runtime/index.ts';
import type { KubeClient } from './client.ts';
import type { Clock } from './clock.ts';
import { Controller, type ControllerDefinition, type ControllerOptions } from './controller.ts';
import { KubeError, KubeErrorCode } from './errors.ts';
import { type LeaderElectionOptions, LeaderElector } from './leader-election.ts';

/** Options of a {@link Manager}. */
export interface ManagerOptions {
  client: KubeClient;
  metrics?: MetricsRegistry;
  logger?: Logger;
  /** Lease-based leader election (controllers run only on the leader); off when unset. */
  leaderElection?: Omit<LeaderElectionOptions, 'client' | 'logger' | 'clock'>;
  /** Shared by the controllers: drain timeout, watch tuning, notices. */
  controllers?: Omit<ControllerOptions, 'client' | 'metrics' | 'logger' | 'clock'>;
  clock?: Clock;
}

/**
 * Runs controllers. With `leaderElection`, it campaigns for the Lease and starts the controllers only once it
 * leads; a lost lease stops them at once (reconciles in progress are aborted) and {@link run} rejects with
 * `CAP_ERR_KUBE_LEASE_LOST`: exit and let the Deployment restart the pod, as controller-runtime does.
 *
 * ```ts
 * const manager = new Manager({ client, metrics: registry, leaderElection: { name: 'web-operator', namespace } });
 * manager.add(controller(Website).owns(Deployment).build(reconcile));
 * manager.attach({ health, lifecycle }); // readiness once caches synced; drained on shutdown
 * ```
 */
export class Manager {
  readonly #options: ManagerOptions;
  readonly #definitions: Array<ControllerDefinition<unknown>> = [];
  readonly #elector: LeaderElector | undefined;
  #controllers: Array<Controller<unknown>> = [];
  #running = false;
  /** Why run() ended on its own (lost lease, failed watch); undefined while fine or after a clean stop. */
  #stoppedWith: unknown;

  constructor(options: ManagerOptions) {
    this.#options = options;
    if (options.leaderElection) {
      this.#elector = new LeaderElector({
        ...options.leaderElection,
        client: options.client,
        ...(options.logger ? { logger: options.logger } : {}),
        ...(options.clock ? { clock: options.clock } : {}),
      });
    }
  }

  /** Add a controller (before {@link run}). */
  add<T>(definition: ControllerDefinition<T>): this {
    if (this.#running) throw new KubeError(KubeErrorCode.usage, 'manager: add controllers before run()');
    if (this.#definitions.some((d) => d.spec.name === definition.spec.name)) {
      throw new KubeError(KubeErrorCode.usage, `manager: two controllers named ${definition.spec.name}`);
    }
    this.#definitions.push(definition as ControllerDefinition<unknown>);
    return this;
  }

  /** This replica's leader identity, when leader election is on. */
  get identity(): string | undefined {
    return this.#elector?.identity;
  }

  /** True while this replica leads (always, without leader election, once running). */
  get isLeader(): boolean {
    return this.#elector ? this.#elector.isLeader : this.#running;
  }

  /** The controllers of the current leadership term (empty while not leading). */
  get controllers(): ReadonlyArray<Controller<unknown>> {
    return this.#controllers;
  }

  /**
   * Ready when every controller's caches hold their first list, or when this replica is a standby (it is
   * healthy, only not leading).
   */
  get ready(): boolean {
    if (!this.#running) return false;
    if (this.#elector && !this.#elector.isLeader) return true;
    return this.#controllers.length === this.#definitions.length && this.#controllers.every((c) => c.synced);
  }

  /**
   * Run until `signal` aborts (then drain and release the lease) or the lease is lost (reject with
   * `CAP_ERR_KUBE_LEASE_LOST`), or a controller fails for good (reject with its error; the others stop).
   */
  async run(signal?: AbortSignal): Promise<void> {
    if (this.#running) throw new KubeError(KubeErrorCode.usage, 'manager: already running');
    if (this.#definitions.length === 0) throw new KubeError(KubeErrorCode.usage, 'manager: no controllers');
    this.#running = true;
    this.#stoppedWith = undefined;
    try {
      if (this.#elector) await this.#elector.run(signal, (leading) => this.#runControllers(leading));
      else await this.#runControllers(signal);
    } catch (err) {
      this.#stoppedWith = err;
      throw err;
    } finally {
      this.#running = false;
    }
  }

  async #runControllers(signal: AbortSignal | undefined): Promise<void> {
    const { client, metrics, logger, clock } = this.#options;
    const stop = new AbortController();
    const linked = signal ? AbortSignal.any([signal, stop.signal]) : stop.signal;
    this.#controllers = this.#definitions.map(
      (d) =>
        new Controller(d, {
          ...this.#options.controllers,
          client,
          ...(metrics ? { metrics } : {}),
          ...(logger ? { logger } : {}),
          ...(clock ? { clock } : {}),
        }),
    );
    let failure: unknown;
    try {
      await Promise.all(
        this.#controllers.map((c) =>
          c.run(linked).catch((err: unknown) => {
            failure ??= err;
            stop.abort(err);
          }),
        ),
      );
    } finally {
      this.#controllers = [];
    }
    if (failure !== undefined) throw failure;
  }

  /**
   * Wire into a service: on `health`, a readiness check `kube-controllers` ({@link ready}) and a liveness
   * check `kube-manager` that fails once the manager stopped on its own (lost lease, failed watch), so the
   * kubelet restarts the container as controller-runtime's exit would; on `lifecycle`, a job that runs the
   * manager until shutdown (which drains reconciles and releases the lease).
   */
  attach(services: { health?: Health; lifecycle?: Lifecycle }): void {
    services.health?.register({
      name: 'kube-controllers',
      intervalMs: 1_000,
      check: async () => {
        if (!this.ready) throw new KubeError(KubeErrorCode.api, 'controller caches not synced yet');
        return { detail: this.isLeader ? 'leading, caches synced' : 'standby' };
      },
    });
    services.health?.register({
      name: 'kube-manager',
      kind: 'liveness',
      intervalMs: 1_000,
      check: async () => {
        if (this.#stoppedWith !== undefined) {
          throw new KubeError(
            this.#stoppedWith instanceof KubeError ? this.#stoppedWith.code : KubeErrorCode.api,
            `the controller manager stopped: ${(this.#stoppedWith as Error)?.message ?? String(this.#stoppedWith)}`,
            { cause: this.#stoppedWith },
          );
        }
      },
    });
    services.lifecycle?.addJob('kube-manager', (signal) => this.run(signal));
  }
}
