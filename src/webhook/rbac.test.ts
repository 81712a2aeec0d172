import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Pod } from '../kube/index.ts';
import type { WebhookConfiguration } from './ca-injection.ts';
import { defineWebhook } from './definition.ts';
import { webhookDeployManifests, webhookSecretName } from './deploy.ts';
import { webhookRbacManifests, webhookRules } from './rbac.ts';

const configurations = [
  {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'ValidatingWebhookConfiguration',
    metadata: { name: 'pod-policy' },
    webhooks: [],
  },
  {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    metadata: { name: 'pod-policy' },
    webhooks: [],
  },
] as unknown as WebhookConfiguration[];

test('rules: configurations by name (get, list, watch, patch), the Secret by name, nothing else', () => {
  const rules = webhookRules({
    configurations,
    certificates: { namespace: 'hooks', secret: 'pod-policy-webhook-tls', mode: 'issue' },
  });
  assert.deepEqual(rules.cluster, [
    {
      apiGroups: ['admissionregistration.k8s.io'],
      resources: ['mutatingwebhookconfigurations'],
      verbs: ['get', 'list', 'watch', 'patch'],
      resourceNames: ['pod-policy'],
    },
    {
      apiGroups: ['admissionregistration.k8s.io'],
      resources: ['validatingwebhookconfigurations'],
      verbs: ['get', 'list', 'watch', 'patch'],
      resourceNames: ['pod-policy'],
    },
  ]);
  assert.deepEqual(rules.namespaced, [
    {
      namespace: 'hooks',
      rules: [
        {
          apiGroups: [''],
          resources: ['secrets'],
          verbs: ['get', 'list', 'watch', 'update'],
          resourceNames: ['pod-policy-webhook-tls'],
        },
      ],
    },
  ]);
  // Every rule names its objects: no wildcard, no unnamed verb.
  for (const rule of [...rules.cluster, ...rules.namespaced.flatMap((n) => n.rules)]) {
    assert.ok(rule.resourceNames?.length, JSON.stringify(rule));
  }
});

test('rules: full apply adds an unnamed create; following cert-manager only reads; extra rules as written', () => {
  const rules = webhookRules({
    configurations: configurations.slice(0, 1),
    apply: 'full',
    certificates: { namespace: 'hooks', secret: 's', mode: 'follow' },
    rules: [
      {
        apiGroups: [''],
        resources: ['configmaps'],
        verbs: ['get'],
        resourceNames: ['policy'],
        namespace: 'hooks',
      },
    ],
  });
  assert.deepEqual(
    rules.cluster.map((r) => [r.resources[0], r.verbs.join(','), r.resourceNames?.join(',')]),
    [
      ['validatingwebhookconfigurations', 'get,list,watch,patch', 'pod-policy'],
      ['validatingwebhookconfigurations', 'create', undefined],
    ],
  );
  assert.deepEqual(
    rules.namespaced[0]?.rules.map((r) => `${r.resources[0]}:${r.verbs.join(',')}`),
    ['secrets:get,list,watch', 'configmaps:get'],
  );
  assert.throws(
    () => webhookRules({ configurations, certificates: { namespace: '', secret: 's', mode: 'issue' } }),
    {
      code: 'CAP_ERR_WEBHOOK_USAGE',
    },
  );
});

test('RBAC objects: ServiceAccount, ClusterRole and Role with their bindings to it', () => {
  const objects = webhookRbacManifests('pod-policy', 'hooks', {
    configurations,
    certificates: { namespace: 'hooks', secret: 's', mode: 'issue', createSecret: true },
  });
  assert.deepEqual(
    objects.map((o) => `${o.kind}/${o.metadata?.name}`),
    [
      'ServiceAccount/pod-policy',
      'ClusterRole/pod-policy-webhook',
      'ClusterRoleBinding/pod-policy-webhook',
      'Role/pod-policy',
      'RoleBinding/pod-policy',
    ],
  );
  const role = objects.find((o) => o.kind === 'Role') as {
    rules: Array<{ verbs: string[]; resourceNames?: string[] }>;
  };
  assert.deepEqual(role.rules.at(-1), { apiGroups: [''], resources: ['secrets'], verbs: ['create'] });
});

test('deploy manifests: order, the empty Secret, probes over HTTPS, the own namespace kept out of the configurations', () => {
  const webhook = defineWebhook({ name: 'pod-policy' });
  webhook
    .when(Pod)
    .isCreated()
    .validate((req) => req.allow());
  webhook
    .when(Pod)
    .isCreated()
    .mutate(() => undefined);
  const objects = webhookDeployManifests(webhook, { image: 'capstan.local/hook:1', namespace: 'hooks' });
  assert.deepEqual(
    objects.map((o) => o.kind),
    [
      'Namespace',
      'ServiceAccount',
      'ClusterRole',
      'ClusterRoleBinding',
      'Role',
      'RoleBinding',
      'Secret',
      'Service',
      'Deployment',
      'PodDisruptionBudget',
      'ValidatingWebhookConfiguration',
      'MutatingWebhookConfiguration',
    ],
  );
  const secret = objects.find((o) => o.kind === 'Secret') as { metadata: { name: string }; data?: unknown };
  assert.equal(secret.metadata.name, webhookSecretName('pod-policy'));
  assert.equal(secret.data, undefined, 'empty: the webhook fills it');
  const deployment = objects.find((o) => o.kind === 'Deployment') as {
    spec: {
      replicas: number;
      template: {
        spec: {
          containers: Array<{
            env: Array<{ name: string; value?: string }>;
            readinessProbe: { httpGet: { scheme: string } };
          }>;
        };
      };
    };
  };
  assert.equal(deployment.spec.replicas, 2);
  const container = deployment.spec.template.spec.containers[0]!;
  assert.equal(container.readinessProbe.httpGet.scheme, 'HTTPS');
  assert.deepEqual(
    container.env.map((e) => e.name),
    ['PORT', 'POD_NAMESPACE', 'WEBHOOK_SERVICE', 'WEBHOOK_CERT_SECRET', 'WEBHOOK_CERTIFICATES'],
  );
  for (const config of objects.filter((o) =>
    o.kind?.endsWith('WebhookConfiguration'),
  ) as WebhookConfiguration[]) {
    for (const hook of config.webhooks ?? []) {
      assert.equal(hook.clientConfig.caBundle, undefined, 'injected at run time');
      assert.deepEqual(hook.clientConfig.service, {
        name: 'pod-policy',
        namespace: 'hooks',
        path: hook.clientConfig.service?.path,
        port: 443,
      });
      assert.deepEqual(hook.namespaceSelector?.matchExpressions?.at(-1), {
        key: 'kubernetes.io/metadata.name',
        operator: 'NotIn',
        values: ['hooks'],
      });
    }
  }
  const single = webhookDeployManifests(webhook, { image: 'x', replicas: 1, includeNamespace: false });
  assert.ok(!single.some((o) => o.kind === 'PodDisruptionBudget' || o.kind === 'Namespace'));
  assert.equal(single.find((o) => o.kind === 'Deployment')?.metadata?.namespace, 'pod-policy-system');
});

test('deploy manifests with cert-manager: a self-signed Issuer and a Certificate for the Service names, read-only Secret rights', () => {
  const webhook = defineWebhook({ name: 'pod-policy' });
  webhook
    .when(Pod)
    .isCreated()
    .validate((req) => req.allow());
  const objects = webhookDeployManifests(webhook, {
    image: 'x',
    namespace: 'hooks',
    certificates: 'cert-manager',
  });
  const cert = objects.find((o) => o.kind === 'Certificate') as {
    spec: { secretName: string; dnsNames: string[]; issuerRef: unknown };
  };
  assert.deepEqual(cert.spec.dnsNames, ['pod-policy.hooks.svc', 'pod-policy.hooks.svc.cluster.local']);
  assert.equal(cert.spec.secretName, 'pod-policy-webhook-tls');
  assert.deepEqual(cert.spec.issuerRef, { kind: 'Issuer', name: 'pod-policy-selfsigned' });
  assert.ok(!objects.some((o) => o.kind === 'Secret'));
  const role = objects.find((o) => o.kind === 'Role') as { rules: Array<{ verbs: string[] }> };
  assert.deepEqual(role.rules[0]?.verbs, ['get', 'list', 'watch']);
  const own = webhookDeployManifests(webhook, {
    image: 'x',
    certificates: 'cert-manager',
    issuer: { kind: 'ClusterIssuer', name: 'corp-ca' },
  });
  assert.ok(!own.some((o) => o.kind === 'Issuer'));
  assert.throws(
    () =>
      webhookDeployManifests(webhook, {
        image: '',
        replicas: 0,
        namespace: 'Bad_NS',
        issuer: { kind: 'Issuer', name: 'x' },
      }),
    (err: { code?: string; problems?: string[] }) => {
      assert.equal(err.code, 'CAP_ERR_WEBHOOK_USAGE');
      assert.equal(err.problems?.length, 4);
      return true;
    },
  );
});
