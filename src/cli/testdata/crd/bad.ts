// Two custom resources that cannot become CRDs, with problems in both: the CLI must list all of them.
import { defineCustomResource } from 'capstan/kube';
import { z } from 'zod';

export const Broken = defineCustomResource({
  group: 'ops.capstan.dev',
  kind: 'Broken',
  versions: {
    v1: {
      spec: z.object({ when: z.date(), choice: z.union([z.string(), z.object({ a: z.string() })]) }),
      printerColumns: [{ name: 'Size', type: 'integer', jsonPath: '.spec.size' }],
    },
  },
  storage: 'v1',
});

export const AlsoBroken = defineCustomResource({
  group: 'nodot',
  kind: 'AlsoBroken',
  versions: { v1: { spec: z.object({ anything: z.unknown() }) } },
  storage: 'v1',
});
