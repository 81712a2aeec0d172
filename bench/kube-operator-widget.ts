// The custom resource of bench/kube-operator.bench.ts, shared by the driver (which installs its CRD and
// creates the objects) and the Capstan operator in bench/kube-operator-worker.ts. The Go peer
// (bench/peers/controller_runtime) declares the same kind by hand: keep the two in step.
import { z } from 'zod';
import { customResource, type ResourceType, statusConditions } from '../src/kube/index.ts';

/** bench.capstan.dev/v1 Widget: the operator makes ConfigMap `<name>-data` from the spec, then Ready=True. */
export const Widget = customResource('Widget')
  .inGroup('bench.capstan.dev')
  .version('v1', {
    spec: z.object({ size: z.int32().min(0), data: z.string() }),
    status: z.object({ conditions: statusConditions().optional() }),
  })
  .storedAs('v1');

/** The child's data for a widget's spec (both operators write exactly this). */
export function childData(spec: { size: number; data: string }): Record<string, string> {
  return { size: String(spec.size), data: spec.data };
}

/** A Widget as the apiserver returns it. */
export type WidgetObject = typeof Widget extends ResourceType<infer T> ? T : never;
