// An operator for `KeyValueStore` (./crd.ts): Redis on Kubernetes, the whole Level-5 path of an operator.
//
//   install   a ConfigMap (redis.conf), a Service and a Deployment, owned by the store, by server-side apply
//   upgrade   a new spec.image rolls out one pod at a time (maxSurge 1, maxUnavailable 0); status and the
//             Progressing condition report how far it got
//   backup    a CronJob runs `redis-cli --rdb` against the Service; the last Job that succeeded is recorded
//             in status.lastBackup; on delete a finalizer takes a last backup before the store goes
//   recovery  a deleted child is applied again (its watch wakes the store); a killed pod is replaced by the
//             Deployment, and status shows it (Available, Degraded)
//   scaling   `kubectl scale kvs/cache --replicas=3` (the CRD's scale subresource) → the Deployment
//
// Run it against the cluster of your kubeconfig (or in a pod, with its ServiceAccount):
//
//   node examples/keyvalue-operator/crd.ts | kubectl apply -f -
//   PORT=8080 node examples/keyvalue-operator/operator.ts      # or in the cluster:
//   capstan kube manifests examples/keyvalue-operator/operator.ts | kubectl apply -f -
//   kubectl apply -f - <<< '{"apiVersion":"keyvalue.example.capstan.dev/v1","kind":"KeyValueStore",
//     "metadata":{"name":"cache"},"spec":{"image":"redis:7.0"}}'
import { createHash } from 'node:crypto';
import {
  Action,
  type Condition,
  ConfigMap,
  CronJob,
  controller,
  Deployment,
  defineOperator,
  findCondition,
  Job,
  Pod,
  type ReconcileContext,
  type ReconcileRequest,
  runOperator,
  Service,
  setCondition,
} from 'capstan/kube';
import { KeyValueStore, type KeyValueStoreObject } from './crd.ts';

/** The finalizer that takes a last backup before a store is deleted. */
export const FINALIZER = 'keyvalue.example.capstan.dev/final-backup';
/** Label on every object made for a store (pods and Jobs included), naming the store. */
export const STORE_LABEL = 'keyvalue.example.capstan.dev/store';
/** Annotation on the pod template: a hash of redis.conf, so a config change rolls the pods too. */
export const CONFIG_HASH = 'keyvalue.example.capstan.dev/config-hash';
const COMPONENT = 'app.kubernetes.io/component';
const REDIS_PORT = 6379;

/** Container waiting reasons that will not fix themselves: the store is Degraded while a pod shows one. */
const STUCK = new Set([
  'CrashLoopBackOff',
  'ErrImagePull',
  'ImagePullBackOff',
  'ErrImageNeverPull',
  'InvalidImageName',
  'CreateContainerConfigError',
  'CreateContainerError',
]);

type Store = KeyValueStoreObject;

function nameOf(store: Store): string {
  return store.metadata?.name ?? '';
}

/** Labels of the Redis pods, and the Deployment's and Service's selector. */
export function serverLabels(store: Store): Record<string, string> {
  return { [STORE_LABEL]: nameOf(store), [COMPONENT]: 'server' };
}

function commonLabels(store: Store, component: string): Record<string, string> {
  return {
    'app.kubernetes.io/name': 'redis',
    'app.kubernetes.io/instance': nameOf(store),
    'app.kubernetes.io/managed-by': 'keyvalue-operator',
    [STORE_LABEL]: nameOf(store),
    [COMPONENT]: component,
  };
}

/** redis.conf for a store: persistence off (backups are the CronJob's), memory bound and eviction. */
export function redisConf(store: Store): string {
  return [
    `port ${REDIS_PORT}`,
    'bind 0.0.0.0',
    'protected-mode no',
    'dir /data',
    'save ""',
    'appendonly no',
    `maxmemory ${store.spec.maxMemory}`,
    `maxmemory-policy ${store.spec.evictionPolicy}`,
    '',
  ].join('\n');
}

/** The ConfigMap holding redis.conf. */
export function configMapFor(store: Store): ConfigMap {
  return {
    metadata: { name: nameOf(store), labels: commonLabels(store, 'server') },
    data: { 'redis.conf': redisConf(store) },
  };
}

/** The Service in front of the Redis pods. */
export function serviceFor(store: Store): Service {
  return {
    metadata: { name: nameOf(store), labels: commonLabels(store, 'server') },
    spec: {
      selector: serverLabels(store),
      ports: [{ name: 'redis', port: REDIS_PORT, targetPort: 'redis', protocol: 'TCP' }],
    },
  };
}

/**
 * The Deployment: a rolling update that never has fewer ready pods than asked for (maxUnavailable 0) and at
 * most one more (maxSurge 1), so an upgrade replaces pods one by one; a readiness probe on the Redis port
 * decides when the next may go.
 */
export function deploymentFor(store: Store, configHash: string): Deployment {
  const labels = serverLabels(store);
  return {
    metadata: { name: nameOf(store), labels: commonLabels(store, 'server') },
    spec: {
      replicas: store.spec.replicas,
      selector: { matchLabels: labels },
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
      minReadySeconds: 1,
      progressDeadlineSeconds: 120,
      template: {
        metadata: { labels: commonLabels(store, 'server'), annotations: { [CONFIG_HASH]: configHash } },
        spec: {
          terminationGracePeriodSeconds: 5,
          containers: [
            {
              name: 'redis',
              image: store.spec.image,
              command: ['/usr/bin/redis-server', '/etc/redis/redis.conf'],
              ports: [{ name: 'redis', containerPort: REDIS_PORT, protocol: 'TCP' }],
              readinessProbe: { tcpSocket: { port: 'redis' }, periodSeconds: 1, failureThreshold: 2 },
              livenessProbe: { tcpSocket: { port: 'redis' }, initialDelaySeconds: 5, periodSeconds: 10 },
              volumeMounts: [
                { name: 'config', mountPath: '/etc/redis', readOnly: true },
                { name: 'data', mountPath: '/data' },
              ],
            },
          ],
          volumes: [
            { name: 'config', configMap: { name: nameOf(store) } },
            { name: 'data', emptyDir: {} },
          ],
        },
      },
    },
  };
}

/**
 * The pod of a backup Job: `redis-cli --rdb` against the Service's ClusterIP (a replica's full sync, so it
 * works with persistence off), into a file named after the store and the time.
 */
export function backupJobSpec(store: Store, serviceHost: string): NonNullable<Job['spec']> {
  const backup = store.spec.backup;
  const volume = backup?.claimName
    ? { name: 'backup', persistentVolumeClaim: { claimName: backup.claimName } }
    : {
        name: 'backup',
        hostPath: { path: backup?.hostPath ?? '/var/backups/keyvalue', type: 'DirectoryOrCreate' },
      };
  return {
    backoffLimit: 2,
    ttlSecondsAfterFinished: 24 * 3600,
    template: {
      metadata: { labels: commonLabels(store, 'backup') },
      spec: {
        restartPolicy: 'Never',
        containers: [
          {
            name: 'backup',
            image: store.spec.image,
            command: [
              '/bin/sh',
              '-c',
              'set -e; f="/backup/$STORE-$(date -u +%Y%m%dT%H%M%SZ).rdb"; ' +
                '/usr/bin/redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" --rdb "$f"; ls -l "$f"',
            ],
            env: [
              { name: 'STORE', value: nameOf(store) },
              { name: 'REDIS_HOST', value: serviceHost },
              { name: 'REDIS_PORT', value: String(REDIS_PORT) },
            ],
            volumeMounts: [{ name: 'backup', mountPath: '/backup' }],
          },
        ],
        volumes: [volume],
      },
    },
  };
}

/** The backup CronJob (only with spec.backup). */
export function cronJobFor(store: Store, serviceHost: string): CronJob {
  return {
    metadata: { name: `${nameOf(store)}-backup`, labels: commonLabels(store, 'backup') },
    spec: {
      schedule: store.spec.backup?.schedule ?? '0 3 * * *',
      concurrencyPolicy: 'Forbid',
      successfulJobsHistoryLimit: 3,
      failedJobsHistoryLimit: 3,
      jobTemplate: {
        metadata: { labels: commonLabels(store, 'backup') },
        spec: backupJobSpec(store, serviceHost),
      },
    },
  };
}

/** Thrown by cleanup while the last backup runs: the error policy looks again shortly. */
class FinalBackupRunning extends Error {}

function jobFinished(job: Job): 'Complete' | 'Failed' | undefined {
  for (const c of job.status?.conditions ?? []) {
    if (c.status === 'True' && (c.type === 'Complete' || c.type === 'Failed')) return c.type;
  }
  return undefined;
}

/** What the Deployment and the pods say, as the store's status numbers and conditions. */
function rolloutState(store: Store, deployment: Deployment, pods: Pod[]) {
  const desired = store.spec.replicas;
  const s = deployment.status ?? {};
  const observed = (s.observedGeneration ?? 0) >= (deployment.metadata?.generation ?? 0);
  const updated = observed ? (s.updatedReplicas ?? 0) : 0;
  const available = s.availableReplicas ?? 0;
  const total = s.replicas ?? 0;
  const done = observed && updated === desired && total === desired && available === desired;
  const stuck: string[] = [];
  for (const pod of pods) {
    if (pod.metadata?.labels?.[COMPONENT] !== 'server' || pod.metadata?.deletionTimestamp) continue;
    for (const c of pod.status?.containerStatuses ?? []) {
      const reason = c.state?.waiting?.reason;
      if (reason && STUCK.has(reason)) stuck.push(`${pod.metadata?.name}: ${reason}`);
    }
  }
  const deadline = (s.conditions ?? []).find(
    (c) => c.type === 'Progressing' && c.status === 'False' && c.reason === 'ProgressDeadlineExceeded',
  );
  if (deadline) stuck.push(`rollout stalled: ${deadline.message ?? 'progress deadline exceeded'}`);
  return { desired, updated, available, total, ready: s.readyReplicas ?? 0, done, stuck };
}

/** Reconcile one store: children by server-side apply, then status from what they report. */
export async function reconcileKeyValueStore(
  request: ReconcileRequest,
  ctx: ReconcileContext<Store>,
): Promise<Action> {
  const store = ctx.get();
  if (!store) return Action.awaitChange(); // gone: the garbage collector removes what it owned
  return ctx.finalize(FINALIZER, (event) =>
    event.type === 'cleanup' ? finalBackup(event.object, ctx) : applyStore(request, event.object, ctx),
  );
}

async function applyStore(
  request: ReconcileRequest,
  store: Store,
  ctx: ReconcileContext<Store>,
): Promise<Action> {
  const name = request.name;
  const ns = request.namespace;
  const before = ctx.cache(Deployment).getObject(name, ns);
  const configMap = await ctx.apply(ConfigMap, configMapFor(store));
  const configHash = createHash('sha256')
    .update(configMap.data?.['redis.conf'] ?? '')
    .digest('hex')
    .slice(0, 16);
  const service = await ctx.apply(Service, serviceFor(store));
  const deployment = await ctx.apply(Deployment, deploymentFor(store, configHash));

  // Recreated: missing from the cache although the store was reconciled before, or deleted while this
  // reconcile ran (the cache still showed the old one, and the apply made a new one: another uid).
  const recreated = before
    ? before.metadata?.uid !== deployment.metadata?.uid
    : store.status?.observedGeneration !== undefined;
  if (recreated) {
    await ctx.event({
      type: 'Warning',
      reason: 'Recreated',
      action: 'Apply',
      note: `Deployment ${name} was missing`,
    });
  } else if (!before) {
    await ctx.event({
      reason: 'Created',
      action: 'Apply',
      note: `ConfigMap, Service and Deployment ${name}`,
    });
  }
  const oldImage = before?.spec?.template?.spec?.containers?.[0]?.image;
  if (oldImage && oldImage !== store.spec.image) {
    await ctx.event({ reason: 'Upgrading', action: 'Apply', note: `${oldImage} → ${store.spec.image}` });
  }

  const serviceHost = service.spec?.clusterIP ?? `${name}.${ns}.svc`;
  const cronJobs = ctx.cache(CronJob);
  if (store.spec.backup) {
    await ctx.apply(CronJob, cronJobFor(store, serviceHost));
  } else if (cronJobs.getObject(`${name}-backup`, ns)) {
    await ctx.client.resource(CronJob, ns).delete(`${name}-backup`, { signal: ctx.signal });
  }

  const mine = (o: { metadata?: { namespace?: string; labels?: Record<string, string> } }) =>
    o.metadata?.namespace === ns && o.metadata?.labels?.[STORE_LABEL] === name;
  const state = rolloutState(store, deployment, ctx.cache(Pod).list().filter(mine));
  const lastBackup = latestBackup(ctx.cache(Job).list().filter(mine));
  if (lastBackup && lastBackup.job !== store.status?.lastBackup?.job) {
    await ctx.event({ reason: 'BackupCompleted', action: 'Backup', note: `Job ${lastBackup.job}` });
  }

  const generation = store.metadata?.generation;
  const now = ctx.now();
  let conditions: Condition[] | undefined = store.status?.conditions;
  const wasProgressing = findCondition(conditions, 'Progressing')?.status === 'True';
  conditions = setCondition(
    conditions,
    state.done
      ? {
          type: 'Progressing',
          status: 'False',
          reason: 'RolloutComplete',
          message: `${state.desired} pods run ${store.spec.image}`,
        }
      : {
          type: 'Progressing',
          status: 'True',
          reason: 'RollingOut',
          message: `${state.updated}/${state.desired} pods updated, ${state.available} available, ${state.total} exist`,
        },
    now,
  );
  const available = state.desired > 0 && state.available >= state.desired;
  conditions = setCondition(
    conditions,
    {
      type: 'Available',
      status: available ? 'True' : 'False',
      reason: available ? 'AllReplicasAvailable' : state.desired === 0 ? 'ScaledToZero' : 'MissingReplicas',
      message: `${state.available}/${state.desired} pods available`,
    },
    now,
  );
  conditions = setCondition(
    conditions,
    state.stuck.length > 0
      ? {
          type: 'Degraded',
          status: 'True',
          reason: 'PodsFailing',
          message: state.stuck.join('; ').slice(0, 1000),
        }
      : { type: 'Degraded', status: 'False', reason: 'AsExpected', message: '' },
    now,
  );
  conditions = conditions.map((c) => ({ ...c, observedGeneration: generation }));
  if (wasProgressing && state.done) {
    await ctx.event({
      reason: 'RolloutComplete',
      action: 'Rollout',
      note: `${state.desired} pods run ${store.spec.image}`,
    });
  }
  await ctx.applyStatus({
    observedGeneration: generation,
    replicas: state.total,
    readyReplicas: state.ready,
    updatedReplicas: state.updated,
    selector: Object.entries(serverLabels(store))
      .map(([k, v]) => `${k}=${v}`)
      .join(','),
    ...(state.done ? { image: store.spec.image } : store.status?.image ? { image: store.status.image } : {}),
    service: `${serviceHost}:${REDIS_PORT}`,
    ...(lastBackup
      ? { lastBackup }
      : store.status?.lastBackup
        ? { lastBackup: store.status.lastBackup }
        : {}),
    conditions,
  });
  // The Deployment, its pods and the Jobs wake the store when they change; nothing outside the cluster to poll.
  return Action.awaitChange();
}

/** The newest Job of the store that completed. */
function latestBackup(jobs: Job[]): { job: string; completionTime: string } | undefined {
  let best: { job: string; completionTime: string } | undefined;
  for (const job of jobs) {
    const time = job.status?.completionTime;
    if (jobFinished(job) !== 'Complete' || !time) continue;
    if (!best || time > best.completionTime) best = { job: job.metadata?.name ?? '', completionTime: time };
  }
  return best;
}

/**
 * Cleanup under the finalizer: a last backup Job (not owned by the store, so it outlives it), then let the
 * store go. A backup that fails is reported and does not block the delete: a broken Redis must stay deletable.
 */
async function finalBackup(store: Store, ctx: ReconcileContext<Store>): Promise<Action> {
  if (!store.spec.backup?.onDelete) return Action.awaitChange();
  const ns = store.metadata?.namespace;
  const name = `${nameOf(store)}-final-${(store.metadata?.uid ?? '').slice(0, 8)}`;
  const job = ctx.cache(Job).getObject(name, ns);
  if (!job) {
    const service = ctx.cache(Service).getObject(nameOf(store), ns);
    await ctx.apply(
      Job,
      {
        metadata: { name, labels: commonLabels(store, 'backup') },
        spec: backupJobSpec(store, service?.spec?.clusterIP ?? `${nameOf(store)}.${ns}.svc`),
      },
      { owned: false },
    );
    await ctx.event({ reason: 'FinalBackup', action: 'Backup', note: `Job ${name} before deletion` });
    throw new FinalBackupRunning(name);
  }
  const finished = jobFinished(job);
  if (!finished) throw new FinalBackupRunning(name);
  await ctx.event(
    finished === 'Complete'
      ? { reason: 'FinalBackupCompleted', action: 'Backup', note: `Job ${name}` }
      : {
          type: 'Warning',
          reason: 'FinalBackupFailed',
          action: 'Backup',
          note: `Job ${name}; deleting anyway`,
        },
  );
  return Action.awaitChange();
}

/** The controller: the store, the children it owns, and its pods and Jobs found by label. */
export const keyValueStoreController = controller(KeyValueStore)
  .named('keyvalue-operator')
  .owns(ConfigMap)
  .owns(Service)
  .owns(Deployment)
  .owns(CronJob)
  // Jobs of the CronJob are owned by it, and the last backup by nobody; pods by a ReplicaSet: all carry the label.
  .watches(Job, (job) => storeOf(job))
  .watches(Pod, (pod) => storeOf(pod))
  .build(reconcileKeyValueStore, (error) =>
    error instanceof FinalBackupRunning ? Action.requeueAfter(2_000) : Action.backoff(),
  );

function storeOf(o: {
  metadata?: { namespace?: string; labels?: Record<string, string> };
}): ReconcileRequest[] {
  const store = o.metadata?.labels?.[STORE_LABEL];
  return store && o.metadata?.namespace ? [{ namespace: o.metadata.namespace, name: store }] : [];
}

/**
 * The operator, as `capstan kube manifests` and `capstan kube rbac` read it: the CRD, the controller, and
 * what the reconciler does beyond what the controller records (the runtime derives the rest of its RBAC).
 */
export const operator = defineOperator({
  name: 'keyvalue-operator',
  resources: [KeyValueStore],
  controllers: [keyValueStoreController],
  rules: [
    // The CronJob is deleted when spec.backup goes away.
    { apiGroups: ['batch'], resources: ['cronjobs'], verbs: ['delete'] },
    // The last backup is a Job the store does not own (applied with `owned: false`).
    { apiGroups: ['batch'], resources: ['jobs'], verbs: ['create', 'patch'] },
  ],
});

// `PORT`, `LEADER_ELECTION`, `POD_NAMESPACE`, `LOG_LEVEL`... (see runOperator): /readyz once every cache
// synced, /metrics, SIGTERM drains and releases the lease.
if (import.meta.main) await runOperator(operator);
