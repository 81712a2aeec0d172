// The webhook server over real HTTPS: undici for the admission round trips, node:https where the test
// needs the socket (certificate rotation, a body cut short).
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import https from 'node:https';
import { Writable } from 'node:stream';
import { after, before, test } from 'node:test';
import type { TLSSocket } from 'node:tls';
import { ConfigMap, Pod } from 'capstan/kube';
import { CertificateHolder, createCertAuthority, createLogger, type Logger } from 'capstan/runtime';
import { createTestCertificates, type TestCertificates } from 'capstan/testing';
import { Client } from 'undici';
import { defineWebhook, type Webhook } from './definition.ts';
import { applyJsonPatch, type JsonPatchOperation } from './json-patch.ts';
import { createWebhookServer, type WebhookServer } from './server.ts';
import { podReview } from './testdata/reviews.ts';

let certs: TestCertificates;
const quiet = createLogger({ name: 'webhook-test', level: 'silent' });

/** Pod policy: no privileged or root containers, a sidecar for pods labelled inject=true. */
function podPolicy(failurePolicy: 'Fail' | 'Ignore' = 'Fail'): Webhook {
  const webhook = defineWebhook({
    name: 'pod-policy',
    failurePolicy,
    timeoutSeconds: 2,
    deadlineMarginMs: 1500,
  });
  webhook
    .when(Pod)
    .isCreated()
    .validate((req) => {
      for (const c of req.object.spec?.containers ?? []) {
        if (c.securityContext?.privileged) return req.deny(`container ${c.name} is privileged`);
        if (c.securityContext?.runAsUser === 0) return req.deny(`container ${c.name} runs as root`, 422);
        if (c.image?.endsWith(':latest')) req.warn(`container ${c.name} uses a :latest image`);
      }
      return req.allow();
    });
  webhook
    .when(Pod)
    .isCreated()
    .withLabel('inject', 'true')
    .mutate((req) => {
      const pod = req.object;
      pod.metadata!.labels!['sidecar.capstan.dev/injected'] = 'true';
      pod.spec!.containers.push({ name: 'proxy', image: 'proxy:1' });
    });
  webhook
    .when(Pod)
    .isCreated()
    .inNamespace('quiet')
    .mutate((req) => {
      req.object.metadata!.annotations = { quiet: 'yes' };
    });
  webhook
    .when(ConfigMap)
    .isCreated()
    .validate(async (req) => {
      const name = req.object.metadata?.name;
      if (name === 'throws') throw new Error('the policy store is down');
      if (name === 'no-verdict') return undefined as never;
      if (name === 'slow') {
        // Overruns the 1 s deadline; sees the abort.
        await new Promise((resolve) => req.signal.addEventListener('abort', resolve, { once: true }));
        return req.allow();
      }
      return req.allow();
    });
  return webhook;
}

async function serve(
  webhook: Webhook,
  options: { maxBodyBytes?: number; holder?: CertificateHolder; logger?: Logger } = {},
) {
  const server = createWebhookServer(webhook, {
    certificate: options.holder ?? { certPem: certs.certPem, keyPem: certs.keyPem },
    port: 0,
    host: '127.0.0.1',
    logger: options.logger ?? quiet,
    lifecycle: { drainDelayMs: 0, idleGraceMs: 100 },
    ...(options.maxBodyBytes !== undefined && { maxBodyBytes: options.maxBodyBytes }),
  });
  await server.start();
  return server;
}

function clientFor(server: WebhookServer, ca = certs.caPem): Client {
  return new Client(server.url, { connect: { ca } });
}

interface Answer {
  status: number;
  // biome-ignore lint/suspicious/noExplicitAny: the test reads answers by path and asserts each value.
  body: Record<string, any>;
}

async function post(
  client: Client,
  path: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<Answer> {
  const res = await client.request({
    method: 'POST',
    path,
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.body.text();
  return { status: res.statusCode, body: JSON.parse(text) };
}

function pod(spec: Record<string, unknown>, metadata: Record<string, unknown> = {}) {
  return podReview({
    namespace: (metadata['namespace'] as string | undefined) ?? 'default',
    object: {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'web', namespace: 'default', labels: {}, ...metadata },
      spec,
    },
  });
}

function configMapReview(name: string) {
  return podReview({
    uid: `cm-${name}`,
    kind: { group: '', version: 'v1', kind: 'ConfigMap' },
    resource: { group: '', version: 'v1', resource: 'configmaps' },
    object: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: 'default' } },
  });
}

let server: WebhookServer;
let client: Client;

before(async () => {
  certs = await createTestCertificates();
  server = await serve(podPolicy());
  client = clientFor(server);
});

after(async () => {
  await client?.close();
  await server?.stop();
});

test('served over TLS only, one path per kind and type, health and metrics beside them', async () => {
  assert.match(server.url, /^https:\/\/127\.0\.0\.1:\d+$/);
  assert.deepEqual(server.paths, ['/validate--v1-pod', '/mutate--v1-pod', '/validate--v1-configmap']);
  const ready = await client.request({ method: 'GET', path: '/readyz' });
  assert.equal(ready.statusCode, 200);
  await ready.body.dump();
  const missing = await post(client, '/validate--v1-secret', pod({ containers: [] }));
  assert.equal(missing.status, 404);
  // Plain HTTP to the TLS port gets no admission answer.
  const plain = new Client(server.url.replace('https', 'http'));
  await assert.rejects(plain.request({ method: 'POST', path: '/validate--v1-pod', body: '{}' }));
  await plain.close();
});

test('validate: allowed with warnings, denied with code and message, uid echoed', async () => {
  const ok = await post(
    client,
    '/validate--v1-pod',
    pod({ containers: [{ name: 'app', image: 'app:latest' }] }),
  );
  assert.equal(ok.status, 200);
  assert.equal(ok.body['apiVersion'], 'admission.k8s.io/v1');
  assert.equal(ok.body['kind'], 'AdmissionReview');
  assert.deepEqual(ok.body['response'], {
    uid: '705ab4f5-6393-11e8-b7cc-42010a800002',
    allowed: true,
    warnings: ['container app uses a :latest image'],
  });
  const privileged = await post(
    client,
    '/validate--v1-pod',
    pod({ containers: [{ name: 'app', image: 'app:1', securityContext: { privileged: true } }] }),
  );
  assert.deepEqual(privileged.body['response'], {
    uid: '705ab4f5-6393-11e8-b7cc-42010a800002',
    allowed: false,
    status: { code: 403, message: 'container app is privileged', reason: 'Forbidden' },
  });
  const root = await post(
    client,
    '/validate--v1-pod',
    pod({ containers: [{ name: 'db', image: 'db:1', securityContext: { runAsUser: 0 } }] }),
  );
  assert.deepEqual(root.body['response']['status'], {
    code: 422,
    message: 'container db runs as root',
    reason: 'Invalid',
  });
});

test('mutate: the JSON Patch is the diff of what the handler changed; no match, no patch', async () => {
  const review = pod({ containers: [{ name: 'app', image: 'app:1' }] }, { labels: { inject: 'true' } });
  const answer = await post(client, '/mutate--v1-pod', review);
  const response = answer.body['response'];
  assert.equal(response['allowed'], true);
  assert.equal(response['patchType'], 'JSONPatch');
  const patch = JSON.parse(Buffer.from(response['patch'], 'base64').toString('utf8'));
  assert.deepEqual(patch, [
    { op: 'add', path: '/metadata/labels/sidecar.capstan.dev~1injected', value: 'true' },
    { op: 'add', path: '/spec/containers/1', value: { name: 'proxy', image: 'proxy:1' } },
  ]);
  const object = (review['request'] as Record<string, unknown>)['object'];
  const patched = applyJsonPatch(object, patch as JsonPatchOperation[]) as {
    spec: { containers: Array<{ name: string }> };
  };
  assert.deepEqual(
    patched.spec.containers.map((c) => c.name),
    ['app', 'proxy'],
  );

  const notLabelled = await post(client, '/mutate--v1-pod', pod({ containers: [] }));
  assert.deepEqual(notLabelled.body['response'], {
    uid: '705ab4f5-6393-11e8-b7cc-42010a800002',
    allowed: true,
  });
  // Two bindings match: one copy, one patch with both changes.
  const both = await post(
    client,
    '/mutate--v1-pod',
    pod({ containers: [] }, { namespace: 'quiet', labels: { inject: 'true' } }),
  );
  const ops = JSON.parse(Buffer.from(both.body['response']['patch'], 'base64').toString('utf8'));
  assert.deepEqual(
    ops.map((op: { path: string }) => op.path),
    ['/metadata/labels/sidecar.capstan.dev~1injected', '/metadata/annotations', '/spec/containers/0'],
  );
});

test('failurePolicy Fail: a throwing, verdict-less or late handler is denied with 500, logged and counted', async () => {
  const thrown = await post(client, '/validate--v1-configmap', configMapReview('throws'));
  assert.equal(thrown.status, 200);
  assert.equal(thrown.body['response']['uid'], 'cm-throws');
  assert.equal(thrown.body['response']['allowed'], false);
  assert.equal(thrown.body['response']['status']['code'], 500);
  assert.equal(thrown.body['response']['status']['reason'], 'InternalError');
  assert.match(
    thrown.body['response']['status']['message'],
    /the policy store is down; denied by failurePolicy Fail/,
  );

  const none = await post(client, '/validate--v1-configmap', configMapReview('no-verdict'));
  assert.match(none.body['response']['status']['message'], /returned no verdict/);

  const slow = await post(client, '/validate--v1-configmap', configMapReview('slow'));
  assert.equal(slow.body['response']['allowed'], false);
  assert.equal(slow.body['response']['status']['reason'], 'Timeout');
  assert.match(slow.body['response']['status']['message'], /within 1000 ms/);

  // The apiserver's own ?timeout= shortens the deadline (1 s minus the 1 s margin leaves nothing: half of it).
  const asked = await post(client, '/validate--v1-configmap?timeout=1s', configMapReview('slow'));
  assert.match(asked.body['response']['status']['message'], /within 500 ms/);

  const metrics = await (await client.request({ method: 'GET', path: '/metrics' })).body.text();
  assert.match(
    metrics,
    /capstan_webhook_handler_failures_total\{webhook="\/validate--v1-configmap",reason="handler",policy="Fail"\} 2/,
  );
  assert.match(
    metrics,
    /capstan_webhook_handler_failures_total\{webhook="\/validate--v1-configmap",reason="timeout",policy="Fail"\} 2/,
  );
  assert.match(
    metrics,
    /capstan_webhook_admissions_total\{webhook="\/validate--v1-pod",outcome="denied"\} \d+/,
  );
  assert.match(
    metrics,
    /controller_runtime_webhook_requests_total\{webhook="\/mutate--v1-pod",code="200"\} \d+/,
  );
});

test('failurePolicy Ignore: a failing handler lets the request through unchanged, with a warning', async () => {
  const webhook = podPolicy('Ignore');
  webhook
    .when(Pod)
    .isCreated()
    .withLabel('inject', 'true')
    .mutate(() => {
      throw new Error('sidecar registry unreachable');
    });
  const lines: Array<Record<string, unknown>> = [];
  const destination = new Writable({
    write(chunk, _encoding, callback) {
      for (const line of String(chunk).split('\n')) if (line) lines.push(JSON.parse(line));
      callback();
    },
  });
  const ignoring = await serve(webhook, {
    logger: createLogger({ name: 'ignore', format: 'json', destination }),
  });
  const c = clientFor(ignoring);
  try {
    const thrown = await post(c, '/validate--v1-configmap', configMapReview('throws'));
    assert.equal(thrown.body['response']['allowed'], true);
    assert.match(
      thrown.body['response']['warnings'][0],
      /the policy store is down; allowed unchanged by failurePolicy Ignore/,
    );
    // The first mutation ran, the second threw: nothing of the first is sent.
    const mutated = await post(c, '/mutate--v1-pod', pod({ containers: [] }, { labels: { inject: 'true' } }));
    assert.equal(mutated.body['response']['allowed'], true);
    assert.equal(mutated.body['response']['patch'], undefined);
    assert.match(mutated.body['response']['warnings'][0], /sidecar registry unreachable/);
    const metrics = await (await c.request({ method: 'GET', path: '/metrics' })).body.text();
    assert.match(
      metrics,
      /capstan_webhook_handler_failures_total\{webhook="\/mutate--v1-pod",reason="handler",policy="Ignore"\} 1/,
    );
    // Logged with the request's uid and the handler's error.
    const logged = lines.filter(
      (l) => l['msg'] === 'admission handler failed; answered by the failure policy',
    );
    assert.deepEqual(
      logged.map((l) => [l['uid'], l['webhook'], l['failurePolicy'], (l['err'] as { code?: string }).code]),
      [
        ['cm-throws', '/validate--v1-configmap', 'Ignore', 'CAP_ERR_WEBHOOK_HANDLER'],
        ['705ab4f5-6393-11e8-b7cc-42010a800002', '/mutate--v1-pod', 'Ignore', 'CAP_ERR_WEBHOOK_HANDLER'],
      ],
    );
  } finally {
    await c.close();
    await ignoring.stop();
  }
});

test('bad input: 400 (or 405) with a reason, counted, and the server keeps serving', async () => {
  const cases: Array<[string, string, RegExp]> = [
    ['malformed JSON', '{"apiVersion": "admission.k8s.io/v1", ', /body is not JSON/],
    ['not an object', '"review"', /not a JSON object but string/],
    [
      'wrong apiVersion',
      JSON.stringify({ ...pod({}), apiVersion: 'admission.k8s.io/v1beta1' }),
      /apiVersion must be/,
    ],
    ['wrong kind', JSON.stringify({ ...pod({}), kind: 'Pod' }), /kind must be AdmissionReview/],
    ['no uid', JSON.stringify(podReview({ uid: undefined })), /request\.uid/],
    ['empty body', '', /body is not JSON/],
  ];
  for (const [what, body, reason] of cases) {
    const answer = await post(client, '/validate--v1-pod', body);
    assert.equal(answer.status, 400, what);
    assert.equal(answer.body['error'], 'bad request', what);
    assert.match(answer.body['reason'], reason, what);
  }
  const noUid = await post(client, '/validate--v1-pod', JSON.stringify(podReview({ uid: undefined })));
  assert.deepEqual(noUid.body['problems'], [
    'request.uid: Invalid input: expected string, received undefined',
  ]);

  const wrongType = await post(client, '/validate--v1-pod', JSON.stringify(pod({})), {
    'content-type': 'text/plain',
  });
  assert.equal(wrongType.status, 400);
  assert.match(wrongType.body['reason'], /content-type must be application\/json/);

  const get = await client.request({ method: 'GET', path: '/validate--v1-pod' });
  assert.equal(get.statusCode, 405);
  assert.equal(get.headers['allow'], 'POST');
  await get.body.dump();

  const ok = await post(client, '/validate--v1-pod', pod({ containers: [] }));
  assert.equal(ok.body['response']['allowed'], true);
  const metrics = await (await client.request({ method: 'GET', path: '/metrics' })).body.text();
  assert.match(
    metrics,
    /capstan_webhook_bad_requests_total\{webhook="\/validate--v1-pod",reason="decode"\} 7/,
  );
});

/** POST with node:https, writing `chunks` one by one; resolves with the status and body, or the socket error. */
function rawPost(
  url: string,
  path: string,
  chunks: Buffer[],
  headers: Record<string, string | number>,
): Promise<{ status: number; body: string } | { error: string }> {
  return new Promise((resolve) => {
    const req = https.request(`${url}${path}`, {
      method: 'POST',
      ca: certs.caPem,
      agent: false,
      headers: { 'content-type': 'application/json', ...headers },
    });
    req.on('response', async (res) => {
      let body = '';
      for await (const chunk of res) body += chunk;
      resolve({ status: res.statusCode ?? 0, body });
    });
    req.on('error', (err: NodeJS.ErrnoException) => resolve({ error: err.code ?? err.message }));
    req.flushHeaders();
    (async () => {
      for (const chunk of chunks) {
        if (req.destroyed) return;
        if (!req.write(chunk)) await once(req, 'drain').catch(() => {});
      }
      req.end();
    })().catch(() => {});
  });
}

test('bodies over the limit are refused with 400 unread: declared by content-length, or streamed past it', async () => {
  const small = await serve(podPolicy(), { maxBodyBytes: 64 * 1024 });
  try {
    // Declared too large: answered from the headers, before any of the body is sent.
    const declared = await rawPost(small.url, '/validate--v1-pod', [], {
      'content-length': 10 * 1024 * 1024,
    });
    assert.ok('status' in declared, JSON.stringify(declared));
    assert.equal(declared.status, 400);
    assert.match(JSON.parse(declared.body).reason, /body of 10485760 bytes is over the limit of 65536 bytes/);

    // Chunked, no length: refused once 64 KiB have come; the client may see the 400 or a reset as it keeps sending.
    const chunks = Array.from({ length: 64 }, () => Buffer.alloc(16 * 1024, 0x20));
    const streamed = await rawPost(small.url, '/validate--v1-pod', chunks, {
      'transfer-encoding': 'chunked',
    });
    if ('status' in streamed) {
      assert.equal(streamed.status, 400);
      assert.match(JSON.parse(streamed.body).reason, /over the limit of 65536 bytes/);
    } else {
      assert.match(streamed.error, /ECONNRESET|EPIPE/);
    }
    const metrics = await fetchText(small, '/metrics');
    assert.match(
      metrics,
      /capstan_webhook_bad_requests_total\{webhook="\/validate--v1-pod",reason="too-large"\} 2/,
    );

    // A body just under the limit is read and decoded.
    const padded = JSON.stringify({ ...pod({ containers: [] }), padding: 'x'.repeat(60 * 1024) });
    const c = clientFor(small);
    const fits = await post(c, '/validate--v1-pod', padded);
    assert.equal(fits.body['response']['allowed'], true);
    await c.close();
  } finally {
    await small.stop();
  }
});

async function fetchText(target: WebhookServer, path: string): Promise<string> {
  const c = clientFor(target);
  try {
    return await (await c.request({ method: 'GET', path })).body.text();
  } finally {
    await c.close();
  }
}

test('certificate rotation: new handshakes get the new certificate, a request in flight on the old one completes', async () => {
  // A second CA, so "which certificate" is beyond doubt; the client trusts both.
  const otherCa = await createCertAuthority('rotation CA', 1);
  const next = await otherCa.issue({
    commonName: '127.0.0.1',
    ipAddresses: ['127.0.0.1'],
    usage: 'server',
    days: 1,
  });
  const holder = new CertificateHolder({ certPem: certs.certPem, keyPem: certs.keyPem });
  let entered!: () => void;
  const inHandler = new Promise<void>((resolve) => {
    entered = resolve;
  });
  let release!: () => void;
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  const webhook = defineWebhook({ name: 'rotation', timeoutSeconds: 30 });
  webhook
    .when(Pod)
    .isCreated()
    .validate(async (req) => {
      if (req.object.metadata?.name === 'hold') {
        entered();
        await gate;
      }
      return req.allow();
    });
  const rotating = await serve(webhook, { holder });
  const ca = [certs.caPem, otherCa.certPem];
  const fingerprintOf = (pem: string) => new X509Certificate(pem).fingerprint256;
  const oldAgent = new https.Agent({ keepAlive: true, maxSockets: 1, ca });
  const newAgent = new https.Agent({ keepAlive: true, maxSockets: 1, ca });
  const review = (name: string) =>
    JSON.stringify(podReview({ object: { metadata: { name }, spec: { containers: [] } } }));
  const send = (agent: https.Agent, name: string) =>
    new Promise<{ status: number; fingerprint: string; allowed: boolean; socket: TLSSocket }>(
      (resolve, reject) => {
        const req = https.request(`${rotating.url}/validate--v1-pod`, {
          method: 'POST',
          agent,
          headers: { 'content-type': 'application/json' },
        });
        req.on('response', async (res) => {
          const socket = res.socket as TLSSocket;
          const fingerprint = socket.getPeerX509Certificate()?.fingerprint256 ?? '';
          let body = '';
          for await (const chunk of res) body += chunk;
          resolve({
            status: res.statusCode ?? 0,
            fingerprint,
            socket,
            allowed: JSON.parse(body).response.allowed,
          });
        });
        req.on('error', reject);
        req.end(review(name));
      },
    );
  try {
    const held = send(oldAgent, 'hold');
    await inHandler;
    holder.update({ certPem: next.certPem, keyPem: next.keyPem });

    const fresh = await send(newAgent, 'new');
    assert.equal(fresh.fingerprint, fingerprintOf(next.certPem), 'a new handshake gets the new certificate');
    assert.equal(fresh.status, 200);

    release();
    const old = await held;
    assert.equal(old.status, 200);
    assert.ok(old.allowed);
    assert.equal(
      old.fingerprint,
      fingerprintOf(certs.certPem),
      'the request in flight finished on the old certificate',
    );
    // The old keep-alive connection carries on with the certificate it was made with.
    const again = await send(oldAgent, 'again');
    assert.equal(again.socket, old.socket, 'the same TLS connection, made with the old certificate');
    assert.ok(again.allowed);

    // A broken pair is refused and the server keeps its certificate.
    assert.throws(() => holder.update({ certPem: certs.certPem, keyPem: next.keyPem }));
    const still = await send(new https.Agent({ ca }), 'still');
    assert.equal(still.fingerprint, fingerprintOf(next.certPem));
  } finally {
    release();
    oldAgent.destroy();
    newAgent.destroy();
    await rotating.stop();
  }
});

test('stop drains an admission review in flight', async () => {
  let entered!: () => void;
  const inHandler = new Promise<void>((resolve) => {
    entered = resolve;
  });
  const webhook = defineWebhook({ name: 'drain', timeoutSeconds: 30 });
  webhook
    .when(Pod)
    .isCreated()
    .validate(async (req) => {
      entered();
      await new Promise((resolve) => setTimeout(resolve, 300));
      return req.deny('late but answered');
    });
  const draining = await serve(webhook);
  const c = clientFor(draining);
  const pending = post(c, '/validate--v1-pod', pod({ containers: [] }));
  await inHandler;
  const stopped = draining.stop('test');
  const answer = await pending;
  assert.equal(answer.body['response']['status']['message'], 'late but answered');
  assert.equal((await stopped).exitCode, 0);
  await c.close();
});

test('a webhook without handlers, or a bad body limit, cannot be served', () => {
  assert.throws(
    () =>
      createWebhookServer(defineWebhook({ name: 'empty' }), {
        certificate: { certPem: certs.certPem, keyPem: certs.keyPem },
      }),
    (err: { code?: string }) => err.code === 'CAP_ERR_WEBHOOK_USAGE',
  );
  assert.throws(
    () =>
      createWebhookServer(podPolicy(), {
        certificate: { certPem: certs.certPem, keyPem: certs.keyPem },
        maxBodyBytes: 0,
      }),
    (err: { code?: string }) => err.code === 'CAP_ERR_WEBHOOK_USAGE',
  );
});
