import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WebhookErrorCode } from './errors.ts';
import { decodeAdmissionReview, decodeFast, decodeWithSchema } from './review.ts';
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

test('a body of bad fields up to the size limit is refused in one pass, naming each field once', () => {
  const groups = Array.from({ length: 300_000 }, (_, i) => i);
  const extra = Object.fromEntries(Array.from({ length: 30_000 }, (_, i) => [`k${i}`, 1]));
  const body = JSON.stringify(podReview({ userInfo: { username: 'x', groups, extra } }));
  assert.ok(body.length < 3 * 2 ** 20);
  const started = performance.now();
  const problems = problemsOf(body);
  const ms = performance.now() - started;
  assert.deepEqual(problems, [
    'request.userInfo.groups: must be a list of strings',
    'request.userInfo.extra: must map names to lists of strings',
  ]);
  // Not a timing goal: how long the worst body took, for the log.
  process.stdout.write(
    `# decoded ${(body.length / 2 ** 20).toFixed(1)} MiB of bad fields in ${ms.toFixed(0)} ms\n`,
  );
});

test('more than 20 problems: the first 20 are named and the rest counted', () => {
  const review = podReview({});
  const request = review['request'] as Record<string, unknown>;
  // 26 bad fields: each of the review's top-level request fields replaced by a number, plus extras.
  for (const key of [
    'uid',
    'kind',
    'resource',
    'operation',
    'userInfo',
    'name',
    'namespace',
    'subResource',
    'requestSubResource',
    'dryRun',
    'object',
    'oldObject',
    'options',
  ]) {
    request[key] = 7;
  }
  request['kind'] = { group: 1, version: 2, kind: 3 };
  request['resource'] = { group: 1, version: 2, resource: 3 };
  request['requestKind'] = { group: 1, version: 2, kind: 3 };
  request['requestResource'] = { group: 1, version: 2, resource: 3 };
  request['userInfo'] = { username: 1, uid: 2, groups: 3, extra: 4 };
  const problems = problemsOf(JSON.stringify(review));
  assert.equal(problems.length, 21);
  assert.match(problems[20]!, /^and \d+ more$/);
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

test('the fast decoder takes the everyday reviews and answers exactly what the schema does, or leaves the input to it', () => {
  // Everyday reviews take the fast path.
  for (const review of [
    podReview(),
    podReview({ operation: 'UPDATE', oldObject: { metadata: { name: 'web' } }, dryRun: true }),
    podReview({ operation: 'DELETE', object: null, oldObject: { a: 1 }, requestKind: null, name: '' }),
    podReview({ futureField: { x: 1 }, userInfo: { username: 'u', groups: null, extra: { scopes: ['a'] } } }),
  ]) {
    const json = JSON.parse(JSON.stringify(review)) as unknown;
    const fast = decodeFast(json);
    assert.ok(fast, JSON.stringify(review));
    assert.deepStrictEqual(fast, decodeWithSchema(json));
  }
  // Every field of a review replaced by odd values, removed, or given odd keys: whatever the fast decoder
  // accepts, the schema accepts with the same output (what it refuses, the schema decodes or explains).
  const odd: unknown[] = [null, '', 'x', 0, 7, true, false, [], ['a'], [1], {}, { a: 1 }, { __proto__: 1 }];
  const base = podReview() as { request: Record<string, unknown> };
  const fields = [...Object.keys(base.request), 'subResource', 'requestSubResource'];
  const nested: Record<string, string[]> = {
    kind: ['group', 'version', 'kind'],
    resource: ['group', 'version', 'resource'],
    requestKind: ['group', 'version', 'kind'],
    requestResource: ['group', 'version', 'resource'],
    userInfo: ['username', 'uid', 'groups', 'extra'],
  };
  let fastCount = 0;
  let cases = 0;
  const check = (review: unknown) => {
    const json = JSON.parse(JSON.stringify(review)) as unknown;
    cases++;
    const fast = decodeFast(json);
    if (fast === undefined) return;
    fastCount++;
    assert.deepStrictEqual(fast, decodeWithSchema(json), JSON.stringify(review));
  };
  for (const top of ['apiVersion', 'kind', 'request']) {
    for (const v of odd) check({ ...base, [top]: v });
  }
  for (const op of ['CREATE', 'UPDATE', 'DELETE', 'CONNECT']) {
    for (const field of fields) {
      const without: Record<string, unknown> = { ...base.request, operation: op };
      delete without[field];
      check({ ...base, request: without });
      for (const v of odd) check({ ...base, request: { ...base.request, operation: op, [field]: v } });
      for (const inner of nested[field] ?? []) {
        const parent = (base.request[field] ?? {}) as Record<string, unknown>;
        for (const v of odd) {
          check({ ...base, request: { ...base.request, operation: op, [field]: { ...parent, [inner]: v } } });
        }
      }
    }
  }
  // An object with a "__proto__" key of its own (JSON.parse makes one): the schema drops it, the fast
  // decoder leaves such objects to the schema.
  const proto = JSON.parse(
    JSON.stringify(podReview()).replace('"object":{', '"object":{"__proto__":{"polluted":1},'),
  ) as unknown;
  assert.equal(decodeFast(proto), undefined);
  assert.equal(
    (decodeAdmissionReview(JSON.stringify(proto)).object as { polluted?: number }).polluted,
    undefined,
  );
  process.stdout.write(`# ${cases} cases, ${fastCount} decoded fast\n`);
  assert.ok(cases > 500 && fastCount > 50, `${cases} cases, ${fastCount} decoded fast`);
});
