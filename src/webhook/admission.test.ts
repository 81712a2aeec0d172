import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigMap, Pod } from 'capstan/kube';
import { createLogger } from 'capstan/runtime';
import { admit } from './admission.ts';
import { defineWebhook, type Verdict, type Webhook } from './definition.ts';
import { decodeAdmissionReview } from './review.ts';
import { podReview } from './testdata/reviews.ts';

const log = createLogger({ name: 'admit-test', level: 'silent' });

function run(webhook: Webhook, path: string, overrides: Record<string, unknown>) {
  const set = webhook.handlerSets().find((s) => s.path === path)!;
  const request = decodeAdmissionReview(JSON.stringify(podReview(overrides)));
  return admit(set, request, { options: webhook.options, log, deadlineMs: 1000 });
}

test('validating handlers run in order; the first deny ends the run, warnings so far are kept', async () => {
  const calls: string[] = [];
  const webhook = defineWebhook({ name: 'order' });
  webhook
    .when(Pod)
    .isCreated()
    .validate((req) => {
      calls.push('first');
      req.warn('looked');
      return req.allow();
    });
  webhook
    .when(Pod)
    .isCreated()
    .validate((req) => {
      calls.push('second');
      return req.deny('no', 999);
    });
  webhook
    .when(Pod)
    .isCreated()
    .validate((req) => {
      calls.push('third');
      return req.allow();
    });
  const result = await run(webhook, '/validate--v1-pod', {});
  assert.deepEqual(calls, ['first', 'second']);
  assert.equal(result.outcome, 'denied');
  // A code outside 400-599 becomes 403.
  assert.deepEqual(result.response.status, { code: 403, message: 'no', reason: 'Forbidden' });
  assert.deepEqual(result.response.warnings, ['looked']);
});

test('a mutation may deny; a cycle left in the object fails by the policy instead of crashing', async () => {
  const webhook = defineWebhook({ name: 'mutations' });
  webhook
    .when(Pod)
    .isCreated()
    .mutate((req) => {
      if (req.name === 'deny-me') return req.deny('not this one');
      if (req.name === 'cycle') (req.object as Record<string, unknown>)['self'] = req.object;
      return undefined;
    });
  const denied = await run(webhook, '/mutate--v1-pod', { name: 'deny-me' });
  assert.equal(denied.outcome, 'denied');
  assert.equal(denied.response.patch, undefined);
  const cycle = await run(webhook, '/mutate--v1-pod', { name: 'cycle' });
  assert.equal(cycle.outcome, 'failed-closed');
  assert.equal(cycle.failure?.code, 'CAP_ERR_WEBHOOK_HANDLER');
  assert.match(cycle.response.status?.message ?? '', /circular/);
});

test('bindings match by resource, subresource, operation, namespace and labels (oldObject on DELETE)', async () => {
  const seen: string[] = [];
  const webhook = defineWebhook({ name: 'match' });
  const record = (what: string) => (req: { allow(): Verdict }) => {
    seen.push(what);
    return req.allow();
  };
  webhook.when(Pod).isConnected('exec').validate(record('exec'));
  webhook.when(Pod).isDeleted().withLabel('protected').validate(record('delete-protected'));
  webhook.when(Pod).isCreated().inNamespace('apps').validate(record('create-in-apps'));
  webhook.when(ConfigMap).isCreated().validate(record('configmap'));
  const object = { metadata: { name: 'p', labels: { protected: 'yes' } } };
  await run(webhook, '/validate--v1-pod', {
    operation: 'CONNECT',
    subResource: 'exec',
    object: { command: ['sh'] },
  });
  await run(webhook, '/validate--v1-pod', { operation: 'CONNECT', subResource: 'attach', object: {} });
  await run(webhook, '/validate--v1-pod', { operation: 'DELETE', object: null, oldObject: object });
  await run(webhook, '/validate--v1-pod', { operation: 'DELETE', object: null, oldObject: { metadata: {} } });
  await run(webhook, '/validate--v1-pod', { namespace: 'apps' });
  const none = await run(webhook, '/validate--v1-pod', { namespace: 'other' });
  assert.deepEqual(seen, ['exec', 'delete-protected', 'create-in-apps']);
  assert.equal(none.matched, 0);
  assert.deepEqual(none.response, { uid: '705ab4f5-6393-11e8-b7cc-42010a800002', allowed: true });
  // A review of another resource sent to this path (a misconfigured rule) matches nothing here.
  const wrong = await run(webhook, '/validate--v1-configmap', {});
  assert.equal(wrong.matched, 0);
});
