import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WebhookErrorCode } from './errors.ts';
import { decodeAdmissionReview } from './review.ts';
import { podReview } from './testdata/reviews.ts';

function problemsOf(body: string): string[] {
  try {
    decodeAdmissionReview(body);
  } catch (err) {
    const e = err as { code?: string; problems?: string[] };
    assert.equal(e.code, WebhookErrorCode.badRequest);
    return e.problems ?? [];
  }
  assert.fail(`decoded: ${body}`);
}

test('a review as the apiserver sends it decodes; null oldObject is absent; unknown fields are tolerated', () => {
  const review = podReview({ futureField: { x: 1 } });
  const request = decodeAdmissionReview(Buffer.from(JSON.stringify(review)));
  assert.equal(request.uid, '705ab4f5-6393-11e8-b7cc-42010a800002');
  assert.equal(request.operation, 'CREATE');
  assert.equal(request.oldObject, undefined);
  assert.deepEqual(request.object, (review['request'] as Record<string, unknown>)['object']);
  assert.equal(request.userInfo.groups?.length, 2);
});

test('each wrong input says what is wrong', () => {
  assert.match(problemsOf('{"apiVersion": ')[0]!, /not JSON/);
  assert.match(problemsOf('[1]')[0]!, /not a JSON object but an array/);
  assert.match(problemsOf('null')[0]!, /null/);
  assert.match(
    problemsOf(JSON.stringify({ ...podReview(), apiVersion: 'admission.k8s.io/v1beta1' }))[0]!,
    /apiVersion must be admission\.k8s\.io\/v1, not "admission\.k8s\.io\/v1beta1"/,
  );
  assert.match(
    problemsOf(JSON.stringify({ ...podReview(), kind: 'Pod' }))[0]!,
    /kind must be AdmissionReview/,
  );
  assert.match(problemsOf(JSON.stringify({ ...podReview(), request: undefined }))[0]!, /^request/);
  assert.match(problemsOf(JSON.stringify(podReview({ uid: undefined })))[0]!, /^request\.uid/);
  assert.match(problemsOf(JSON.stringify(podReview({ uid: '' })))[0]!, /request\.uid is empty/);
  assert.match(problemsOf(JSON.stringify(podReview({ operation: 'PATCH' })))[0]!, /^request\.operation/);
  assert.match(problemsOf(JSON.stringify(podReview({ object: null })))[0]!, /CREATE without request\.object/);
  assert.match(
    problemsOf(JSON.stringify(podReview({ operation: 'UPDATE' })))[0]!,
    /UPDATE without request\.oldObject/,
  );
  assert.match(problemsOf(JSON.stringify(podReview({ object: [1] })))[0]!, /^request\.object/);
  assert.match(
    problemsOf(JSON.stringify(podReview({ kind: { group: '', kind: 'Pod' } })))[0]!,
    /^request\.kind\.version/,
  );
  assert.match(problemsOf(JSON.stringify(podReview({ userInfo: undefined })))[0]!, /^request\.userInfo/);
  // Several problems at once.
  assert.equal(problemsOf(JSON.stringify(podReview({ uid: 7, operation: 'X', resource: {} }))).length, 5);
});

test('DELETE and CONNECT need no object', () => {
  const del = decodeAdmissionReview(
    JSON.stringify(
      podReview({ operation: 'DELETE', object: null, oldObject: { metadata: { name: 'web' } } }),
    ),
  );
  assert.equal(del.object, undefined);
  assert.deepEqual(del.oldObject, { metadata: { name: 'web' } });
  const connect = decodeAdmissionReview(
    JSON.stringify(
      podReview({
        operation: 'CONNECT',
        subResource: 'exec',
        object: { kind: 'PodExecOptions', command: ['sh'] },
      }),
    ),
  );
  assert.equal(connect.subResource, 'exec');
});
