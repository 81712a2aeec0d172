// The client against a real etcd + kube-apiserver (one control plane for the whole file).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  ConfigMap,
  type ConfigMap as ConfigMapObject,
  Deployment,
  isStatus,
  KubeClient,
  KubeError,
  type KubeObject,
  type ResourceType,
  ServiceAccount,
} from 'capstan/kube';
import { createCertAuthority } from 'capstan/runtime';
import { type ControlPlane, startControlPlane } from 'capstan/testing';

interface Widget extends KubeObject {
  spec?: { size?: number; replicas?: number; color?: string };
  status?: { phase?: string; replicas?: number; selector?: string };
}
const WidgetType: ResourceType<Widget> = {
  group: 'kclient.capstan.dev',
  version: 'v1',
  kind: 'Widget',
  plural: 'widgets',
  namespaced: true,
};

const widgetCrd = {
  apiVersion: 'apiextensions.k8s.io/v1',
  kind: 'CustomResourceDefinition',
  metadata: { name: 'widgets.kclient.capstan.dev' },
  spec: {
    group: 'kclient.capstan.dev',
    scope: 'Namespaced',
    names: { plural: 'widgets', singular: 'widget', kind: 'Widget', listKind: 'WidgetList' },
    versions: [
      {
        name: 'v1',
        served: true,
        storage: true,
        subresources: {
          status: {},
          scale: { specReplicasPath: '.spec.replicas', statusReplicasPath: '.status.replicas' },
        },
        schema: {
          openAPIV3Schema: {
            type: 'object',
            properties: {
              spec: {
                type: 'object',
                properties: {
                  size: { type: 'integer', minimum: 1, maximum: 10 },
                  replicas: { type: 'integer', minimum: 0 },
                  color: { type: 'string', enum: ['red', 'blue'] },
                },
              },
              status: {
                type: 'object',
                properties: { phase: { type: 'string' }, replicas: { type: 'integer' } },
              },
            },
          },
        },
      },
    ],
  },
};

let cp: ControlPlane;
let kube: KubeClient;

before(async () => {
  cp = await startControlPlane({ crds: [widgetCrd] });
  kube = new KubeClient(cp.clientConfig, { fieldManager: 'kclient-test' });
});
after(async () => {
  await kube?.close();
  await cp?.stop();
});

const isKube = (code: string, reason?: string) => (e: unknown) => {
  assert.ok(e instanceof KubeError, String(e));
  assert.equal(e.code, code, e.message);
  if (reason !== undefined) assert.equal(e.reason, reason, e.message);
  return true;
};

async function namespace(name: string): Promise<string> {
  await kube.json({ method: 'POST', path: '/api/v1/namespaces', json: { metadata: { name } } });
  return name;
}

describe('KubeClient against a real apiserver', () => {
  test('create, get, replace with optimistic concurrency, patch three ways, delete with preconditions', async () => {
    const cms = kube.resource(ConfigMap, await namespace('crud'));
    const created = await cms.create({ metadata: { name: 'a', labels: { x: '1' } }, data: { k: 'v' } });
    assert.equal(created.kind, 'ConfigMap');
    assert.equal(created.metadata?.namespace, 'crud');
    await assert.rejects(
      cms.create({ metadata: { name: 'a' } }),
      isKube('CAP_ERR_KUBE_CONFLICT', 'AlreadyExists'),
    );

    const got = await cms.get('a');
    assert.equal(got.metadata?.uid, created.metadata?.uid);
    assert.equal(typeof got.metadata?.creationTimestamp, 'string');

    const replaced = await cms.replace({ ...got, data: { k: 'v2' } });
    assert.equal(replaced.data?.k, 'v2');
    // The version read before the replace is stale now: the apiserver refuses to overwrite.
    await assert.rejects(
      cms.replace({ ...got, data: { k: 'lost' } }),
      isKube('CAP_ERR_KUBE_CONFLICT', 'Conflict'),
    );

    const merged = await cms.patch('a', { data: { m: '1' }, metadata: { labels: { x: null } } });
    assert.deepEqual(merged.data, { k: 'v2', m: '1' });
    assert.equal(merged.metadata?.labels?.x, undefined);
    const jsonPatched = await cms.patch(
      'a',
      [
        { op: 'test', path: '/data/k', value: 'v2' },
        { op: 'replace', path: '/data/k', value: 'v3' },
      ],
      { type: 'json' },
    );
    assert.equal(jsonPatched.data?.k, 'v3');
    await assert.rejects(
      cms.patch('a', [{ op: 'test', path: '/data/k', value: 'nope' }], { type: 'json' }),
      isKube('CAP_ERR_KUBE_INVALID'),
    );
    const dryRun = await cms.patch('a', { data: { k: 'dry' } }, { dryRun: true });
    assert.equal(dryRun.data?.k, 'dry');
    assert.equal((await cms.get('a')).data?.k, 'v3');

    await assert.rejects(
      cms.delete('a', { preconditions: { uid: '00000000-0000-0000-0000-000000000000' } }),
      isKube('CAP_ERR_KUBE_CONFLICT'),
    );
    const deleted = await cms.delete('a', { preconditions: { uid: created.metadata?.uid ?? '' } });
    assert.ok(isStatus(deleted) || deleted.metadata?.name === 'a');
    await assert.rejects(cms.get('a'), isKube('CAP_ERR_KUBE_NOT_FOUND', 'NotFound'));
    assert.equal(await cms.getOptional('a'), undefined);
    await assert.rejects(cms.delete('a'), isKube('CAP_ERR_KUBE_NOT_FOUND'));
  });

  test('strategic merge patch merges containers by name', async () => {
    const deployments = kube.resource(Deployment, await namespace('strategic'));
    const labels = { app: 'web' };
    await deployments.create({
      metadata: { name: 'web' },
      spec: {
        replicas: 1,
        selector: { matchLabels: labels },
        template: {
          metadata: { labels },
          spec: {
            containers: [
              { name: 'app', image: 'nginx:1' },
              { name: 'sidecar', image: 'busybox:1' },
            ],
          },
        },
      },
    });
    const patched = await deployments.patch(
      'web',
      { spec: { template: { spec: { containers: [{ name: 'app', image: 'nginx:2' }] } } } },
      { type: 'strategic' },
    );
    assert.deepEqual(
      patched.spec?.template.spec?.containers.map((c) => `${c.name}=${c.image}`),
      ['app=nginx:2', 'sidecar=busybox:1'],
    );
  });

  test('list pages through limit and continue; listAll gathers every page', async () => {
    const cms = kube.resource(ConfigMap, await namespace('paging'));
    for (let i = 0; i < 7; i++) await cms.create({ metadata: { name: `cm-${i}`, labels: { set: 'p' } } });
    await cms.create({ metadata: { name: 'other' } });
    const first = await cms.list({ labelSelector: { set: 'p' }, limit: 3 });
    assert.equal(first.items.length, 3);
    assert.ok(first.metadata.continue);
    // The apiserver counts what remains only for unselected lists.
    assert.equal((await cms.list({ limit: 3 })).metadata.remainingItemCount, 5);
    const sizes: number[] = [];
    for await (const page of cms.listPages({ labelSelector: 'set=p', limit: 3 }))
      sizes.push(page.items.length);
    assert.deepEqual(sizes, [3, 3, 1]);
    const all = await cms.listAll({ labelSelector: { set: 'p' }, limit: 2 });
    assert.deepEqual(
      all.items.map((c) => c.metadata?.name),
      ['cm-0', 'cm-1', 'cm-2', 'cm-3', 'cm-4', 'cm-5', 'cm-6'],
    );
    assert.match(all.resourceVersion, /^\d+$/);
    await assert.rejects(cms.list({ limit: 2, continue: 'garbage' }), isKube('CAP_ERR_KUBE_INVALID'));
    // Metadata only: names and labels, no data.
    const meta = await cms.metadataOnly().list({ labelSelector: { set: 'p' } });
    assert.equal(meta.items.length, 7);
    assert.equal(meta.items[0]?.kind, 'PartialObjectMetadata');
    assert.equal((meta.items[0] as { data?: unknown }).data, undefined);
    assert.deepEqual((await cms.metadataOnly().list({ labelSelector: { set: 'none' } })).items, []);
    const removed = await cms.deleteCollection({ labelSelector: { set: 'p' } });
    assert.ok(!isStatus(removed) || removed.status === 'Success');
    assert.deepEqual(
      (await cms.list()).items.map((c) => c.metadata?.name),
      ['other'],
    );
    // Across all namespaces.
    const everywhere = await kube.resource(ConfigMap).list({ fieldSelector: 'metadata.name=other' });
    assert.deepEqual(
      everywhere.items.map((c) => c.metadata?.namespace),
      ['paging'],
    );
  });

  test('server-side apply: a second manager conflicts with 409 unless it forces, then owns the field', async () => {
    const ns = await namespace('ssa');
    const cms = kube.resource(ConfigMap, ns);
    const base = { metadata: { name: 'shared' }, data: { owned: 'a', other: 'x' } } satisfies ConfigMapObject;
    const first = await cms.apply(base, { fieldManager: 'alpha' });
    assert.equal(first.data?.owned, 'a');
    // Applying the same again is a no-op (safe to retry).
    const again = await cms.apply(base, { fieldManager: 'alpha' });
    assert.equal(again.metadata?.resourceVersion, first.metadata?.resourceVersion);
    const grab = { metadata: { name: 'shared' }, data: { owned: 'b' } } satisfies ConfigMapObject;
    await assert.rejects(
      cms.apply(grab, { fieldManager: 'beta' }),
      (e: unknown) => isKube('CAP_ERR_KUBE_CONFLICT', 'Conflict')(e) && /owned/.test((e as Error).message),
    );
    const forced = await cms.apply(grab, { fieldManager: 'beta', force: true });
    assert.deepEqual(forced.data, { owned: 'b', other: 'x' });
    const fields = (forced.metadata?.managedFields ?? []) as Array<{ manager: string }>;
    const managers = fields.map((m) => m.manager);
    assert.ok(managers.includes('alpha') && managers.includes('beta'), managers.join());
    // The namespace can come from the object when the client spans all namespaces.
    const viaAll = await kube
      .resource(ConfigMap)
      .apply({ metadata: { name: 'from-object', namespace: ns }, data: { a: '1' } });
    assert.equal(viaAll.metadata?.namespace, ns);
  });

  test('status subresource: the main resource ignores status, status writes ignore spec', async () => {
    const widgets = kube.resource(WidgetType, await namespace('status'));
    const created = await widgets.create({
      metadata: { name: 'w' },
      spec: { size: 2 },
      status: { phase: 'Ignored' },
    });
    assert.equal(created.status, undefined);
    const patched = await widgets.patchStatus('w', { status: { phase: 'Pending' }, spec: { size: 9 } });
    assert.equal(patched.status?.phase, 'Pending');
    assert.equal(patched.spec?.size, 2);
    const read = await widgets.getStatus('w');
    assert.equal(read.status?.phase, 'Pending');
    const replaced = await widgets.replaceStatus({ ...read, status: { phase: 'Ready' } });
    assert.equal(replaced.status?.phase, 'Ready');
    await assert.rejects(
      widgets.replaceStatus({ ...read, status: { phase: 'Stale' } }),
      isKube('CAP_ERR_KUBE_CONFLICT'),
    );
    const applied = await widgets.applyStatus(
      { metadata: { name: 'w' }, status: { phase: 'Applied', replicas: 1 } },
      { fieldManager: 'widget-controller', force: true },
    );
    assert.equal(applied.status?.phase, 'Applied');
    // A spec change through the main resource leaves the status alone.
    const spec = await widgets.patch('w', { spec: { size: 3 }, status: { phase: 'Nope' } });
    assert.equal(spec.status?.phase, 'Applied');
    assert.equal(spec.spec?.size, 3);
  });

  test('the apiserver rejects invalid objects with CAP_ERR_KUBE_INVALID and its causes', async () => {
    const ns = await namespace('invalid');
    await assert.rejects(
      kube.resource(WidgetType, ns).create({ metadata: { name: 'w' }, spec: { size: 11, color: 'green' } }),
      (e: unknown) =>
        isKube('CAP_ERR_KUBE_INVALID', 'Invalid')(e) &&
        /size/.test((e as Error).message) &&
        /color/.test((e as Error).message),
    );
    await assert.rejects(
      kube.resource(ConfigMap, ns).create({ metadata: { name: 'Upper_Case' } }),
      isKube('CAP_ERR_KUBE_INVALID', 'Invalid'),
    );
    const unknown: ResourceType<KubeObject> = { ...WidgetType, group: 'nothing.capstan.dev' };
    await assert.rejects(kube.resource(unknown, ns).list(), isKube('CAP_ERR_KUBE_NOT_FOUND'));
  });

  test('scale subresource of a Deployment and of a custom resource', async () => {
    const ns = await namespace('scale');
    const deployments = kube.resource(Deployment, ns);
    const labels = { app: 'scaled' };
    await deployments.create({
      metadata: { name: 'scaled' },
      spec: {
        replicas: 1,
        selector: { matchLabels: labels },
        template: { metadata: { labels }, spec: { containers: [{ name: 'c', image: 'busybox' }] } },
      },
    });
    const scale = await deployments.getScale('scaled');
    assert.equal(scale.kind, 'Scale');
    assert.equal(scale.spec?.replicas, 1);
    assert.equal(scale.status?.selector, 'app=scaled');
    const three = await deployments.scale('scaled', 3);
    assert.equal(three.spec?.replicas, 3);
    assert.equal((await deployments.get('scaled')).spec?.replicas, 3);
    const current = await deployments.getScale('scaled');
    const five = await deployments.replaceScale('scaled', { ...current, spec: { replicas: 5 } });
    assert.equal(five.spec?.replicas, 5);
    await assert.rejects(
      deployments.replaceScale('scaled', { ...current, spec: { replicas: 7 } }),
      isKube('CAP_ERR_KUBE_CONFLICT'),
    );

    const widgets = kube.resource(WidgetType, ns);
    await widgets.create({ metadata: { name: 'w' }, spec: { replicas: 2 } });
    assert.equal((await widgets.scale('w', 4)).spec?.replicas, 4);
    assert.equal((await widgets.get('w')).spec?.replicas, 4);
  });

  test('TLS: a CA that did not sign the apiserver fails with CAP_ERR_KUBE_CONFIG; no credentials is anonymous', async () => {
    const other = await createCertAuthority('not-the-cluster-ca');
    await using wrongCa = new KubeClient({ ...cp.clientConfig, caPem: other.certPem });
    await assert.rejects(wrongCa.version(), isKube('CAP_ERR_KUBE_CONFIG'));
    // Skipping verification reaches it; without credentials the request is anonymous, which RBAC refuses.
    const { certPem: _c, keyPem: _k, ...anonymous } = cp.clientConfig;
    await using insecure = new KubeClient({
      ...anonymous,
      caPem: other.certPem,
      insecureSkipTlsVerify: true,
    });
    await assert.rejects(
      insecure.resource(ConfigMap, 'default').list(),
      (e: unknown) =>
        isKube('CAP_ERR_KUBE_FORBIDDEN')(e) && /system:anonymous/.test((e as KubeError).message),
    );
  });

  test('an impersonated user without RBAC rights gets CAP_ERR_KUBE_FORBIDDEN', async () => {
    await using nobody = new KubeClient({ ...cp.clientConfig, impersonateUser: 'nobody@capstan.dev' });
    await assert.rejects(
      nobody.resource(ConfigMap, 'default').list(),
      isKube('CAP_ERR_KUBE_FORBIDDEN', 'Forbidden'),
    );
  });

  test('429 from priority and fairness: without retries the caller sees it; with them the client waits and gets through', async () => {
    // A priority level of about 3 seats that rejects instead of queueing, for one user: a burst of large
    // lists from that user overflows it, and the apiserver answers 429 (with Retry-After), as it does under load.
    const ns = await namespace('throttled');
    const user = 'throttled@capstan.dev';
    const flowcontrol = '/apis/flowcontrol.apiserver.k8s.io/v1';
    await kube.json({
      method: 'POST',
      path: `${flowcontrol}/prioritylevelconfigurations`,
      json: {
        metadata: { name: 'capstan-throttled' },
        spec: {
          type: 'Limited',
          limited: {
            nominalConcurrencyShares: 1,
            lendablePercent: 0,
            borrowingLimitPercent: 0,
            limitResponse: { type: 'Reject' },
          },
        },
      },
    });
    await kube.json({
      method: 'POST',
      path: `${flowcontrol}/flowschemas`,
      json: {
        metadata: { name: 'capstan-throttled' },
        spec: {
          priorityLevelConfiguration: { name: 'capstan-throttled' },
          matchingPrecedence: 500,
          distinguisherMethod: { type: 'ByUser' },
          rules: [
            {
              subjects: [{ kind: 'User', user: { name: user } }],
              resourceRules: [
                { verbs: ['*'], apiGroups: ['*'], resources: ['*'], namespaces: ['*'], clusterScope: true },
              ],
            },
          ],
        },
      },
    });
    const rbac = `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}`;
    await kube.json({
      method: 'POST',
      path: `${rbac}/roles`,
      json: {
        metadata: { name: 'list-configmaps' },
        rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['list'] }],
      },
    });
    await kube.json({
      method: 'POST',
      path: `${rbac}/rolebindings`,
      json: {
        metadata: { name: 'list-configmaps' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'list-configmaps' },
        subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: user }],
      },
    });
    const cms = kube.resource(ConfigMap, ns);
    const payload = 'x'.repeat(4_000);
    await Promise.all(
      Array.from({ length: 300 }, (_, i) => cms.create({ metadata: { name: `cm-${i}` }, data: { payload } })),
    );
    const burst = async (client: KubeClient) =>
      Promise.allSettled(
        Array.from({ length: 40 }, () => client.resource(ConfigMap, ns).list({ timeoutMs: 60_000 })),
      );
    const rejectedByApiserver = async () => {
      const res = await kube.request({ path: '/metrics', accept: 'text/plain' });
      const text = await res.body.text();
      let total = 0;
      for (const line of text.split('\n')) {
        if (
          line.startsWith('apiserver_flowcontrol_rejected_requests_total{') &&
          line.includes('capstan-throttled')
        )
          total += Number(line.slice(line.lastIndexOf(' ') + 1));
      }
      return total;
    };

    // No retries: some calls fail with the 429 (the new flow schema takes effect within moments).
    await using bare = new KubeClient(
      { ...cp.clientConfig, impersonateUser: user },
      { http: { retry: false, connections: 40 } },
    );
    let throttled: KubeError | undefined;
    for (let round = 0; round < 20 && !throttled; round++) {
      for (const r of await burst(bare)) {
        if (r.status === 'rejected') {
          assert.ok(r.reason instanceof KubeError, String(r.reason));
          assert.equal(r.reason.code, 'CAP_ERR_KUBE_API', r.reason.message);
          assert.equal(r.reason.status, 429, r.reason.message);
          throttled = r.reason;
        }
      }
    }
    assert.ok(throttled, 'the apiserver throttled a burst from the user');

    // With retries (429 is among the kube client's retried statuses; 10 tries as client-go makes on a
    // Retry-After): the same bursts all succeed, although the apiserver rejected attempts meanwhile.
    await using patient = new KubeClient(
      { ...cp.clientConfig, impersonateUser: user },
      { http: { connections: 40, retry: { retries: 10 } } },
    );
    const before = await rejectedByApiserver();
    let rejectedMeanwhile = 0;
    for (let round = 0; round < 5 && rejectedMeanwhile === 0; round++) {
      for (const r of await burst(patient)) {
        assert.equal(r.status, 'fulfilled', r.status === 'rejected' ? String(r.reason) : '');
        if (r.status === 'fulfilled') assert.equal(r.value.items.length, 300);
      }
      rejectedMeanwhile = (await rejectedByApiserver()) - before;
    }
    assert.ok(rejectedMeanwhile > 0, 'attempts were rejected with 429 and retried');
  });

  test('discovery: version, resources of a group version, the resource type of a kind', async () => {
    const version = await kube.version();
    assert.equal(version.major, '1');
    const apps = await kube.apiResources('apps/v1');
    assert.ok(apps.resources.some((r) => r.name === 'deployments/scale'));
    assert.deepEqual(await kube.resourceTypeFor('apps/v1', 'Deployment'), {
      group: 'apps',
      version: 'v1',
      kind: 'Deployment',
      plural: 'deployments',
      namespaced: true,
    });
    const widget = await kube.resourceTypeFor('kclient.capstan.dev/v1', 'Widget');
    assert.equal(widget.plural, 'widgets');
    assert.equal((await kube.resourceTypeFor('v1', 'Namespace')).namespaced, false);
    await assert.rejects(kube.resourceTypeFor('v1', 'Nope'), isKube('CAP_ERR_KUBE_NOT_FOUND'));
    await assert.rejects(kube.apiResources('nope.capstan.dev/v1'), isKube('CAP_ERR_KUBE_NOT_FOUND'));
  });

  test('a kubeconfig with an exec credential plugin: the plugin runs, its token authenticates', async () => {
    const ns = await namespace('exec');
    await kube.resource(ServiceAccount, ns).create({ metadata: { name: 'plugin' } });
    const { token } = (
      await kube.json<{ status: { token: string } }>({
        method: 'POST',
        path: `/api/v1/namespaces/${ns}/serviceaccounts/plugin/token`,
        json: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: {} },
      })
    ).status;
    const { mkdtempSync, rmSync, writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dir = mkdtempSync(join(tmpdir(), 'capstan-exec-'));
    try {
      const plugin = join(dir, 'plugin.mjs');
      const credential = {
        apiVersion: 'client.authentication.k8s.io/v1',
        kind: 'ExecCredential',
        status: { token },
      };
      writeFileSync(plugin, `process.stdout.write(${JSON.stringify(JSON.stringify(credential))});\n`);
      const kubeconfig = join(dir, 'config');
      writeFileSync(
        kubeconfig,
        JSON.stringify({
          apiVersion: 'v1',
          kind: 'Config',
          clusters: [
            {
              name: 'c',
              cluster: {
                server: cp.server,
                'certificate-authority-data': Buffer.from(cp.caPem).toString('base64'),
              },
            },
          ],
          users: [
            {
              name: 'u',
              user: {
                exec: {
                  apiVersion: 'client.authentication.k8s.io/v1',
                  command: process.execPath,
                  args: [plugin],
                  interactiveMode: 'Never',
                },
              },
            },
          ],
          contexts: [{ name: 'x', context: { cluster: 'c', user: 'u', namespace: ns } }],
          'current-context': 'x',
        }),
      );
      await using viaPlugin = await KubeClient.fromKubeconfig({ path: kubeconfig });
      assert.equal(viaPlugin.namespace, ns);
      const review = await viaPlugin.json<{ status: { userInfo: { username: string } } }>({
        method: 'POST',
        path: '/apis/authentication.k8s.io/v1/selfsubjectreviews',
        json: { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' },
      });
      assert.equal(review.status.userInfo.username, `system:serviceaccount:${ns}:plugin`);
      // The account may not list config maps: RBAC answers 403 for it.
      await assert.rejects(viaPlugin.resource(ConfigMap, ns).list(), isKube('CAP_ERR_KUBE_FORBIDDEN'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a token file is re-read after a 401: a rotated service-account token is picked up', async () => {
    const ns = await namespace('tokens');
    const accounts = kube.resource(ServiceAccount, ns);
    const tokenFor = async (name: string) => {
      await accounts.create({ metadata: { name } });
      const review = await kube.json<{ status: { token: string } }>({
        method: 'POST',
        path: `/api/v1/namespaces/${ns}/serviceaccounts/${name}/token`,
        json: {
          apiVersion: 'authentication.k8s.io/v1',
          kind: 'TokenRequest',
          spec: { expirationSeconds: 3600 },
        },
      });
      return review.status.token;
    };
    const { mkdtempSync, rmSync, writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dir = mkdtempSync(join(tmpdir(), 'capstan-token-'));
    try {
      const tokenFile = join(dir, 'token');
      writeFileSync(tokenFile, await tokenFor('first'));
      await using asAccount = new KubeClient({
        server: cp.clientConfig.server,
        caPem: cp.clientConfig.caPem ?? '',
        tokenFile,
        namespace: ns,
      });
      const whoami = async () =>
        (
          await asAccount.json<{ status: { userInfo: { username: string } } }>({
            method: 'POST',
            path: '/apis/authentication.k8s.io/v1/selfsubjectreviews',
            json: { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' },
          })
        ).status.userInfo.username;
      assert.equal(await whoami(), `system:serviceaccount:${ns}:first`);
      // Rotation: a new token lands in the file; the old one stops working (its account is gone). The
      // apiserver keeps accepting it for a few seconds (it caches authenticated tokens); from its first
      // 401 on, the client reads the file again and goes on as the new account, with no failed call.
      writeFileSync(tokenFile, await tokenFor('second'));
      await accounts.delete('first');
      const deadline = Date.now() + 60_000;
      let who = await whoami();
      while (who !== `system:serviceaccount:${ns}:second` && Date.now() < deadline) {
        assert.equal(who, `system:serviceaccount:${ns}:first`);
        await new Promise((resolve) => setTimeout(resolve, 250));
        who = await whoami();
      }
      assert.equal(who, `system:serviceaccount:${ns}:second`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
