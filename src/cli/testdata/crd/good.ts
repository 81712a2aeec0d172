// Two custom resources and an export that is not one (the CLI must skip it).
import { customResource, defineCustomResource } from 'capstan/kube';
import { z } from 'zod';

export const Backup = defineCustomResource({
  group: 'ops.capstan.dev',
  kind: 'Backup',
  scope: 'Cluster',
  versions: { v1: { spec: z.object({ schedule: z.string(), keep: z.int32().min(1).default(7) }) } },
  storage: 'v1',
});

export const Cache = customResource('Cache')
  .inGroup('ops.capstan.dev')
  .version('v1', { spec: z.object({ size: z.enum(['small', 'large']) }), status: z.object({ ready: z.boolean() }) })
  .storedAs('v1');

export const notAResource = { group: 'ops.capstan.dev', kind: 'Nope' };
