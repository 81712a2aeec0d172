// `scaleResource` and `capstan scale` against the real kube-apiserver: kinds resolved by discovery (built-in
// names, short names, group-qualified names, a Capstan CRD), the change read back from the object itself
// (not from the Scale answer), and each failure with its code and, for the CLI, its exit status.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import {
  Deployment,
  installCustomResources,
  KubeClient,
  KubeError,
  KubeErrorCode,
  loadKubeconfig,
} from 'capstan/kube';
import { type SharedCluster, useSharedCluster } from 'capstan/testing';
import { Autoscaler, readScale, ScalingErrorCode, scaleResource } from './index.ts';
import { Gadget, WorkerPool } from './testdata/crds.ts';
import { deployment } from './testdata/deployment.ts';

const mainTs = fileURLToPath(new URL('../cli/main.ts', import.meta.url));

function statefulSet(name: string, replicas: number) {
  const d = deployment(name, replicas);
  return { ...d, kind: 'StatefulSet', spec: { ...d.spec, serviceName: name } };
}

/** `spec.replicas` of the object itself, read without the Scale subresource. */
async function specReplicas(cluster: SharedCluster, path: string): Promise<number> {
  const r = await cluster.request(path);
  assert.equal(r.status, 200, r.body);
  return (JSON.parse(r.body) as { spec: { replicas: number } }).spec.replicas;
}

async function create(cluster: SharedCluster, path: string, body: unknown): Promise<void> {
  const r = await cluster.request(path, { method: 'POST', body });
  assert.equal(r.status, 201, r.body);
}

function capstan(args: string[]) {
  const r = spawnSync(process.execPath, ['--conditions=capstan-source', mainTs, ...args], {
    env: { PATH: process.env['PATH'] ?? '' },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('scaleResource: a Deployment and a StatefulSet under every name kubectl accepts', async (t) => {
  const cluster = await useSharedCluster(t);
  const ns = cluster.namespace;
  await using kube = await KubeClient.fromKubeconfig({ path: cluster.kubeconfigPath });
  await create(cluster, `/apis/apps/v1/namespaces/${ns}/deployments`, deployment('web', 1));
  await create(cluster, `/apis/apps/v1/namespaces/${ns}/statefulsets`, statefulSet('db', 1));
  const webPath = `/apis/apps/v1/namespaces/${ns}/deployments/web`;

  let want = 1;
  for (const kind of [
    'deployment',
    'deployments',
    'deploy',
    'Deployment',
    'deployments.apps',
    'deployment.v1.apps',
  ]) {
    const before = want;
    want += 1;
    const r = await scaleResource(kube, `${kind}/web`, want, { namespace: ns });
    assert.equal(r.resource, 'deployments.apps', kind);
    assert.equal(r.kind, 'Deployment');
    assert.equal(r.previousReplicas, before, kind);
    assert.equal(r.specReplicas, want, kind);
    assert.equal(await specReplicas(cluster, webPath), want, kind);
  }
  // { kind, name } works the same as the string form.
  await scaleResource(kube, { kind: 'deploy', name: 'web' }, 0, { namespace: ns });
  assert.equal(await specReplicas(cluster, webPath), 0);

  for (const kind of ['statefulset', 'sts', 'statefulsets.apps']) {
    want += 1;
    const r = await scaleResource(kube, `${kind}/db`, want, { namespace: ns });
    assert.equal(r.resource, 'statefulsets.apps');
    assert.equal(await specReplicas(cluster, `/apis/apps/v1/namespaces/${ns}/statefulsets/db`), want);
  }

  const state = await readScale(kube, 'deployment/web', { namespace: ns });
  assert.equal(state.specReplicas, 0);
  assert.equal(state.namespace, ns);
});

test('scaleResource: a Capstan CRD with a scale subresource, by kind, plural, short name and group', async (t) => {
  const cluster = await useSharedCluster(t);
  const ns = cluster.namespace;
  await using kube = await KubeClient.fromKubeconfig({ path: cluster.kubeconfigPath });
  await installCustomResources(kube, [WorkerPool, Gadget]);
  const base = `/apis/scaling-test.capstan.dev/v1/namespaces/${ns}`;
  await create(cluster, `${base}/workerpools`, {
    apiVersion: 'scaling-test.capstan.dev/v1',
    kind: 'WorkerPool',
    metadata: { name: 'pool' },
    spec: { replicas: 1, image: 'worker:1' },
  });

  let want = 1;
  for (const kind of [
    'workerpool',
    'workerpools',
    'wpool',
    'WorkerPool',
    'workerpools.scaling-test.capstan.dev',
  ]) {
    want += 1;
    const r = await scaleResource(kube, `${kind}/pool`, want, { namespace: ns });
    assert.equal(r.resource, 'workerpools.scaling-test.capstan.dev', kind);
    assert.equal(await specReplicas(cluster, `${base}/workerpools/pool`), want, kind);
  }

  // The CRD's own validation still applies through /scale (maximum 50).
  await assert.rejects(scaleResource(kube, 'wpool/pool', 51, { namespace: ns }), (err: unknown) => {
    assert.ok(err instanceof KubeError, String(err));
    assert.equal(err.status, 422);
    return true;
  });
  assert.equal(await specReplicas(cluster, `${base}/workerpools/pool`), want);

  // A CRD without subresources.scale: resolved, then refused before any write.
  await assert.rejects(scaleResource(kube, 'gadget/g', 2, { namespace: ns }), {
    code: ScalingErrorCode.notScalable,
    message: /gadgets\.scaling-test\.capstan\.dev has no scale subresource/,
  });
});

test('scaleResource: every failure has its own code and says what was asked for', async (t) => {
  const cluster = await useSharedCluster(t);
  const ns = cluster.namespace;
  await using kube = await KubeClient.fromKubeconfig({ path: cluster.kubeconfigPath });
  await create(cluster, `/apis/apps/v1/namespaces/${ns}/deployments`, deployment('web', 2));

  await assert.rejects(scaleResource(kube, 'nosuchkind/web', 1, { namespace: ns }), {
    code: ScalingErrorCode.unknownKind,
    message: /does not serve a resource type "nosuchkind"/,
  });
  await assert.rejects(scaleResource(kube, 'deployments.nosuchgroup/web', 1, { namespace: ns }), {
    code: ScalingErrorCode.unknownKind,
  });
  await assert.rejects(scaleResource(kube, 'configmap/x', 1, { namespace: ns }), {
    code: ScalingErrorCode.notScalable,
    message: /configmaps has no scale subresource/,
  });
  await assert.rejects(scaleResource(kube, 'deployment/missing', 1, { namespace: ns }), {
    code: ScalingErrorCode.notFound,
    message: new RegExp(`deployments\\.apps/missing in namespace ${ns} not found`),
  });
  for (const replicas of [-1, 1.5, Number.NaN, 2 ** 31]) {
    await assert.rejects(scaleResource(kube, 'deployment/web', replicas, { namespace: ns }), {
      code: ScalingErrorCode.usage,
    });
  }
  for (const ref of ['web', 'deployment/', '/web', 'deployment/web/x', '']) {
    await assert.rejects(
      scaleResource(kube, ref, 1, { namespace: ns }),
      { code: ScalingErrorCode.usage },
      ref,
    );
  }
  // The --current-replicas precondition.
  await assert.rejects(scaleResource(kube, 'deployment/web', 5, { namespace: ns, currentReplicas: 3 }), {
    code: ScalingErrorCode.conflict,
    message: /has 2 replicas, not the expected 3/,
  });
  const ok = await scaleResource(kube, 'deployment/web', 5, { namespace: ns, currentReplicas: 2 });
  assert.equal(ok.specReplicas, 5);
  // A server dry run validates and changes nothing.
  const dry = await scaleResource(kube, 'deployment/web', 7, { namespace: ns, dryRun: true });
  assert.equal(dry.specReplicas, 7);
  const after = await readScale(kube, 'deployment/web', { namespace: ns });
  assert.equal(after.specReplicas, 5);
});

test('capstan scale: scales, and fails with a message and a non-zero status', async (t) => {
  const cluster = await useSharedCluster(t);
  const ns = cluster.namespace;
  await create(cluster, `/apis/apps/v1/namespaces/${ns}/deployments`, deployment('web', 1));
  const kc = ['--kubeconfig', cluster.kubeconfigPath, '-n', ns];

  const ok = capstan(['scale', 'deployment/web', '--replicas', '4', ...kc]);
  assert.equal(ok.status, 0, ok.stderr);
  assert.equal(ok.stdout, 'deployments.apps/web scaled: 1 → 4\n');
  assert.equal(await specReplicas(cluster, `/apis/apps/v1/namespaces/${ns}/deployments/web`), 4);

  const split = capstan(['scale', 'deploy', 'web', '--replicas=2', '-o', 'json', ...kc]);
  assert.equal(split.status, 0, split.stderr);
  assert.deepEqual(
    // status.* is the controllers' (the shared cluster runs kube-controller-manager): not compared.
    { ...JSON.parse(split.stdout), selector: undefined, statusReplicas: undefined },
    {
      resource: 'deployments.apps',
      kind: 'Deployment',
      name: 'web',
      namespace: ns,
      specReplicas: 2,
      statusReplicas: undefined,
      selector: undefined,
      previousReplicas: 4,
    },
  );

  const cases: Array<[string[], number, RegExp]> = [
    [
      ['scale', 'deployment/web', '--replicas=-1', ...kc],
      2,
      /--replicas must be a whole number from 0 up, got "-1"/,
    ],
    [['scale', 'deployment/web', '--replicas', '2.5', ...kc], 2, /--replicas must be a whole number/],
    [['scale', 'deployment/web', ...kc], 2, /required option '--replicas <n>'/],
    [['scale', 'web', '--replicas', '1', ...kc], 2, /not a <kind>\/<name>: "web"/],
    [
      ['scale', 'widgetz/web', '--replicas', '1', ...kc],
      1,
      /does not serve a resource type "widgetz".*CAP_ERR_SCALING_UNKNOWN_KIND/,
    ],
    [
      ['scale', 'configmap/web', '--replicas', '1', ...kc],
      1,
      /configmaps has no scale subresource.*CAP_ERR_SCALING_NOT_SCALABLE/,
    ],
    [
      ['scale', 'deployment/nope', '--replicas', '1', ...kc],
      1,
      /deployments\.apps\/nope in namespace .* not found.*CAP_ERR_SCALING_NOT_FOUND/,
    ],
  ];
  for (const [args, status, message] of cases) {
    const r = capstan(args);
    assert.equal(r.status, status, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message, args.join(' '));
  }
  // None of the failures touched the object.
  assert.equal(await specReplicas(cluster, `/apis/apps/v1/namespaces/${ns}/deployments/web`), 2);
});

test('least privilege: get and patch on deployments/scale are all scaling needs; without them, held', async (t) => {
  const cluster = await useSharedCluster(t);
  const ns = cluster.namespace;
  await create(cluster, `/apis/apps/v1/namespaces/${ns}/deployments`, deployment('web', 1));
  const user = `autoscaler-${ns}`;
  const config = await loadKubeconfig({ path: cluster.kubeconfigPath });
  await using asUser = new KubeClient({ ...config, impersonateUser: user });

  // No rights yet: the read is refused (discovery is open to every authenticated user).
  await assert.rejects(scaleResource(asUser, 'deployment/web', 2, { namespace: ns }), (err: unknown) => {
    assert.ok(err instanceof KubeError, String(err));
    assert.equal(err.code, KubeErrorCode.forbidden);
    return true;
  });
  await using held = new Autoscaler(
    {
      name: 'web',
      scaleTargetRef: 'deployment/web',
      namespace: ns,
      maxReplicas: 5,
      metric: { source: { description: 'fixed 20', read: async () => 20, close: async () => {} }, target: 5 },
    },
    { kube: asUser },
  );
  const d = await held.evaluate();
  assert.equal(d.action, 'held');
  assert.equal(d.reason, 'FailedGetScale');
  assert.match(d.message, /forbidden/i);

  await create(cluster, `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/roles`, {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'Role',
    metadata: { name: 'scale-deployments' },
    rules: [{ apiGroups: ['apps'], resources: ['deployments/scale'], verbs: ['get', 'patch'] }],
  });
  await create(cluster, `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/rolebindings`, {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    metadata: { name: 'scale-deployments' },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'scale-deployments' },
    subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: user }],
  });
  // RBAC changes reach the authorizer's cache within moments: poll, bounded.
  let result: Awaited<ReturnType<typeof scaleResource>> | undefined;
  for (let i = 0; i < 50 && !result; i++) {
    result = await scaleResource(asUser, 'deployment/web', 2, { namespace: ns }).catch(() => undefined);
    if (!result) await sleep(100);
  }
  assert.equal(result?.specReplicas, 2);
  const scaled = await held.evaluate(); // ceil(20 / 5) = 4
  assert.equal(scaled.action, 'scaled', scaled.message);
  assert.equal(await specReplicas(cluster, `/apis/apps/v1/namespaces/${ns}/deployments/web`), 4);
  // The object itself stays out of reach: only its scale.
  await assert.rejects(asUser.resource(Deployment, ns).get('web'), { code: KubeErrorCode.forbidden });
});
