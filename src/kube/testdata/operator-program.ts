// An operator program as its Deployment runs it: `runOperator` reading the environment (KUBECONFIG for the
// client here; in a pod, the service account). OPERATOR_KIND=configmap watches ConfigMaps in $WATCH_NAMESPACE
// and stamps each; OPERATOR_KIND=missing watches a custom resource whose CRD is not installed.
import { Action, ConfigMap, controller, customResource, defineOperator, runOperator } from '../index.ts';
import { z } from 'zod';

const Missing = customResource('Missing')
  .inGroup('missing.capstan.dev')
  .version('v1', { spec: z.object({}) })
  .storedAs('v1');

const namespace = process.env['WATCH_NAMESPACE'] ?? 'default';
const operator = defineOperator({
  name: 'program-operator',
  namespace,
  controllers: [
    process.env['OPERATOR_KIND'] === 'missing'
      ? controller(Missing).build(async () => Action.awaitChange())
      : controller(ConfigMap)
          .inNamespace(namespace)
          .withLabelSelector({ stamp: 'yes' })
          .build(async (request, ctx) => {
            if (!ctx.get()) return Action.awaitChange();
            await ctx.resource.inNamespace(namespace).patch(request.name, { data: { stamped: 'yes' } });
            return Action.awaitChange();
          }),
  ],
});

const running = await runOperator(operator);
process.stdout.write(`listening ${running.url}\n`);
