// A custom resource defined once in TypeScript: the `Website` an operator would run as nginx pods.
//
//   capstan crd generate examples/crd-website.ts -o config/crd   # one YAML per CRD
//   node examples/crd-website.ts | kubectl apply -f -            # or print it and apply it
//
// The zod schemas are the single source: `Website` carries the object type for a typed client
// (`WebsiteObject` below), and the CRD's structural OpenAPI schema, with enum, minimum, pattern, defaults and
// CEL rules, is derived from the same schemas, so the apiserver enforces what the types say.
import {
  crdYaml,
  customResource,
  intOrString,
  listMap,
  listSet,
  statusConditions,
  withRules,
} from 'capstan/kube';
import { z } from 'zod';

const Port = z.object({
  name: z
    .string()
    .regex(/^[a-z][a-z0-9-]*$/)
    .max(15)
    .describe('Port name, unique in the list'),
  port: z.int32().min(1).max(65535),
  protocol: z.enum(['TCP', 'UDP']).default('TCP'),
});

/** What a user asks for. */
export const WebsiteSpec = withRules(
  z.object({
    image: z
      .string()
      .regex(/^[a-z0-9][a-z0-9./:@_-]*$/)
      .max(253)
      .describe('Container image serving the site, e.g. nginx:1.27'),
    replicas: z.int32().min(1).max(20).default(1).describe('How many pods serve the site'),
    tier: z
      .enum(['static', 'dynamic'])
      .default('static')
      .describe('static: files only; dynamic: an app behind'),
    domains: listSet(z.array(z.string().max(253)).max(16))
      .optional()
      .describe('Host names the site answers'),
    ports: listMap(z.array(Port).max(8), 'name').optional(),
    maxUnavailable: intOrString().optional().describe('Pods down at once during an upgrade: 1 or "25%"'),
    backup: z
      .object({
        schedule: z.string().max(64).describe('Cron schedule, e.g. "0 3 * * *"'),
        keep: z.int32().min(1).max(30).default(7),
      })
      .optional(),
  }),
  // Checked by the apiserver on every write: no client can get around it.
  {
    rule: "self.tier == 'dynamic' || self.replicas <= 5",
    message: 'a static website runs at most 5 replicas',
  },
);

/** What the operator reports. */
export const WebsiteStatus = z.object({
  replicas: z.int32().optional().describe('Pods that exist'),
  readyReplicas: z.int32().optional(),
  selector: z.string().optional().describe('Label selector of the pods, for the scale subresource'),
  url: z.string().optional(),
  lastBackup: z.iso.datetime().optional(),
  conditions: statusConditions().optional().describe('Ready, Progressing, BackedUp...'),
});

/**
 * The custom resource, read like a sentence. `v1alpha1` is still served (deprecated, with a warning) so
 * old manifests keep working; `v1` is what etcd stores.
 */
export const Website = customResource('Website')
  .inGroup('example.capstan.dev')
  .withShortNames('web', 'webs')
  .inCategories('all')
  .version('v1alpha1', {
    spec: z.object({ image: z.string(), replicas: z.int32().min(1).default(1) }),
    deprecated: 'example.capstan.dev/v1alpha1 Website is deprecated; use v1',
  })
  .version('v1', {
    spec: WebsiteSpec,
    status: WebsiteStatus,
    scale: {
      specReplicasPath: '.spec.replicas',
      statusReplicasPath: '.status.replicas',
      labelSelectorPath: '.status.selector',
    },
    printerColumns: [
      { name: 'Image', type: 'string', jsonPath: '.spec.image' },
      { name: 'Replicas', type: 'integer', jsonPath: '.spec.replicas' },
      { name: 'Ready', type: 'integer', jsonPath: '.status.readyReplicas' },
      { name: 'Tier', type: 'string', jsonPath: '.spec.tier', priority: 1 },
      { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
    ],
  })
  .storedAs('v1');

/** A Website object as the apiserver returns it (defaults applied), inferred from the schemas. */
export type WebsiteObject = NonNullable<(typeof Website)['__object']>;

// Run directly, the example prints its CRD (the same YAML `capstan crd generate` writes).
if (import.meta.main) process.stdout.write(crdYaml(Website));
