// Admission end to end: the real kube-apiserver of the shared cluster calls a Capstan webhook served on this
// machine (clientConfig.url, https://127.0.0.1) when pods are created: root is denied with the message in
// kubectl's output, a sidecar is injected and runs on the real node, certificates and the CA rotate while
// pods keep being admitted, the failure policy decides when the webhook is down, and the namespaceSelector
// keeps it out of other namespaces. Each webhook acts only in namespaces labelled for it.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import type { TestContext } from 'node:test';
import { test } from 'node:test';
import type { TLSSocket } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { KubeClient, KubeError, Namespace, Pod } from 'capstan/kube';
import { createLogger, freePort } from 'capstan/runtime';
import { eventually as eventuallyWithin, type SharedCluster, useSharedCluster } from 'capstan/testing';
import {
  type CaInjector,
  createWebhookServer,
  type FailurePolicy,
  type IssuedWebhookCertificates,
  injectCaBundle,
  issueWebhookCertificates,
  pemCertificates,
  type WebhookConfiguration,
  type WebhookServer,
  webhookConfigurations,
} from 'capstan/webhook';
import { spawnJson } from './fixtures/json-process.ts';
import {
  ENABLED_LABEL,
  INJECTED_LABEL,
  podPolicyWebhook,
  SIDECAR,
  SIDECAR_LABEL,
} from './fixtures/pod-policy-webhook.ts';

const skip = process.getuid?.() === 0 || process.env['CI'] ? false : 'a node needs root';
const TIMEOUT = 25 * 60_000; // the node lock may be held by another run for minutes

interface Running {
  cluster: SharedCluster;
  kube: KubeClient;
  certs: IssuedWebhookCertificates;
  server: WebhookServer;
  injector: CaInjector;
  configurations: WebhookConfiguration[];
  /** Namespaces of the reviews the server answered. */
  reviewed: string[];
  /** SHA-256 fingerprints of the certificate each TLS connection from the apiserver was served. */
  handshakes: Set<string>;
}

/**
 * A pod policy webhook named `name` served on 127.0.0.1 with certificates from Capstan's CA, registered
 * (whole configurations, caBundle injected) for this test's namespace only. Torn down after the test.
 */
async function serve(t: TestContext, name: string, failurePolicy: FailurePolicy = 'Fail'): Promise<Running> {
  const cluster = await useSharedCluster(t, { node: true });
  const kube = await KubeClient.fromKubeconfig({ path: cluster.kubeconfigPath });
  const reviewed: string[] = [];
  const webhook = podPolicyWebhook(name, {
    sidecarImage: cluster.node?.images.busybox ?? 'capstan.local/busybox:1',
    failurePolicy,
    timeoutSeconds: 5,
    observe: (namespace) => reviewed.push(namespace ?? ''),
  });
  const certs = await issueWebhookCertificates({
    names: { ipAddresses: ['127.0.0.1'] },
    timings: { propagationMs: 3_000 },
  });
  const server = createWebhookServer(webhook, {
    certificate: certs.holder,
    port: 0,
    host: '127.0.0.1',
    logger: createLogger({ name, level: 'warn' }),
  });
  const handshakes = new Set<string>();
  server.service.server.on('secureConnection', (socket: TLSSocket) => {
    const own = socket.getCertificate();
    if (own && 'fingerprint256' in own) handshakes.add(own.fingerprint256);
  });
  const url = await server.start();
  const emitted = webhookConfigurations(webhook, { url });
  const configurations = [emitted.validating, emitted.mutating].filter((c): c is WebhookConfiguration => !!c);
  const injector = injectCaBundle({ client: kube, configurations, certificates: certs, apply: 'full' });
  t.after(async () => {
    await injector.close();
    for (const c of configurations) {
      const path = `/apis/admissionregistration.k8s.io/v1/${c.kind === 'MutatingWebhookConfiguration' ? 'mutating' : 'validating'}webhookconfigurations/${name}`;
      await kube
        .request({ method: 'DELETE', path })
        .then((r) => r.body.dump())
        .catch(() => {});
    }
    await server.stop().catch(() => {});
    await certs.close();
    await kube.close();
  });
  await injector.injected({ signal: AbortSignal.timeout(30_000) });
  await label(kube, cluster.namespace, name);
  return { cluster, kube, certs, server, injector, configurations, reviewed, handshakes };
}

/** Turn the webhook `name` on in `namespace`. */
async function label(kube: KubeClient, namespace: string, name: string): Promise<void> {
  await kube.resource(Namespace).patch(namespace, { metadata: { labels: { [ENABLED_LABEL]: name } } });
}

function pod(name: string, options: { root?: boolean; sidecar?: boolean; image?: string } = {}): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, labels: options.sidecar ? { [SIDECAR_LABEL]: 'inject' } : {} },
    spec: {
      terminationGracePeriodSeconds: 0,
      containers: [
        {
          name: 'app',
          image: options.image ?? 'capstan.local/busybox:1',
          imagePullPolicy: 'IfNotPresent',
          command: ['sh', '-c', 'sleep 3600'],
          securityContext: options.root ? { runAsUser: 0 } : { runAsUser: 1000 },
        },
      ],
    },
  };
}

const eventually = <T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 60_000,
) => eventuallyWithin(what, probe, { timeoutMs, intervalMs: 200 });

/** Create (dry run: the webhooks are called, nothing is stored) and say what the apiserver answered. */
async function admitted(
  kube: KubeClient,
  namespace: string,
  object: Pod,
): Promise<{ pod?: Pod; error?: string }> {
  try {
    return { pod: await kube.resource(Pod, namespace).create(object, { dryRun: true }) };
  } catch (err) {
    if (err instanceof KubeError) return { error: err.message };
    throw err;
  }
}

const DENIED =
  /admission webhook "validate-core-v1-pod\.[a-z0-9-]+\.capstan\.dev" denied the request: container app would run with root privileges/;

test('a pod with root privileges is denied, and the webhook’s message reaches kubectl; others are admitted', {
  skip,
  timeout: TIMEOUT,
}, async (t) => {
  const { cluster, kube } = await serve(t, 'pod-policy-deny');
  const refused = await cluster.kubectlAsync(['create', '-f', '-'], {
    input: JSON.stringify(pod('root', { root: true })),
    allowFailure: true,
  });
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, DENIED, refused.stderr);
  assert.match(refused.stderr, /^Error from server \(Forbidden\)/, 'the denial carries its reason');
  await assert.rejects(
    kube.resource(Pod, cluster.namespace).create(pod('root2', { root: true })),
    (err: unknown) => {
      assert.ok(err instanceof KubeError);
      assert.equal(err.code, 'CAP_ERR_KUBE_FORBIDDEN');
      assert.match(err.message, DENIED);
      return true;
    },
  );
  const created = await cluster.kubectlAsync(['create', '-f', '-', '-o', 'name'], {
    input: JSON.stringify(pod('plain')),
    allowFailure: true,
  });
  assert.equal(created.stdout.trim(), 'pod/plain', created.stderr);
  assert.equal(
    (await kube.resource(Pod, cluster.namespace).list()).items.length,
    1,
    'only the allowed pod exists',
  );
});

test('a pod asking for a sidecar gets it and a label, and on the node the injected sidecar runs', {
  skip,
  timeout: TIMEOUT,
}, async (t) => {
  const { cluster, kube } = await serve(t, 'pod-policy-sidecar');
  const image = cluster.node?.images.busybox ?? '';
  const stored = await kube
    .resource(Pod, cluster.namespace)
    .create(pod('with-sidecar', { sidecar: true, image }));
  assert.deepEqual(
    stored.spec?.containers.map((c) => c.name),
    ['app', SIDECAR],
  );
  assert.equal(stored.metadata?.labels?.[INJECTED_LABEL], 'true');
  assert.equal(stored.spec?.containers[1]?.image, image);
  const running = await eventually(
    'both containers running',
    async () => {
      const p = await kube.resource(Pod, cluster.namespace).get('with-sidecar');
      const statuses = p.status?.containerStatuses ?? [];
      return statuses.length === 2 && statuses.every((s) => s.state?.running) ? p : undefined;
    },
    120_000,
  );
  const sidecar = running.status?.containerStatuses?.find((s) => s.name === SIDECAR);
  assert.ok(sidecar?.state?.running?.startedAt, 'the sidecar container is running on the node');
  assert.equal(sidecar?.ready, true);
  const logs = await eventually('sidecar log', async () => {
    const out = (await cluster.kubectlAsync(['logs', 'with-sidecar', '-c', SIDECAR])).stdout;
    return out.includes('sidecar up') ? out : undefined;
  });
  assert.match(logs, /sidecar up/);
  // A pod without the label is left alone.
  const plain = await kube
    .resource(Pod, cluster.namespace)
    .create(pod('without', { image }), { dryRun: true });
  assert.deepEqual(
    plain.spec?.containers.map((c) => c.name),
    ['app'],
  );
});

test('certificates rotate mid-test (serving renewed, CA rotated in three steps) while pods keep being admitted: no admission fails', {
  skip,
  timeout: TIMEOUT,
}, async (t) => {
  const { cluster, kube, certs, injector, handshakes } = await serve(t, 'pod-policy-rotate');
  const ns = cluster.namespace;
  const failures: string[] = [];
  let admissions = 0;
  let running = true;
  // Alternately a pod that must be denied by the handler and one that must come back with its sidecar: a TLS
  // failure would answer "failed calling webhook" instead of either.
  const load = (async () => {
    for (let i = 0; running; i++) {
      const root = i % 2 === 0;
      const answer = await admitted(kube, ns, pod(`load-${i}`, { root, sidecar: !root }));
      admissions += 1;
      if (root && !(answer.error && DENIED.test(answer.error)))
        failures.push(`#${i} root: ${answer.error ?? 'admitted'}`);
      if (!root && answer.pod?.spec?.containers.length !== 2)
        failures.push(`#${i} sidecar: ${answer.error ?? 'no sidecar'}`);
    }
  })();
  try {
    await eventually('a few admissions', async () => (admissions >= 10 ? true : undefined));
    const firstServing = certs.holder.current.certPem;
    const firstCa = certs.state.ca.certPem;
    await certs.renewServing();
    assert.notEqual(certs.holder.current.certPem, firstServing);
    const beforeCa = admissions;
    await certs.rotateCa();
    await eventually(
      'CA rotation done',
      async () => (certs.phase === 'stable' && certs.state.ca.certPem !== firstCa ? true : undefined),
      60_000,
    );
    await injector.injected({ signal: AbortSignal.timeout(30_000) });
    const newCaServing = new X509Certificate(certs.holder.current.certPem);
    const after = admissions;
    await eventually('admissions after the rotation', async () =>
      admissions >= after + 10 ? true : undefined,
    );
    // The apiserver made a connection after the bundle changed and verified the new CA's certificate on it.
    assert.ok(handshakes.has(newCaServing.fingerprint256), 'a handshake served the new CA’s certificate');
    assert.ok(newCaServing.verify(new X509Certificate(certs.state.ca.certPem).publicKey));
    await certs.renewServing();
    const last = admissions;
    await eventually('admissions after the last renewal', async () =>
      admissions >= last + 10 ? true : undefined,
    );
    t.diagnostic(
      `${admissions} admissions, ${admissions - beforeCa} from the CA rotation on; ${handshakes.size} certificates seen in handshakes`,
    );
  } finally {
    running = false;
    await load;
  }
  assert.deepEqual(failures, [], `failed admissions out of ${admissions}`);
  assert.equal(pemCertificates(certs.caBundle).length, 1);
});

test('webhook down: failurePolicy Fail refuses the pod, Ignore admits it', {
  skip,
  timeout: TIMEOUT,
}, async (t) => {
  const fail = await serve(t, 'pod-policy-fail', 'Fail');
  const ns = fail.cluster.namespace;
  // Up, the webhook decides: root denied.
  await eventually('webhook active', async () =>
    (await admitted(fail.kube, ns, pod('r', { root: true }))).error?.match(DENIED) ? true : undefined,
  );
  await fail.server.stop();
  const refused = await admitted(fail.kube, ns, pod('plain'));
  assert.match(
    refused.error ?? 'admitted',
    /failed calling webhook "validate-core-v1-pod\.pod-policy-fail\.capstan\.dev"/,
  );
  assert.equal((await fail.kube.resource(Pod, ns).list()).items.length, 0);

  // A namespace of its own (serve() takes one) selects the Ignore webhook; up, it denies root.
  const ignore = await serve(t, 'pod-policy-ignore', 'Ignore');
  const ns2 = ignore.cluster.namespace;
  await eventually('Ignore webhook active', async () => {
    const answer = await admitted(ignore.kube, ns2, pod('r', { root: true }));
    return answer.error?.includes('pod-policy-ignore') ? true : undefined;
  });
  await ignore.server.stop();
  // Down, even the root pod is admitted: the apiserver ignored the failed call.
  const created = await ignore.kube.resource(Pod, ns2).create(pod('admitted-anyway', { root: true }));
  assert.equal(created.metadata?.name, 'admitted-anyway');
  assert.equal(created.metadata?.labels?.[INJECTED_LABEL], undefined);
});

test('the namespaceSelector keeps the webhook away from other namespaces', {
  skip,
  timeout: TIMEOUT,
}, async (t) => {
  const { cluster, kube, reviewed } = await serve(t, 'pod-policy-scope');
  const other = `${cluster.namespace}-other`;
  await kube.resource(Namespace).create({ metadata: { name: other } });
  t.after(() =>
    kube
      .resource(Namespace)
      .delete(other)
      .then(() => undefined)
      .catch(() => {}),
  );
  await eventually(
    'default ServiceAccount in the other namespace',
    async () =>
      (await kube.resource(Pod, other).list()) &&
      (await kube.request({ path: `/api/v1/namespaces/${other}/serviceaccounts/default` }).then(async (r) => {
        await r.body.dump();
        return r.status === 200 ? true : undefined;
      })),
  );
  const here = await admitted(kube, cluster.namespace, pod('root', { root: true }));
  assert.match(here.error ?? 'admitted', DENIED);
  const seen = reviewed.length;
  const there = await admitted(kube, other, pod('root', { root: true }));
  assert.equal(there.error, undefined, 'not reviewed: admitted');
  assert.deepEqual(reviewed.slice(seen), [], 'the webhook saw no request from the other namespace');
  assert.ok(reviewed.every((n) => n === cluster.namespace));
});

test('runWebhook outside the cluster (WEBHOOK_URL, memory certificates, WEBHOOK_REGISTER=full): it registers itself and is called; SIGTERM exits 0', {
  skip,
  timeout: TIMEOUT,
}, async (t) => {
  const cluster = await useSharedCluster(t, { node: true });
  const kube = await KubeClient.fromKubeconfig({ path: cluster.kubeconfigPath });
  const name = 'pod-policy-url';
  t.after(async () => {
    for (const kind of ['validating', 'mutating']) {
      const path = `/apis/admissionregistration.k8s.io/v1/${kind}webhookconfigurations/${name}`;
      await kube
        .request({ method: 'DELETE', path })
        .then((r) => r.body.dump())
        .catch(() => {});
    }
    await kube.close();
  });
  const port = await freePort();
  const program = spawnJson(fileURLToPath(new URL('./fixtures/pod-policy-webhook.ts', import.meta.url)), [], {
    KUBECONFIG: cluster.kubeconfigPath,
    POD_POLICY_NAME: name,
    SIDECAR_IMAGE: cluster.node?.images.busybox ?? '',
    PORT: String(port),
    HOST: '127.0.0.1',
    WEBHOOK_URL: `https://127.0.0.1:${port}`,
    WEBHOOK_CERTIFICATES: 'memory',
    WEBHOOK_REGISTER: 'full',
    LOG_FORMAT: 'json',
  });
  t.after(() => program.kill());
  await program.waitFor((l) => l['msg'] === 'listening', 30_000);
  await program.waitFor((l) => l['msg'] === 'CA bundle injected', 30_000);
  await label(kube, cluster.namespace, name);
  const answer = await eventually('the program reviews pods', async () => {
    const a = await admitted(kube, cluster.namespace, pod('root', { root: true }));
    return a.error ? a : undefined;
  });
  assert.match(
    answer.error ?? '',
    /pod-policy-url\.capstan\.dev" denied the request: container app would run with root privileges/,
  );
  const withSidecar = await admitted(kube, cluster.namespace, pod('s', { sidecar: true }));
  assert.deepEqual(
    withSidecar.pod?.spec?.containers.map((c) => c.name),
    ['app', SIDECAR],
  );
  program.child.kill('SIGTERM');
  const { code } = await program.exited;
  assert.equal(code, 0, program.stderr());
});
