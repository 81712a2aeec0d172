import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Namespace, Pod, type ResourceType } from 'capstan/kube';
import { defineWebhook, exportedWebhooks, isWebhook, webhookPath } from './definition.ts';
import { WebhookErrorCode } from './errors.ts';

const usage = (err: { code?: string }) => err.code === WebhookErrorCode.usage;

test('the chain records plain bindings; paths are per kind and type, like controller-runtime', () => {
  const webhook = defineWebhook({ name: 'pod-policy' });
  const deny = webhook
    .when(Pod)
    .isCreatedOrUpdated()
    .inNamespace('apps', 'web')
    .withLabel('team')
    .validate((req) => req.allow());
  webhook
    .when(Pod)
    .isCreated()
    .withLabel('inject', 'true')
    .mutate((req) => {
      req.object.metadata ??= {};
    });
  webhook
    .when(Pod)
    .isConnected('exec')
    .validate((req) => req.deny('no exec'));
  webhook
    .when(Namespace)
    .isDeleted()
    .validate((req) => (req.oldObject?.metadata?.name === 'keep' ? req.deny('kept') : req.allow()));

  assert.equal(webhook.bindings.length, 4);
  assert.deepEqual(
    { ...deny, handler: typeof deny.handler },
    {
      type: 'validating',
      resource: Pod,
      operations: ['CREATE', 'UPDATE'],
      subresource: undefined,
      namespaces: ['apps', 'web'],
      labels: { team: undefined },
      handler: 'function',
    },
  );
  assert.ok(Object.isFrozen(deny));
  const sets = webhook.handlerSets();
  assert.deepEqual(
    sets.map((s) => [s.path, s.type, s.webhookName, s.bindings.length]),
    [
      ['/validate--v1-pod', 'validating', 'validate-core-v1-pod.pod-policy.capstan.dev', 2],
      ['/mutate--v1-pod', 'mutating', 'mutate-core-v1-pod.pod-policy.capstan.dev', 1],
      ['/validate--v1-namespace', 'validating', 'validate-core-v1-namespace.pod-policy.capstan.dev', 1],
    ],
  );
  assert.equal(
    webhookPath('mutating', { group: 'apps.example.com', version: 'v1beta1', kind: 'Widget' }),
    '/mutate-apps-example-com-v1beta1-widget',
  );
});

test('defaults are the apiserver-friendly ones; every bad option is listed at once', () => {
  const webhook = defineWebhook({ name: 'x' });
  assert.deepEqual(webhook.options, {
    name: 'x',
    domain: 'capstan.dev',
    failurePolicy: 'Fail',
    timeoutSeconds: 10,
    deadlineMarginMs: 1000,
    sideEffects: 'None',
    matchPolicy: 'Equivalent',
    reinvocationPolicy: 'Never',
  });
  assert.throws(
    () =>
      defineWebhook({
        name: 'Bad_Name',
        domain: 'nodot',
        timeoutSeconds: 31,
        failurePolicy: 'Sometimes' as 'Fail',
        sideEffects: 'Some' as 'None',
      }),
    (err: { code?: string; problems?: string[] }) => usage(err) && err.problems?.length === 5,
  );
  assert.throws(() => defineWebhook({ name: 'x', timeoutSeconds: 2, deadlineMarginMs: 2000 }), usage);
});

test('misuse fails at definition time with a usage error', () => {
  const webhook = defineWebhook({ name: 'x' });
  assert.throws(() => webhook.when({} as ResourceType), usage);
  assert.throws(() => webhook.when(Pod).isCreated().inNamespace(), usage);
  assert.throws(() => webhook.when(Pod).isCreated().inNamespace('Not_A_Namespace'), usage);
  assert.throws(() => webhook.when(Namespace).isCreated().inNamespace('default'), usage, 'cluster-scoped');
  assert.throws(() => webhook.when(Pod).isCreated().withLabel('bad key!'), usage);
  assert.throws(() => webhook.when(Pod).isConnected(''), usage);
  assert.throws(
    () =>
      webhook
        .when(Pod)
        .isCreated()
        .validate(undefined as never),
    usage,
  );
  // The types forbid it; a JavaScript caller is stopped at run time.
  const deleted = webhook.when(Pod).isDeleted() as unknown as { mutate(fn: () => void): void };
  assert.throws(() => deleted.mutate(() => {}), usage);
  assert.equal(webhook.bindings.length, 0);
});

test('the types follow the operation: DELETE has no mutate, CREATE has no oldObject', () => {
  const webhook = defineWebhook({ name: 'types' });
  webhook
    .when(Pod)
    .isUpdated()
    .validate((req) => {
      // Both objects are typed Pods on UPDATE.
      const before: string | undefined = req.oldObject.spec?.nodeName;
      const after: string | undefined = req.object.spec?.nodeName;
      return before === after ? req.allow() : req.deny('nodeName is immutable');
    });
  webhook
    .when(Pod)
    .isCreated()
    .validate((req) => {
      const old: undefined = req.oldObject;
      return old === undefined ? req.allow() : req.deny('impossible');
    });
  const deleted = webhook.when(Pod).isDeleted();
  // @ts-expect-error: a DELETE cannot be mutated.
  const noMutate = () => deleted.mutate(() => {});
  assert.equal(typeof noMutate, 'function');
});

test('exportedWebhooks finds the webhooks of a module by brand, sorted by export name', () => {
  const a = defineWebhook({ name: 'a' });
  const b = defineWebhook({ name: 'b' });
  assert.ok(isWebhook(a));
  assert.ok(!isWebhook({ options: {} }));
  assert.deepEqual(
    exportedWebhooks({ zeta: a, alpha: b, other: 1, nothing: null }).map(([name]) => name),
    ['alpha', 'zeta'],
  );
});
