// examples/webhook/pod-policy.ts three ways: its webhook served in-process and fed the reviews the apiserver
// sends; the file run as a program (as its Deployment runs it); and `capstan webhook manifests` over it,
// with the configurations checked by the real apiserver (server-side dry run).
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createLogger } from 'capstan/runtime';
import { createTestCertificates, type TestCertificates, useSharedCluster } from 'capstan/testing';
import {
  applyJsonPatch,
  createWebhookServer,
  type JsonPatchOperation,
  type WebhookServer,
} from 'capstan/webhook';
import { Agent, Client } from 'undici';
import { parseAllDocuments } from 'yaml';
import { INJECT_LABEL, podPolicy, REVIEWED_LABEL, SIDECAR_NAME } from '../examples/webhook/pod-policy.ts';

const example = fileURLToPath(new URL('../examples/webhook/pod-policy.ts', import.meta.url));
const mainTs = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'capstan-webhook-example-'));
after(() => rmSync(work, { recursive: true, force: true }));

function review(operation: 'CREATE' | 'UPDATE', pod: Record<string, unknown>, uid = 'uid-1') {
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid,
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      namespace: 'apps',
      operation,
      userInfo: { username: 'dev' },
      object: { apiVersion: 'v1', kind: 'Pod', ...pod },
      oldObject: operation === 'UPDATE' ? { apiVersion: 'v1', kind: 'Pod', ...pod } : null,
    },
  };
}

const app = { name: 'app', image: 'app:1' };

describe('the pod policy, served', () => {
  let certs: TestCertificates;
  let server: WebhookServer;
  let client: Client;
  before(async () => {
    certs = await createTestCertificates();
    server = createWebhookServer(podPolicy({ sidecarImage: 'sidecar:test' }), {
      certificate: { certPem: certs.certPem, keyPem: certs.keyPem },
      port: 0,
      host: '127.0.0.1',
      logger: createLogger({ name: 'pod-policy', level: 'silent' }),
      lifecycle: { drainDelayMs: 0, idleGraceMs: 100 },
    });
    await server.start();
    client = new Client(server.url, { connect: { ca: certs.caPem } });
  });
  after(async () => {
    await client?.close();
    await server?.stop();
  });

  async function send(path: string, body: unknown) {
    const res = await client.request({
      method: 'POST',
      path,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    assert.equal(res.statusCode, 200);
    return ((await res.body.json()) as { response: Record<string, unknown> }).response;
  }

  test('root, privileged and escalating containers are denied; a plain pod is allowed', async () => {
    const cases: Array<[Record<string, unknown>, RegExp | undefined]> = [
      [{ containers: [app] }, undefined],
      [{ containers: [{ ...app, securityContext: { privileged: true } }] }, /container app is privileged/],
      [
        { containers: [{ ...app, securityContext: { allowPrivilegeEscalation: true } }] },
        /allows privilege escalation/,
      ],
      [{ containers: [{ ...app, securityContext: { runAsUser: 0 } }] }, /runs as root/],
      // The pod's runAsUser applies to containers that set none; a container's own overrides it.
      [{ securityContext: { runAsUser: 0 }, containers: [app] }, /container app runs as root/],
      [
        { securityContext: { runAsUser: 0 }, containers: [{ ...app, securityContext: { runAsUser: 1000 } }] },
        undefined,
      ],
      [
        {
          initContainers: [{ name: 'init', image: 'i:1', securityContext: { runAsUser: 0 } }],
          containers: [app],
        },
        /init runs as root/,
      ],
    ];
    for (const operation of ['CREATE', 'UPDATE'] as const) {
      for (const [spec, denied] of cases) {
        const response = await send(
          '/validate--v1-pod',
          review(operation, { metadata: { name: 'p' }, spec }),
        );
        const what = `${operation} ${JSON.stringify(spec)}`;
        if (denied === undefined) {
          assert.equal(response['allowed'], true, what);
        } else {
          assert.equal(response['allowed'], false, what);
          const status = response['status'] as { code: number; message: string };
          assert.equal(status.code, 403, what);
          assert.match(status.message, denied, what);
        }
      }
    }
  });

  test('every new pod is labelled; a pod asking for it gets the sidecar; updates are left alone', async () => {
    const patchOf = (response: Record<string, unknown>) =>
      JSON.parse(Buffer.from(String(response['patch']), 'base64').toString('utf8')) as JsonPatchOperation[];

    const plain = { metadata: { name: 'p', labels: { app: 'web' } }, spec: { containers: [app] } };
    const labelled = await send('/mutate--v1-pod', review('CREATE', plain));
    assert.deepEqual(patchOf(labelled), [
      { op: 'add', path: `/metadata/labels/${REVIEWED_LABEL.replace('/', '~1')}`, value: 'true' },
    ]);

    const asking = {
      metadata: { name: 'p', labels: { [INJECT_LABEL]: 'true' } },
      spec: { containers: [app] },
    };
    const injected = await send('/mutate--v1-pod', review('CREATE', asking));
    const pod = applyJsonPatch(review('CREATE', asking).request.object, patchOf(injected)) as {
      metadata: { labels: Record<string, string> };
      spec: { containers: Array<{ name: string; image: string }> };
    };
    assert.deepEqual(
      pod.spec.containers.map((c) => [c.name, c.image]),
      [
        ['app', 'app:1'],
        [SIDECAR_NAME, 'sidecar:test'],
      ],
    );
    assert.equal(pod.metadata.labels[REVIEWED_LABEL], 'true');
    // The injected sidecar passes the policy itself.
    const checked = await send('/validate--v1-pod', review('CREATE', pod));
    assert.equal(checked['allowed'], true);

    const update = await send('/mutate--v1-pod', review('UPDATE', asking));
    assert.deepEqual(update, { uid: 'uid-1', allowed: true });
  });
});

test('the example runs as a program: TLS on a free port, health, a review answered, SIGTERM exits 0', async () => {
  const child = spawn(process.execPath, ['--conditions=capstan-source', example], {
    env: {
      ...process.env,
      WEBHOOK_CERTIFICATES: 'memory',
      WEBHOOK_REGISTER: 'none',
      PORT: '0',
      HOST: '127.0.0.1',
      LOG_FORMAT: 'json',
      SIDECAR_IMAGE: 'sidecar:program',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exit = once(child, 'close').then(([code]) => code as number | null);
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (c: string) => {
    stderr += c;
  });
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let buffer = '';
      child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
        buffer += chunk;
        for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n')) {
          const line = JSON.parse(buffer.slice(0, nl)) as { msg?: string; url?: string };
          buffer = buffer.slice(nl + 1);
          if (line.msg === 'listening' && line.url) resolve(line.url);
        }
      });
      void exit.then((code) => reject(new Error(`exited ${code} before listening: ${stderr}`)));
    });
    assert.match(url, /^https:\/\/127\.0\.0\.1:\d+$/);
    // Its CA lives only inside the process (WEBHOOK_CERTIFICATES=memory): this client cannot verify it. The
    // in-process tests above verify certificates; here the point is the program itself.
    const dispatcher = new Agent({ connect: { rejectUnauthorized: false } });
    const ready = await fetch(`${url}/readyz`, { dispatcher } as RequestInit);
    assert.equal(ready.status, 200);
    const answer = await fetch(`${url}/mutate--v1-pod`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(
        review('CREATE', {
          metadata: { name: 'p', labels: { [INJECT_LABEL]: 'true' } },
          spec: { containers: [app] },
        }),
      ),
      dispatcher,
    } as RequestInit);
    const response = ((await answer.json()) as { response: { patch: string } }).response;
    assert.match(Buffer.from(response.patch, 'base64').toString('utf8'), /sidecar:program/);
    await dispatcher.close();
  } finally {
    child.kill('SIGTERM');
  }
  assert.equal(await exit, 0, stderr);
});

function capstan(args: string[]) {
  const r = spawnSync(process.execPath, ['--conditions=capstan-source', mainTs, ...args], {
    env: { PATH: process.env['PATH'] ?? '' },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

// biome-ignore lint/suspicious/noExplicitAny: the test reads the YAML by path and asserts each value.
const docs = (yaml: string) => parseAllDocuments(yaml).map((d) => d.toJSON() as Record<string, any>);

test('capstan webhook manifests: both configurations, accepted by the real apiserver', async (t) => {
  const certs = await createTestCertificates();
  const caFile = join(work, 'ca.pem');
  writeFileSync(caFile, certs.caPem);
  const out = capstan([
    'webhook',
    'manifests',
    example,
    '--service',
    'pod-policy-system/pod-policy',
    '--ca-bundle',
    caFile,
  ]);
  assert.equal(out.status, 0, out.stderr);
  const [validating, mutating] = docs(out.stdout);
  assert.equal(validating?.['kind'], 'ValidatingWebhookConfiguration');
  assert.equal(mutating?.['kind'], 'MutatingWebhookConfiguration');
  const hook = validating?.['webhooks'][0];
  assert.equal(hook.name, 'validate-core-v1-pod.pod-policy.capstan.dev');
  assert.deepEqual(hook.clientConfig.service, {
    name: 'pod-policy',
    namespace: 'pod-policy-system',
    path: '/validate--v1-pod',
    port: 443,
  });
  assert.equal(Buffer.from(hook.clientConfig.caBundle, 'base64').toString('utf8'), certs.caPem);
  assert.deepEqual(hook.rules[0].operations, ['CREATE', 'UPDATE']);
  assert.equal(hook.failurePolicy, 'Fail');
  assert.equal(hook.timeoutSeconds, 5);
  assert.deepEqual(mutating?.['webhooks'][0].rules[0].operations, ['CREATE']);

  const byUrl = capstan([
    'webhook',
    'manifests',
    example,
    '--url',
    'https://127.0.0.1:9443',
    '-o',
    join(work, 'out'),
  ]);
  assert.equal(byUrl.status, 0, byUrl.stderr);
  assert.match(byUrl.stdout, /wrote .*1-validatingwebhookconfiguration-pod-policy\.yaml/);

  // The apiserver validates both (names, rules, selectors, clientConfig) without registering them: a
  // registered Fail webhook with no server behind it would refuse every pod of the shared cluster.
  const cluster = await useSharedCluster(t);
  const applied = cluster.kubectl(['apply', '--dry-run=server', '--server-side', '-f', '-'], {
    input: out.stdout,
  });
  assert.match(applied, /validatingwebhookconfiguration.*pod-policy.*serverside-applied \(server dry run\)/);
  assert.match(applied, /mutatingwebhookconfiguration.*pod-policy.*serverside-applied \(server dry run\)/);
});

test('capstan webhook manifests: usage errors exit 2 with the reason', () => {
  const cases: Array<[string[], RegExp]> = [
    [['webhook', 'manifests', example], /give one of --service/],
    [['webhook', 'manifests', example, '--service', 'nope'], /--service: namespace\/name/],
    [['webhook', 'manifests', example, '--url', 'http://x'], /url must be https/],
    [['webhook', 'manifests', example, '--url', 'https://x', '--port', '8443'], /--port goes with --service/],
    [
      ['webhook', 'manifests', example, '--url', 'https://x', '--export', 'other'],
      /exports no webhook named other/,
    ],
    [['webhook', 'manifests', example, '--url', 'https://x', '--ca-bundle', '/nonexistent'], /cannot read/],
    [
      ['webhook', 'manifests', mainTs.replace('main.ts', 'errors.ts'), '--url', 'https://x'],
      /exports no webhook/,
    ],
    [['webhook', 'manifests', '/nonexistent.ts', '--url', 'https://x'], /cannot import/],
  ];
  for (const [args, reason] of cases) {
    const r = capstan(args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, reason, args.join(' '));
  }
});
