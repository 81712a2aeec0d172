// An operator module as `capstan kube rbac` and `capstan kube manifests` read it: a custom resource and the
// operator definition (export `operator`), plus an export that is neither (the CLI must skip it).
import { Action, ConfigMap, controller, customResource, defineOperator, Secret } from 'capstan/kube';
import { z } from 'zod';

export const Gizmo = customResource('Gizmo')
  .inGroup('cli.capstan.dev')
  .version('v1', {
    spec: z.object({ size: z.int32().min(1).max(9) }),
    status: z.object({ ready: z.boolean().optional() }),
  })
  .storedAs('v1');

export const notAnOperator = { name: 'x' };

export const operator = defineOperator({
  name: 'gizmo-operator',
  resources: [Gizmo],
  controllers: [
    controller(Gizmo)
      .owns(ConfigMap)
      .build(async () => Action.awaitChange()),
  ],
  rules: [{ apiGroups: [''], resources: ['secrets'], verbs: ['get'], namespace: 'gizmo-operator-system' }],
});

/** Referenced so the import is used; reconcilers reading Secrets would declare the rule above. */
export const secretKind = Secret.kind;
