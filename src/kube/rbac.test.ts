// Least-privilege RBAC derived from the controller specs: checked as data, then held to a real apiserver. The
// operator runs (through runOperator) as a ServiceAccount whose only rights are the generated roles, with a
// service-account token from the TokenRequest API; then each verb the runtime needs is taken away in turn,
// and the failure must show (a rejected manager, a reconcile error, a warning log), never go quiet.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { createLogger } from '../runtime/index.ts';
import { type ControlPlane, startControlPlane } from '../testing/index.ts';
import { Action } from './action.ts';
import {
  ClusterRole,
  ClusterRoleBinding,
  ConfigMap,
  Deployment,
  Event,
  Lease,
  Namespace,
  Role,
  RoleBinding,
  Secret,
  ServiceAccount,
} from './builtin.ts';
import { KubeClient } from './client.ts';
import { controller } from './controller.ts';
import { customResource } from './crd/define.ts';
import { crdManifests } from './crd/manifest.ts';
import { KubeError, KubeErrorCode } from './errors.ts';
import { defineOperator, type Operator } from './operator.ts';
import { operatorRules, type RbacObject, rbacManifests } from './rbac.ts';
import { defaultErrorPolicy, type Reconciler } from './reconcile.ts';
import type { ResourceType } from './resource-type.ts';
import { runOperator } from './run-operator.ts';

const Gadget = customResource('Gadget')
  .inGroup('rbac.capstan.dev')
  .version('v1', {
    spec: z.object({ colour: z.string().max(20) }),
    status: z.object({ child: z.string().max(80).optional() }),
  })
  .storedAs('v1');
type Gadget = typeof Gadget extends ResourceType<infer T> ? T : never;

const noop = async () => Action.awaitChange();

test('rules from the recorded specs: primary, status, finalizers, owned, watched, events, leases, extra', () => {
  const operator = defineOperator({
    name: 'gadget-operator',
    resources: [Gadget],
    controllers: [
      controller(Gadget)
        .owns(ConfigMap)
        .owns(Deployment)
        .watches(Secret, () => [])
        .build(noop),
      controller(ConfigMap).named('mirror').inNamespace('apps').owns(ConfigMap).build(noop),
    ],
    rules: [
      { apiGroups: [''], resources: ['secrets'], verbs: ['get'], namespace: 'apps' },
      { apiGroups: [''], resources: ['nodes'], verbs: ['get', 'list'] },
    ],
  });
  assert.equal(operator.definition.namespace, 'gadget-operator-system');
  const rules = operatorRules(operator);
  assert.deepEqual(rules.cluster, [
    { apiGroups: [''], resources: ['configmaps'], verbs: ['list', 'watch', 'create', 'patch'] },
    { apiGroups: [''], resources: ['nodes'], verbs: ['get', 'list'] },
    { apiGroups: [''], resources: ['secrets'], verbs: ['list', 'watch'] },
    { apiGroups: ['apps'], resources: ['deployments'], verbs: ['list', 'watch', 'create', 'patch'] },
    { apiGroups: ['events.k8s.io'], resources: ['events'], verbs: ['create', 'patch'] },
    { apiGroups: ['rbac.capstan.dev'], resources: ['gadgets'], verbs: ['list', 'watch', 'patch'] },
    { apiGroups: ['rbac.capstan.dev'], resources: ['gadgets/finalizers'], verbs: ['update'] },
    { apiGroups: ['rbac.capstan.dev'], resources: ['gadgets/status'], verbs: ['patch'] },
  ]);
  assert.deepEqual(rules.namespaced, [
    {
      namespace: 'apps',
      rules: [
        // Primary and owned kind are the same: their verbs merge.
        { apiGroups: [''], resources: ['configmaps'], verbs: ['list', 'watch', 'create', 'patch'] },
        { apiGroups: [''], resources: ['configmaps/finalizers'], verbs: ['update'] },
        { apiGroups: [''], resources: ['secrets'], verbs: ['get'] },
        { apiGroups: ['events.k8s.io'], resources: ['events'], verbs: ['create', 'patch'] },
      ],
    },
  ]);
  assert.deepEqual(rules.leaderElection, [
    { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['create'] },
    {
      apiGroups: ['coordination.k8s.io'],
      resources: ['leases'],
      verbs: ['get', 'update'],
      resourceNames: ['gadget-operator'],
    },
  ]);
  const objects = rbacManifests(operator);
  assert.deepEqual(
    objects.map((o) => `${o.kind} ${o.metadata?.namespace ?? ''}/${o.metadata?.name}`),
    [
      'ServiceAccount gadget-operator-system/gadget-operator',
      'ClusterRole /gadget-operator',
      'ClusterRoleBinding /gadget-operator',
      'Role apps/gadget-operator',
      'RoleBinding apps/gadget-operator',
      'Role gadget-operator-system/gadget-operator-leader-election',
      'RoleBinding gadget-operator-system/gadget-operator-leader-election',
    ],
  );
  const noElection = operatorRules(
    defineOperator({ name: 'x', leaderElection: false, controllers: [controller(ConfigMap).build(noop)] }),
  );
  assert.deepEqual(noElection.leaderElection, []);
  // A built-in primary kind has no status subresource rule, and without `owns` no finalizers rule.
  assert.deepEqual(noElection.cluster, [
    { apiGroups: [''], resources: ['configmaps'], verbs: ['list', 'watch', 'patch'] },
    { apiGroups: ['events.k8s.io'], resources: ['events'], verbs: ['create', 'patch'] },
  ]);
});

const TYPES: Record<string, ResourceType> = {
  ServiceAccount: ServiceAccount as ResourceType,
  ClusterRole: ClusterRole as ResourceType,
  ClusterRoleBinding: ClusterRoleBinding as ResourceType,
  Role: Role as ResourceType,
  RoleBinding: RoleBinding as ResourceType,
};

describe('against the real apiserver, as the generated ServiceAccount', () => {
  let cp: ControlPlane;
  let admin: KubeClient;
  let sa: KubeClient;
  const errors: unknown[] = [];
  const logs: Array<Record<string, unknown>> = [];
  const OPERATOR_NS = 'gadget-system';
  const APPS = 'gadget-apps';

  const reconcile: Reconciler<Gadget> = async (request, ctx) => {
    if (!ctx.get()) return Action.awaitChange();
    return ctx.finalize('rbac.capstan.dev/cleanup', async (event) => {
      if (event.type === 'cleanup') return Action.awaitChange();
      const child = `${request.name}-child`;
      await ctx.apply(ConfigMap, { metadata: { name: child }, data: { colour: event.object.spec.colour } });
      await ctx.applyStatus({ child });
      await ctx.event({ reason: 'Applied', action: 'Apply', note: child });
      return Action.awaitChange();
    });
  };
  const operator: Operator = defineOperator({
    name: 'gadget-operator',
    namespace: OPERATOR_NS,
    resources: [Gadget],
    controllers: [
      controller(Gadget)
        .owns(ConfigMap)
        .withTuning({ backoff: { initialMs: 200, maxMs: 1_000 } })
        .build(reconcile, (err) => {
          errors.push(err);
          return defaultErrorPolicy(err);
        }),
    ],
  });

  async function eventually<T>(what: string, probe: () => Promise<T | undefined>, ms = 30_000): Promise<T> {
    const until = Date.now() + ms;
    let last: unknown;
    for (;;) {
      try {
        const v = await probe();
        if (v !== undefined && v !== false) return v;
      } catch (err) {
        last = err;
      }
      if (Date.now() > until) assert.fail(`${what}: not within ${ms} ms (${String(last ?? '')})`);
      await sleep(100);
    }
  }

  async function applyAll(objects: readonly RbacObject[]): Promise<void> {
    for (const o of objects) {
      const type = TYPES[o.kind ?? '']!;
      await admin.resource(type).apply(o, { fieldManager: 'test', force: true });
    }
  }

  /** Ask the apiserver, as the ServiceAccount, whether it may do `verb` (RBAC changes apply within a moment). */
  async function allowed(attributes: Record<string, string>): Promise<boolean> {
    const res = await sa.request({
      method: 'POST',
      path: '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews',
      json: {
        apiVersion: 'authorization.k8s.io/v1',
        kind: 'SelfSubjectAccessReview',
        spec: { resourceAttributes: attributes },
      },
    });
    const body = JSON.parse(await res.body.text()) as { status?: { allowed?: boolean } };
    return body.status?.allowed === true;
  }

  before(async () => {
    // OwnerReferencesPermissionEnforcement (on in OpenShift and hardened clusters): an owner reference with
    // blockOwnerDeletion needs `update` on the owner's finalizers, which the generated role grants.
    cp = await startControlPlane({
      apiServerFlags: ['--enable-admission-plugins=OwnerReferencesPermissionEnforcement'],
    });
    admin = cp.client;
    await cp.installCrds(crdManifests([Gadget]));
    for (const name of [OPERATOR_NS, APPS]) await admin.resource(Namespace).create({ metadata: { name } });
    await applyAll(rbacManifests(operator));
    sa = await clientAs(OPERATOR_NS, 'gadget-operator');
  });

  /** A client authenticated as a ServiceAccount, with a token from the TokenRequest API (what the kubelet projects). */
  async function clientAs(namespace: string, name: string): Promise<KubeClient> {
    const res = await admin.request({
      method: 'POST',
      path: `/api/v1/namespaces/${namespace}/serviceaccounts/${name}/token`,
      json: {
        apiVersion: 'authentication.k8s.io/v1',
        kind: 'TokenRequest',
        spec: { expirationSeconds: 3600 },
      },
    });
    const token = (JSON.parse(await res.body.text()) as { status: { token: string } }).status.token;
    const { certPem: _c, keyPem: _k, ...rest } = cp.clientConfig;
    return new KubeClient({ ...rest, token });
  }

  after(async () => {
    await sa?.close();
    await cp?.stop();
  });

  function start() {
    const logger = createLogger({
      level: 'debug',
      format: 'json',
      destination: { write: (line: string) => void logs.push(JSON.parse(line)) },
    });
    return runOperator(operator, {
      client: sa,
      logger,
      handleSignals: false,
      env: {
        PORT: '0',
        HOST: '127.0.0.1',
        LEADER_ELECTION: 'true',
        POD_NAMESPACE: OPERATOR_NS,
        POD_NAME: 'pod-a',
      },
    });
  }

  const gadgets = () => admin.resource(Gadget, APPS);
  const forbidden = (e: unknown) => e instanceof KubeError && e.code === KubeErrorCode.forbidden;

  test('the operator works with exactly the generated roles: child, status, event, finalizer, lease', async () => {
    assert.equal(await allowed({ verb: 'get', resource: 'secrets', namespace: APPS }), false, 'nothing more');
    const running = await start();
    try {
      await gadgets().create(Gadget.newObject({ name: 'g1', namespace: APPS }, { colour: 'red' }));
      const child = await eventually('child ConfigMap', () =>
        admin.resource(ConfigMap, APPS).getOptional('g1-child'),
      );
      assert.equal(child.data?.['colour'], 'red');
      assert.equal(child.metadata?.ownerReferences?.[0]?.kind, 'Gadget');
      const g = await eventually('status', async () => {
        const o = await gadgets().get('g1');
        return o.status?.child ? o : undefined;
      });
      assert.deepEqual(g.metadata.finalizers, ['rbac.capstan.dev/cleanup']);
      await eventually('event', async () => {
        const list = await admin.resource(Event, APPS).list();
        return list.items.some((e) => e.reason === 'Applied') || undefined;
      });
      const ready = await fetch(`${running.url}/readyz`);
      assert.equal(ready.status, 200);
      assert.equal(running.manager.isLeader, true);
      const lease = await admin.resource(Lease, OPERATOR_NS).get('gadget-operator');
      assert.equal(lease.spec?.holderIdentity, 'pod-a');
      await gadgets().delete('g1');
      await eventually('finalizer removed, gadget gone', async () =>
        (await gadgets().getOptional('g1')) === undefined ? true : undefined,
      );
      assert.deepEqual(errors, [], 'no reconcile failed');
    } finally {
      await running.stop();
    }
  });

  /** Take `verb` off `resource` in the ClusterRole, wait until the apiserver applies it, run `check`, put it back. */
  async function without(
    resource: string,
    verb: string,
    check: (running: Awaited<ReturnType<typeof start>>) => Promise<void>,
  ): Promise<void> {
    const full = rbacManifests(operator).find((o) => o.kind === 'ClusterRole') as ClusterRole;
    const cut: ClusterRole = {
      ...full,
      rules: (full.rules ?? [])
        .map((r) =>
          r.resources?.includes(resource)
            ? r.resources.length === 1
              ? { ...r, verbs: r.verbs.filter((v) => v !== verb) }
              : r
            : r,
        )
        .filter((r) => r.verbs.length > 0),
    };
    await admin.resource(ClusterRole).replace({
      ...cut,
      metadata: {
        ...cut.metadata,
        resourceVersion: (await admin.resource(ClusterRole).get('gadget-operator')).metadata?.resourceVersion,
      },
    } as ClusterRole);
    const [plural, subresource] = resource.split('/');
    const group = plural === 'configmaps' ? '' : plural === 'events' ? 'events.k8s.io' : 'rbac.capstan.dev';
    await eventually(`${verb} ${resource} revoked`, async () =>
      (await allowed({
        verb,
        group,
        resource: plural!,
        ...(subresource ? { subresource } : {}),
        namespace: APPS,
      }))
        ? undefined
        : true,
    );
    errors.length = 0;
    logs.length = 0;
    const running = await start();
    try {
      await check(running);
    } finally {
      await running.stop();
      await applyAll(rbacManifests(operator));
    }
  }

  const reconcileForbidden = (what: RegExp) =>
    eventually('a forbidden reconcile error', async () =>
      errors.find((e) => forbidden(e) && what.test((e as Error).message)),
    );

  test('without watch on the primary kind the manager stops with CAP_ERR_KUBE_FORBIDDEN', async () => {
    await without('gadgets', 'watch', async (running) => {
      await assert.rejects(running.done, forbidden);
    });
  });

  test('without create on the owned kind, server-side apply of a new child is forbidden (and retried)', async () => {
    await without('configmaps', 'create', async () => {
      await gadgets().create(Gadget.newObject({ name: 'g2', namespace: APPS }, { colour: 'blue' }));
      await reconcileForbidden(/configmaps/);
      assert.equal(await admin.resource(ConfigMap, APPS).getOptional('g2-child'), undefined);
    });
  });

  test('without patch on the status subresource, applyStatus is forbidden', async () => {
    await without('gadgets/status', 'patch', async () => {
      await gadgets().create(Gadget.newObject({ name: 'g3', namespace: APPS }, { colour: 'green' }));
      await reconcileForbidden(/status/);
    });
  });

  test('without patch on the primary kind, adding the finalizer is forbidden', async () => {
    await without('gadgets', 'patch', async () => {
      await gadgets().create(Gadget.newObject({ name: 'g4', namespace: APPS }, { colour: 'pink' }));
      await reconcileForbidden(/gadgets/);
    });
  });

  test('without update on the finalizers subresource, a child with blockOwnerDeletion is refused', async () => {
    await without('gadgets/finalizers', 'update', async () => {
      await gadgets().create(Gadget.newObject({ name: 'g6', namespace: APPS }, { colour: 'gold' }));
      await reconcileForbidden(/blockOwnerDeletion|finalizers/);
      assert.equal(await admin.resource(ConfigMap, APPS).getOptional('g6-child'), undefined);
    });
  });

  test('without create on events, the event is dropped with a warning naming the refusal', async () => {
    await without('events', 'create', async () => {
      await gadgets().create(Gadget.newObject({ name: 'g5', namespace: APPS }, { colour: 'grey' }));
      await eventually('warning log', async () =>
        logs.find(
          (l) =>
            l['msg'] === 'event not recorded' && JSON.stringify(l['err']).includes('CAP_ERR_KUBE_FORBIDDEN'),
        ),
      );
    });
  });

  test('without create on leases, the replica never leads and warns on every try', async () => {
    const role = rbacManifests(operator).find(
      (o) => o.kind === 'Role' && o.metadata?.name === 'gadget-operator-leader-election',
    ) as Role;
    await admin.resource(Role, OPERATOR_NS).delete('gadget-operator-leader-election');
    await admin.resource(Role, OPERATOR_NS).create({
      ...role,
      rules: (role.rules ?? []).filter((r) => !r.verbs.includes('create')),
    });
    await admin
      .resource(Lease, OPERATOR_NS)
      .delete('gadget-operator')
      .catch(() => {});
    await eventually('create leases revoked', async () =>
      (await allowed({
        verb: 'create',
        group: 'coordination.k8s.io',
        resource: 'leases',
        namespace: OPERATOR_NS,
      }))
        ? undefined
        : true,
    );
    logs.length = 0;
    const running = await start();
    try {
      await eventually('a warning naming the refusal', async () =>
        logs.find(
          (l) =>
            l['msg'] === 'lease attempt forbidden' &&
            JSON.stringify(l['err']).includes('CAP_ERR_KUBE_FORBIDDEN'),
        ),
      );
      assert.equal(running.manager.isLeader, false);
    } finally {
      await running.stop();
      await applyAll(rbacManifests(operator));
    }
  });

  test('a controller scoped to one namespace runs on a Role there, and sees nothing elsewhere', async () => {
    const scopedNs = 'gadget-scoped';
    const scoped = defineOperator({
      name: 'scoped-operator',
      namespace: OPERATOR_NS,
      leaderElection: false,
      controllers: [
        controller(Gadget).named('scoped').inNamespace(scopedNs).owns(ConfigMap).build(reconcile),
      ],
    });
    const objects = rbacManifests(scoped);
    assert.deepEqual(
      objects.map((o) => o.kind),
      ['ServiceAccount', 'Role', 'RoleBinding'],
    );
    await admin.resource(Namespace).create({ metadata: { name: scopedNs } });
    await applyAll(objects);
    await using client = await clientAs(OPERATOR_NS, 'scoped-operator');
    const review = async (namespace: string) => {
      const res = await client.request({
        method: 'POST',
        path: '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews',
        json: {
          apiVersion: 'authorization.k8s.io/v1',
          kind: 'SelfSubjectAccessReview',
          spec: {
            resourceAttributes: { verb: 'list', group: 'rbac.capstan.dev', resource: 'gadgets', namespace },
          },
        },
      });
      return (
        (JSON.parse(await res.body.text()) as { status?: { allowed?: boolean } }).status?.allowed === true
      );
    };
    assert.equal(await review(scopedNs), true);
    assert.equal(await review(APPS), false, 'no rights outside its namespace');
    const running = await runOperator(scoped, {
      client,
      handleSignals: false,
      logger: createLogger({ level: 'warn', format: 'json', destination: { write: () => {} } }),
      env: { PORT: '0', HOST: '127.0.0.1' },
    });
    try {
      await admin
        .resource(Gadget, scopedNs)
        .create(Gadget.newObject({ name: 's1', namespace: scopedNs }, { colour: 'teal' }));
      const child = await eventually('child in the scoped namespace', () =>
        admin.resource(ConfigMap, scopedNs).getOptional('s1-child'),
      );
      assert.equal(child.data?.['colour'], 'teal');
    } finally {
      await running.stop();
    }
  });
});
