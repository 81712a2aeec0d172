// The program an operator's Deployment runs: one runtime service (health, metrics, logs, graceful shutdown)
// around a Manager. Its environment variables, port and shutdown timings are the contract `operatorManifests`
// writes the Deployment against, so the two live side by side and change together.
import {
  createLogger,
  createService,
  defineConfig,
  env,
  type Logger,
  listenFields,
  loadConfig,
  logConfig,
  type Service,
} from '../runtime/index.ts';
import { KubeClient } from './client.ts';
import { KubeError, KubeErrorCode } from './errors.ts';
import { Manager } from './manager.ts';
import type { Operator } from './operator.ts';
import { leaseNameOf } from './rbac.ts';

/** The variables the operator program reads (the Deployment sets them). */
export const operatorConfig = defineConfig({
  name: 'operator',
  fields: {
    ...listenFields,
    leaderElection: env
      .bool()
      .default(false)
      .env('LEADER_ELECTION')
      .describe('Elect a leader through a Lease so several replicas can run (only the leader reconciles)'),
    podNamespace: env
      .string()
      .optional()
      .env('POD_NAMESPACE')
      .describe("The Lease's namespace (the pod's own, from the downward API); default the operator's"),
    podName: env
      .string()
      .optional()
      .env('POD_NAME')
      .describe('Leader identity (unique per pod); default host name and a random suffix'),
  },
});

/**
 * How the operator stops, in the order things happen after the kubelet decides to stop the pod. The
 * Deployment's preStop hook and `terminationGracePeriodSeconds` are derived from these numbers.
 */
export const operatorShutdown = {
  /** The preStop sleep: the pod leaves the Service endpoints (metrics scrapes) before SIGTERM. */
  preStopSeconds: 5,
  /** The Lifecycle's own drain delay: 0, because the preStop sleep already waited. */
  drainDelayMs: 0,
  /** In-flight HTTP requests (probes, a scrape) after the listener closes. */
  drainTimeoutMs: 5_000,
  /** Reconciles in progress get this long to finish before they are aborted. */
  reconcileDrainMs: 20_000,
  /** The manager job: the reconcile drain, then releasing the Lease so a standby takes over at once. */
  jobTimeoutMs: 25_000,
  /** Each shutdown hook (metrics, health, log flush). */
  hookTimeoutMs: 5_000,
  /** Shutdown hooks the service registers. */
  hooks: 3,
} as const;

/** Seconds the kubelet must allow between the start of preStop and SIGKILL, with some slack. */
export function terminationGraceSeconds(): number {
  const s = operatorShutdown;
  const afterSigterm = s.drainDelayMs + s.drainTimeoutMs + s.jobTimeoutMs + s.hooks * s.hookTimeoutMs;
  return Math.ceil((s.preStopSeconds * 1000 + afterSigterm) / 10_000) * 10;
}

/** Options of {@link runOperator}. */
export interface RunOperatorOptions {
  /** The environment to read ({@link operatorConfig}, `LOG_LEVEL`, `LOG_FORMAT`). Default `process.env`. */
  env?: Record<string, string | undefined>;
  /** Default: `KubeClient.fromDefault()` (in-cluster service account, else `KUBECONFIG`, else `~/.kube/config`). */
  client?: KubeClient;
  logger?: Logger;
  /**
   * Stop on SIGTERM/SIGINT and exit; and exit 1 when the manager stops on its own (lost lease, a watch
   * refused for good) so the Deployment restarts the pod. Default true; tests pass false and call `stop()`.
   */
  handleSignals?: boolean;
}

/** A running operator program. */
export interface RunningOperator {
  readonly service: Service;
  readonly manager: Manager;
  /** `http://host:port` of `/livez`, `/readyz` and `/metrics`. */
  readonly url: string;
  /** Settles when the manager stops: resolves on shutdown, rejects with its error when it failed on its own. */
  readonly done: Promise<void>;
  /** Drain and stop (reconciles finish, the Lease is released). */
  stop(): Promise<void>;
}

/**
 * Run `operator`'s controllers in a runtime service: `/livez`, `/readyz` (ready once every cache is synced,
 * or as a standby), `/metrics` (controller-runtime's names) on `PORT` (8080); a Manager with leader
 * election when `LEADER_ELECTION=true`, on the Lease named after the operator in `POD_NAMESPACE`; SIGTERM
 * drains per {@link operatorShutdown}. A bad environment throws `ConfigError` listing every problem.
 */
export async function runOperator(
  operator: Operator,
  options: RunOperatorOptions = {},
): Promise<RunningOperator> {
  const envVars = options.env ?? process.env;
  const config = loadConfig(operatorConfig, envVars);
  const { name } = operator.definition;
  const logger = options.logger ?? createLogger({ name, ...loadConfig(logConfig, envVars) });
  const client = options.client ?? (await KubeClient.fromDefault());
  const s = operatorShutdown;
  const service = createService({
    name,
    port: config.port,
    ...(config.host !== undefined ? { host: config.host } : {}),
    logger,
    lifecycle: {
      drainDelayMs: s.drainDelayMs,
      drainTimeoutMs: s.drainTimeoutMs,
      jobTimeoutMs: s.jobTimeoutMs,
      hookTimeoutMs: s.hookTimeoutMs,
    },
  });
  const manager = new Manager({
    client,
    metrics: service.metrics,
    logger,
    controllers: { drainTimeoutMs: s.reconcileDrainMs },
    ...(config.leaderElection
      ? {
          leaderElection: {
            name: leaseNameOf(operator),
            namespace: config.podNamespace ?? operator.definition.namespace,
            ...(config.podName !== undefined ? { identity: config.podName } : {}),
          },
        }
      : {}),
  });
  for (const definition of operator.definition.controllers) manager.add(definition);
  manager.attach({ health: service.health });
  const handleSignals = options.handleSignals ?? true;
  let settle!: { resolve: () => void; reject: (err: unknown) => void };
  const done = new Promise<void>((resolve, reject) => {
    settle = { resolve, reject };
  });
  done.catch(() => {});
  service.lifecycle.addJob('kube-manager', async (signal) => {
    try {
      await manager.run(signal);
      if (!signal.aborted) throw new KubeError(KubeErrorCode.usage, 'manager stopped on its own');
      settle.resolve();
    } catch (err) {
      settle.reject(err);
      if (signal.aborted) return;
      // A lost lease or a watch refused for good: controller-runtime exits and lets the Deployment restart it.
      logger.error({ err }, 'manager stopped; exiting');
      // Not awaited: the shutdown waits for this very job.
      if (handleSignals) void service.stop('manager stopped').finally(() => process.exit(1));
    }
  });
  const url = await service.start();
  if (handleSignals) service.handleSignals();
  return {
    service,
    manager,
    url,
    done,
    async stop() {
      await service.stop('stop');
      await done.catch(() => {});
    },
  };
}
