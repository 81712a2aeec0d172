// The Deployment is written against runOperator's contract; these checks fail when one changes without the
// other. What the apiserver says of the output is in src/cli/kube.test.ts (kubectl apply, strict validation).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { logConfig } from '../runtime/index.ts';
import { Action } from './action.ts';
import { ConfigMap, type Deployment } from './builtin.ts';
import { controller } from './controller.ts';
import { OPERATOR_PORT, operatorManifests } from './manifests.ts';
import { defineOperator } from './operator.ts';
import { operatorConfig, operatorShutdown, terminationGraceSeconds } from './run-operator.ts';

const operator = defineOperator({
  name: 'mirror-operator',
  controllers: [controller(ConfigMap).build(async () => Action.awaitChange())],
});

function deploymentOf(objects: ReturnType<typeof operatorManifests>): Deployment {
  return objects.find((o) => o.kind === 'Deployment') as Deployment;
}

test('every variable the Deployment sets is one runOperator reads, and PORT is the probed port', () => {
  const deployment = deploymentOf(operatorManifests(operator, { image: 'x', logLevel: 'debug' }));
  const container = deployment.spec?.template.spec?.containers[0];
  const read = new Set([...operatorConfig.entries, ...logConfig.entries].map((e) => e.env));
  for (const e of container?.env ?? []) assert.ok(read.has(e.name), `${e.name} is read by runOperator`);
  assert.equal(container?.env?.find((e) => e.name === 'PORT')?.value, String(OPERATOR_PORT));
  assert.deepEqual(container?.ports, [{ name: 'http', containerPort: OPERATOR_PORT, protocol: 'TCP' }]);
});

test('the grace period covers preStop and every shutdown deadline; reconciles drain inside the job deadline', () => {
  const s = operatorShutdown;
  const needMs =
    s.preStopSeconds * 1000 + s.drainDelayMs + s.drainTimeoutMs + s.jobTimeoutMs + s.hooks * s.hookTimeoutMs;
  assert.ok(terminationGraceSeconds() * 1000 >= needMs, `${terminationGraceSeconds()} s >= ${needMs} ms`);
  assert.ok(
    s.reconcileDrainMs < s.jobTimeoutMs,
    'the lease is released after the drain, before the job deadline',
  );
  const pod = deploymentOf(operatorManifests(operator, { image: 'x' })).spec?.template.spec;
  assert.equal(pod?.terminationGracePeriodSeconds, terminationGraceSeconds());
  assert.equal(pod?.containers[0]?.lifecycle?.preStop?.sleep?.seconds, s.preStopSeconds);
});

test('replicas: two with leader election, one without; the PDB always lets one pod go', () => {
  assert.equal(deploymentOf(operatorManifests(operator, { image: 'x' })).spec?.replicas, 2);
  const single = defineOperator({ ...operator.definition, leaderElection: false });
  const objects = operatorManifests(single, { image: 'x' });
  assert.equal(deploymentOf(objects).spec?.replicas, 1);
  const env = deploymentOf(objects).spec?.template.spec?.containers[0]?.env ?? [];
  assert.equal(env.find((e) => e.name === 'LEADER_ELECTION')?.value, 'false');
  const pdb = objects.find((o) => o.kind === 'PodDisruptionBudget') as { spec: { maxUnavailable: number } };
  assert.equal(pdb.spec.maxUnavailable, 1);
  assert.equal(
    objects.filter((o) => o.kind === 'Role').length,
    0,
    'no leader-election Role without election',
  );
});
