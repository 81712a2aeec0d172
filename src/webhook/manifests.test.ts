import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Deployment, Namespace, Pod } from 'capstan/kube';
import { defineWebhook } from './definition.ts';
import { WebhookErrorCode } from './errors.ts';
import { NAMESPACE_NAME_LABEL, webhookConfigurations } from './manifests.ts';

const CA = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';

function policy() {
  const webhook = defineWebhook({
    name: 'pod-policy',
    failurePolicy: 'Ignore',
    timeoutSeconds: 5,
    namespaceSelector: {
      matchExpressions: [{ key: NAMESPACE_NAME_LABEL, operator: 'NotIn', values: ['kube-system'] }],
    },
  });
  webhook
    .when(Pod)
    .isCreated()
    .validate((req) => req.allow());
  webhook
    .when(Pod)
    .isUpdated()
    .validate((req) => req.allow());
  webhook
    .when(Pod)
    .isConnected('exec')
    .validate((req) => req.allow());
  webhook
    .when(Pod)
    .isCreated()
    .inNamespace('apps')
    .withLabel('inject', 'true')
    .withLabel('team')
    .mutate(() => {});
  webhook
    .when(Deployment)
    .isCreated()
    .inNamespace('a')
    .validate((req) => req.allow());
  webhook
    .when(Deployment)
    .isUpdated()
    .inNamespace('b')
    .validate((req) => req.allow());
  webhook
    .when(Namespace)
    .isDeleted()
    .validate((req) => req.allow());
  return webhook;
}

test('a service clientConfig per path, rules from the bindings, selectors from the definition and shared filters', () => {
  const { validating, mutating } = webhookConfigurations(policy(), {
    service: { name: 'policy', namespace: 'capstan-system' },
    caBundle: CA,
    labels: { app: 'policy' },
  });
  assert.equal(validating?.kind, 'ValidatingWebhookConfiguration');
  assert.equal(validating?.apiVersion, 'admissionregistration.k8s.io/v1');
  assert.deepEqual(validating?.metadata, { name: 'pod-policy', labels: { app: 'policy' } });
  const [pods, deployments, namespaces] = validating!.webhooks!;
  const base = { key: NAMESPACE_NAME_LABEL, operator: 'NotIn', values: ['kube-system'] };
  assert.deepEqual(pods, {
    name: 'validate-core-v1-pod.pod-policy.capstan.dev',
    admissionReviewVersions: ['v1'],
    clientConfig: {
      service: { name: 'policy', namespace: 'capstan-system', path: '/validate--v1-pod', port: 443 },
      caBundle: Buffer.from(CA).toString('base64'),
    },
    rules: [
      {
        apiGroups: [''],
        apiVersions: ['v1'],
        operations: ['CREATE', 'UPDATE'],
        resources: ['pods'],
        scope: 'Namespaced',
      },
      {
        apiGroups: [''],
        apiVersions: ['v1'],
        operations: ['CONNECT'],
        resources: ['pods/exec'],
        scope: 'Namespaced',
      },
    ],
    failurePolicy: 'Ignore',
    matchPolicy: 'Equivalent',
    sideEffects: 'None',
    timeoutSeconds: 5,
    namespaceSelector: { matchExpressions: [base] },
  });
  // The two Deployment bindings filter different namespaces: no namespace filter in the selector (the server filters).
  assert.deepEqual(deployments?.namespaceSelector, { matchExpressions: [base] });
  assert.deepEqual(deployments?.rules, [
    {
      apiGroups: ['apps'],
      apiVersions: ['v1'],
      operations: ['CREATE', 'UPDATE'],
      resources: ['deployments'],
      scope: 'Namespaced',
    },
  ]);
  assert.equal(deployments?.clientConfig.service?.path, '/validate-apps-v1-deployment');
  assert.deepEqual(namespaces?.rules?.[0]?.scope, 'Cluster');
  assert.deepEqual(namespaces?.rules?.[0]?.operations, ['DELETE']);

  const [inject] = mutating!.webhooks!;
  assert.equal(inject?.reinvocationPolicy, 'Never');
  assert.deepEqual(inject?.namespaceSelector, {
    matchExpressions: [base, { key: NAMESPACE_NAME_LABEL, operator: 'In', values: ['apps'] }],
  });
  assert.deepEqual(inject?.objectSelector, {
    matchLabels: { inject: 'true' },
    matchExpressions: [{ key: 'team', operator: 'Exists' }],
  });
});

test('a url clientConfig appends each path; without a CA there is no caBundle; no mutations, no mutating configuration', () => {
  const webhook = defineWebhook({ name: 'only-validate' });
  webhook
    .when(Pod)
    .isCreated()
    .validate((req) => req.allow());
  const result = webhookConfigurations(webhook, { url: 'https://10.0.0.1:9443/' });
  assert.equal(result.mutating, undefined);
  assert.deepEqual(result.validating?.webhooks?.[0]?.clientConfig, {
    url: 'https://10.0.0.1:9443/validate--v1-pod',
  });
});

test('options that cannot work are refused, all at once', () => {
  const webhook = policy();
  const refused = (options: Parameters<typeof webhookConfigurations>[1], count: number) =>
    assert.throws(
      () => webhookConfigurations(webhook, options),
      (err: { code?: string; problems?: string[] }) =>
        err.code === WebhookErrorCode.usage && err.problems?.length === count,
      JSON.stringify(options),
    );
  refused({}, 1);
  refused({ url: 'https://x', service: { name: 'a', namespace: 'b' } }, 1);
  refused({ url: 'http://x:80' }, 1);
  refused({ url: 'https://x/?a=1' }, 1);
  refused({ url: 'not a url' }, 1);
  refused({ service: { name: '', namespace: '', port: 0 } }, 3);
  refused({ url: 'https://x', caBundle: 'not pem' }, 1);
  assert.throws(
    () => webhookConfigurations(defineWebhook({ name: 'empty' }), { url: 'https://x' }),
    (err: { code?: string }) => err.code === WebhookErrorCode.usage,
  );
});
