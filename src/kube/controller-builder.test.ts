import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Action } from './action.ts';
import { ConfigMap, Deployment, Secret } from './builtin.ts';
import { controller } from './controller.ts';
import { KubeErrorCode, TerminalError } from './errors.ts';
import { controllerOf, ownerReference } from './owner.ts';
import { predicates } from './predicates.ts';
import { defaultErrorPolicy, requestKey, requestOf } from './reconcile.ts';

test('the builder records plain data, and each step returns a new builder', async () => {
  const base = controller(ConfigMap);
  const mapper = (s: Secret) => [{ namespace: s.metadata?.namespace, name: `${s.metadata?.name}-config` }];
  const generation = predicates.generationChanged<ConfigMap>();
  const built = base
    .named('config-mirror')
    .inNamespace('apps')
    .withLabelSelector({ mirror: 'yes' })
    .owns(Deployment, { metadataOnly: true })
    .watches(Secret, mapper)
    .withPredicates(generation)
    .withTuning({ concurrency: 3, resyncMs: 60_000 });
  assert.deepEqual(base.spec.watches.length, 1, 'the first builder is unchanged');
  assert.equal(base.spec.name, 'configmap', 'default name: the kind in lower case');
  const spec = built.spec;
  assert.equal(spec.name, 'config-mirror');
  assert.equal(spec.namespace, 'apps');
  assert.deepEqual(spec.labelSelector, { mirror: 'yes' });
  assert.deepEqual(
    spec.watches.map((w) => [w.type.kind, w.relation, w.predicates.length]),
    [
      ['ConfigMap', 'for', 1],
      ['Deployment', 'owns', 0],
      ['Secret', 'watches', 0],
    ],
  );
  assert.equal(spec.watches[0]?.predicates[0], generation);
  assert.equal(spec.watches[2]?.mapper, mapper);
  assert.equal(spec.watches[1]?.metadataOnly, true);
  assert.equal(spec.watches[2]?.metadataOnly, undefined);
  assert.deepEqual(spec.tuning, { concurrency: 3, resyncMs: 60_000 });
  const reconcile = async () => Action.awaitChange();
  const def = built.build(reconcile);
  assert.equal(def.reconcile, reconcile);
  assert.equal(def.errorPolicy, defaultErrorPolicy);
  assert.equal(JSON.parse(JSON.stringify(def.spec)).watches[1].type.plural, 'deployments', 'serialisable');
});

test('the default error policy: TerminalError waits for a change, anything else backs off', () => {
  assert.deepEqual(defaultErrorPolicy(new TerminalError('spec can never work')), Action.awaitChange());
  assert.deepEqual(defaultErrorPolicy(new Error('flaky')), Action.backoff());
  assert.equal(new TerminalError('x').code, KubeErrorCode.terminal);
});

test('request keys round-trip, namespaced and cluster-scoped', () => {
  assert.equal(requestKey({ namespace: 'ns', name: 'a' }), 'ns/a');
  assert.equal(requestKey({ name: 'node-1' }), 'node-1');
  assert.deepEqual(requestOf('ns/a'), { namespace: 'ns', name: 'a' });
  assert.deepEqual(requestOf('node-1'), { name: 'node-1' });
});

test('owner references: the controlling owner of a kind, any version of its group', () => {
  const owner = { metadata: { name: 'web', uid: 'u-1' } };
  const ref = ownerReference(Deployment, owner);
  assert.deepEqual(ref, {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    name: 'web',
    uid: 'u-1',
    controller: true,
    blockOwnerDeletion: true,
  });
  const child = { metadata: { ownerReferences: [{ ...ref, apiVersion: 'apps/v2' }] } };
  assert.equal(controllerOf(child, Deployment)?.name, 'web');
  assert.equal(controllerOf(child, ConfigMap), undefined);
  const notController = { metadata: { ownerReferences: [{ ...ref, controller: false }] } };
  assert.equal(controllerOf(notController, Deployment), undefined);
  assert.throws(
    () => ownerReference(Deployment, { metadata: { name: 'x' } }),
    (e: unknown) => (e as { code?: string }).code === KubeErrorCode.usage,
  );
});
