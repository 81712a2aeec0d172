// Custom resources for the scaling tests: one with a scale subresource, one without.
import { z } from 'zod';
import { customResource } from '../../kube/index.ts';

/** A Capstan CRD with `subresources.scale`, as an operator's worker pool would declare it. */
export const WorkerPool = customResource('WorkerPool')
  .inGroup('scaling-test.capstan.dev')
  .withShortNames('wpool')
  .version('v1', {
    spec: z.object({ replicas: z.int32().min(0).max(50).default(1), image: z.string().max(100) }),
    status: z.object({ replicas: z.int32().optional(), selector: z.string().optional() }),
    scale: {
      specReplicasPath: '.spec.replicas',
      statusReplicasPath: '.status.replicas',
      labelSelectorPath: '.status.selector',
    },
  })
  .storedAs('v1');

/** A CRD without a scale subresource: scaling it must fail clearly. */
export const Gadget = customResource('Gadget')
  .inGroup('scaling-test.capstan.dev')
  .version('v1', { spec: z.object({ size: z.int32().optional() }) })
  .storedAs('v1');
