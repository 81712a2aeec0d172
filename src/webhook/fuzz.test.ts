// Fuzz: thousands of random, mangled and truncated AdmissionReview bodies over real HTTPS. The server must
// never crash, and every answer must be well-formed: a 400 with a reason, or an AdmissionReview v1 response
// echoing the request's uid. The PRNG is seeded, so a failure names a case that reproduces.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { ConfigMap, Pod } from 'capstan/kube';
import { createLogger } from 'capstan/runtime';
import { createTestCertificates } from 'capstan/testing';
import { Client } from 'undici';
import { defineWebhook } from './definition.ts';
import { createWebhookServer, type WebhookServer } from './server.ts';
import { podReview } from './testdata/reviews.ts';

const CASES = 3000;
const SEED = 0x5eed_0011;

function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Handlers as users write them: trusting the object's shape, so odd objects make them throw. */
function fuzzWebhook() {
  const webhook = defineWebhook({ name: 'fuzz', failurePolicy: 'Fail', timeoutSeconds: 5 });
  webhook
    .when(Pod)
    .isCreatedOrUpdated()
    .validate((req) => {
      const containers = req.object.spec!.containers;
      if (containers.some((c) => c.securityContext?.privileged)) return req.deny('privileged');
      if (containers.length > 3) req.warn('many containers');
      return req.allow();
    });
  webhook
    .when(Pod)
    .isCreated()
    .mutate((req) => {
      req.object.metadata!.labels = { ...req.object.metadata!.labels, fuzzed: 'yes' };
      req.object.spec!.containers.push({ name: 'sidecar', image: 'sidecar:1' });
    });
  webhook
    .when(ConfigMap)
    .isDeleted()
    .validate((req) => (req.oldObject?.metadata?.name === 'keep' ? req.deny('kept') : req.allow()));
  return webhook;
}

const PATHS = ['/validate--v1-pod', '/mutate--v1-pod', '/validate--v1-configmap'];
const JUNK: unknown[] = [null, true, 0, -1, 1e308, '', 'x', [], {}, [null], { a: {} }, '\u0000', '\ud800'];

function pick<T>(rand: () => number, items: readonly T[]): T {
  return items[Math.floor(rand() * items.length)]!;
}

function randomObject(rand: () => number, depth = 0): unknown {
  const r = rand();
  if (depth > 3 || r < 0.3) return pick(rand, JUNK);
  if (r < 0.5) return Array.from({ length: Math.floor(rand() * 4) }, () => randomObject(rand, depth + 1));
  const object: Record<string, unknown> = {};
  for (let i = Math.floor(rand() * 4); i > 0; i--) {
    object[pick(rand, ['metadata', 'spec', 'labels', 'containers', 'name', '__proto__', '~/', 'x'])] =
      randomObject(rand, depth + 1);
  }
  return object;
}

/** A review that decodes: random operation, kind, object shape (some of which break the handlers). */
function validReview(rand: () => number, uid: string): Record<string, unknown> {
  const operation = pick(rand, ['CREATE', 'UPDATE', 'DELETE', 'CONNECT']);
  const pod = rand() < 0.7;
  const object =
    rand() < 0.5
      ? {
          metadata: { name: pick(rand, ['web', 'keep']), labels: rand() < 0.5 ? { a: 'b' } : undefined },
          spec: {
            containers: Array.from({ length: Math.floor(rand() * 6) }, (_, i) => ({
              name: `c${i}`,
              image: 'img:1',
              ...(rand() < 0.2 && { securityContext: { privileged: true } }),
            })),
          },
        }
      : (randomObject(rand) as Record<string, unknown>);
  const asObject = (v: unknown) => (typeof v === 'object' && v !== null && !Array.isArray(v) ? v : {});
  return podReview({
    uid,
    operation,
    kind: pod ? { group: '', version: 'v1', kind: 'Pod' } : { group: '', version: 'v1', kind: 'ConfigMap' },
    resource: pod
      ? { group: '', version: 'v1', resource: 'pods' }
      : { group: '', version: 'v1', resource: 'configmaps' },
    object: operation === 'DELETE' ? null : asObject(object),
    oldObject: operation === 'CREATE' ? null : asObject(object),
  });
}

/** Break a valid review in one random place: drop, retype or replace a field. */
function mangle(rand: () => number, review: Record<string, unknown>): unknown {
  const copy = JSON.parse(JSON.stringify(review));
  const request = copy.request as Record<string, unknown>;
  const r = rand();
  if (r < 0.15) copy.apiVersion = pick(rand, ['admission.k8s.io/v1beta1', 'v1', 7, null]);
  else if (r < 0.25) copy.kind = pick(rand, ['AdmissionReviewList', 'Pod', null, {}]);
  else if (r < 0.35) delete copy.request;
  else if (r < 0.45) copy.request = pick(rand, JUNK);
  else {
    const field = pick(rand, Object.keys(request));
    if (rand() < 0.5) delete request[field];
    else request[field] = randomObject(rand);
  }
  return copy;
}

interface Sent {
  body: string;
  /** The uid a 200 answer must echo, when the body is a JSON object carrying one. */
  uid: string | undefined;
}

function randomBody(rand: () => number, i: number): Sent {
  const uid = `uid-${i}-${Math.floor(rand() * 1e9)}`;
  const r = rand();
  let body: string;
  if (r < 0.25) body = JSON.stringify(validReview(rand, uid));
  else if (r < 0.5) body = JSON.stringify(mangle(rand, validReview(rand, uid)));
  else if (r < 0.8) {
    // Truncated anywhere, including inside a string or an escape.
    const whole = JSON.stringify(validReview(rand, uid));
    body = whole.slice(0, Math.floor(rand() * whole.length));
  } else if (r < 0.9) {
    // Random bytes, not necessarily UTF-8.
    body = Buffer.from(
      Array.from({ length: Math.floor(rand() * 200) }, () => Math.floor(rand() * 256)),
    ).toString('latin1');
  } else if (r < 0.95) {
    // Deep nesting inside the object: the parser copes; handlers and the diff may not (the failure policy answers).
    const depth = 1000 + Math.floor(rand() * 50_000);
    const review = JSON.stringify(validReview(rand, uid));
    body = review.replace('"metadata":', `"deep":${'['.repeat(depth)}${']'.repeat(depth)},"metadata":`);
  } else {
    body = JSON.stringify(pick(rand, JUNK));
  }
  let uidSent: string | undefined;
  try {
    const parsed = JSON.parse(body);
    const candidate = parsed?.request?.uid;
    if (typeof candidate === 'string') uidSent = candidate;
  } catch {
    uidSent = undefined;
  }
  return { body, uid: uidSent };
}

let server: WebhookServer;
let client: Client;

before(async () => {
  const certs = await createTestCertificates();
  server = createWebhookServer(fuzzWebhook(), {
    certificate: { certPem: certs.certPem, keyPem: certs.keyPem },
    port: 0,
    host: '127.0.0.1',
    logger: createLogger({ name: 'fuzz', level: 'silent' }),
    lifecycle: { drainDelayMs: 0, idleGraceMs: 100 },
  });
  await server.start();
  client = new Client(server.url, { connect: { ca: certs.caPem }, pipelining: 1 });
});

after(async () => {
  await client?.close();
  await server?.stop();
});

test(`${CASES} random and truncated AdmissionReview bodies: no crash, every answer well-formed`, async () => {
  const rand = prng(SEED);
  const statuses = new Map<number, number>();
  for (let i = 0; i < CASES; i++) {
    const sent = randomBody(rand, i);
    const path =
      pick(rand, PATHS) + (rand() < 0.1 ? `?timeout=${pick(rand, ['1s', 'x', '-5s', '0', '99999h'])}` : '');
    const where = `case ${i} (seed ${SEED}) ${path}: ${sent.body.slice(0, 200)}`;
    const res = await client.request({
      method: 'POST',
      path,
      headers: { 'content-type': 'application/json' },
      body: sent.body,
    });
    const text = await res.body.text();
    statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
    let answer: Record<string, unknown>;
    try {
      answer = JSON.parse(text);
    } catch {
      assert.fail(`${where}: answer is not JSON: ${text.slice(0, 200)}`);
    }
    if (res.statusCode === 400) {
      assert.equal(answer['error'], 'bad request', where);
      assert.ok(typeof answer['reason'] === 'string' && answer['reason'].length > 0, where);
      continue;
    }
    assert.equal(res.statusCode, 200, `${where}: ${text.slice(0, 300)}`);
    assert.equal(answer['apiVersion'], 'admission.k8s.io/v1', where);
    assert.equal(answer['kind'], 'AdmissionReview', where);
    const response = answer['response'] as Record<string, unknown>;
    assert.equal(response['uid'], sent.uid, where);
    assert.equal(typeof response['allowed'], 'boolean', where);
    if (response['allowed'] === false) {
      const status = response['status'] as { code?: unknown; message?: unknown };
      assert.ok(Number.isInteger(status.code) && typeof status.message === 'string', where);
    }
    if (response['patch'] !== undefined) {
      assert.equal(response['patchType'], 'JSONPatch', where);
      const patch = JSON.parse(Buffer.from(String(response['patch']), 'base64').toString('utf8'));
      assert.ok(Array.isArray(patch) && patch.length > 0, where);
    }
    if (response['warnings'] !== undefined) {
      assert.ok(
        (response['warnings'] as unknown[]).every((w) => typeof w === 'string'),
        where,
      );
    }
  }
  // Both kinds of answer were exercised, and nothing else came back.
  assert.deepEqual([...statuses.keys()].sort(), [200, 400]);
  assert.ok(statuses.get(200)! > CASES / 10, JSON.stringify([...statuses]));
  // And every road through the server: handlers that allowed, denied, patched and broke (answered by policy).
  const metrics = await (await client.request({ method: 'GET', path: '/metrics' })).body.text();
  for (const outcome of ['allowed', 'denied', 'patched', 'failed-closed']) {
    assert.match(
      metrics,
      new RegExp(`capstan_webhook_admissions_total\\{webhook="[^"]+",outcome="${outcome}"\\} [1-9]`),
      outcome,
    );
  }
  assert.match(metrics, /capstan_webhook_bad_requests_total\{webhook="[^"]+",reason="decode"\} [1-9]/);
  const ready = await client.request({ method: 'GET', path: '/readyz' });
  assert.equal(ready.statusCode, 200);
  await ready.body.dump();
});
