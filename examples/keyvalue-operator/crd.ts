// The `KeyValueStore` custom resource: a Redis that the operator in ./operator.ts runs, upgrades, backs up,
// repairs and scales. Defined once with zod; the CRD (structural schema, CEL rules, status and scale
// subresources, printer columns) is derived from it.
//
//   capstan crd generate examples/keyvalue-operator/crd.ts -o config/crd
//   node examples/keyvalue-operator/crd.ts | kubectl apply -f -
import { crdYaml, customResource, statusConditions, withRules } from 'capstan/kube';
import { z } from 'zod';

/** Where backups go: exactly one of a PersistentVolumeClaim (a real cluster) or a folder of the node. */
export const BackupSpec = withRules(
  z.object({
    schedule: z.string().min(9).max(64).describe('Cron schedule of the backup CronJob, e.g. "0 3 * * *"'),
    claimName: z.string().max(253).optional().describe('PersistentVolumeClaim the .rdb files are written to'),
    hostPath: z
      .string()
      .regex(/^\/[^\0]*$/)
      .max(4096)
      .optional()
      .describe('A folder of the node instead of a claim (single-node and test clusters)'),
    onDelete: z.boolean().default(true).describe('Take a last backup before the store is deleted'),
  }),
  { rule: 'has(self.claimName) != has(self.hostPath)', message: 'set exactly one of claimName and hostPath' },
);

/** What a user asks for. */
export const KeyValueStoreSpec = z.object({
  image: z
    .string()
    .regex(/^[a-z0-9][a-z0-9./:@_-]*$/)
    .max(253)
    .describe(
      'Redis image; changing it rolls the pods one at a time. It must hold redis-server, redis-cli and sh',
    ),
  replicas: z
    .int32()
    .min(0)
    .max(10)
    .default(1)
    .describe('Redis pods behind the Service (independent caches: no replication between them)'),
  maxMemory: z
    .string()
    .regex(/^[0-9]+(kb|mb|gb)$/)
    .default('64mb')
    .describe('redis.conf maxmemory'),
  evictionPolicy: z
    .enum(['noeviction', 'allkeys-lru', 'allkeys-lfu', 'volatile-lru', 'volatile-ttl'])
    .default('allkeys-lru')
    .describe('redis.conf maxmemory-policy'),
  backup: BackupSpec.optional(),
});

/** The last backup Job that succeeded. */
export const LastBackup = z.object({
  job: z.string().max(253),
  completionTime: z.iso.datetime(),
});

/** What the operator reports. */
export const KeyValueStoreStatus = z.object({
  observedGeneration: z.int().optional().describe('The generation this status describes'),
  replicas: z.int32().optional().describe('Redis pods that exist (the scale subresource reads it)'),
  readyReplicas: z.int32().optional(),
  updatedReplicas: z.int32().optional().describe('Pods already running spec.image (and the current config)'),
  selector: z.string().optional().describe('Label selector of the Redis pods, for the scale subresource'),
  image: z.string().optional().describe('The image every pod runs once a rollout completed'),
  service: z.string().optional().describe('host:port of the Service'),
  lastBackup: LastBackup.optional(),
  conditions: statusConditions().optional().describe('Available, Progressing, Degraded'),
});

/** The custom resource: `kubectl get kvs`, `kubectl scale kvs/cache --replicas=3`. */
export const KeyValueStore = customResource('KeyValueStore')
  .inGroup('keyvalue.example.capstan.dev')
  .withShortNames('kvs')
  .inCategories('all')
  .version('v1', {
    spec: KeyValueStoreSpec,
    status: KeyValueStoreStatus,
    scale: {
      specReplicasPath: '.spec.replicas',
      statusReplicasPath: '.status.replicas',
      labelSelectorPath: '.status.selector',
    },
    printerColumns: [
      { name: 'Image', type: 'string', jsonPath: '.spec.image' },
      { name: 'Replicas', type: 'integer', jsonPath: '.spec.replicas' },
      { name: 'Ready', type: 'integer', jsonPath: '.status.readyReplicas' },
      { name: 'Available', type: 'string', jsonPath: '.status.conditions[?(@.type=="Available")].status' },
      { name: 'Last backup', type: 'date', jsonPath: '.status.lastBackup.completionTime' },
      { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
    ],
  })
  .storedAs('v1');

/** A KeyValueStore as the apiserver returns it (defaults applied). */
export type KeyValueStoreObject = NonNullable<(typeof KeyValueStore)['__object']>;

if (import.meta.main) process.stdout.write(crdYaml(KeyValueStore));
