// CA injection, the certificate Secret and cert-manager's Secret against the real apiserver, as the webhook's
// own ServiceAccount bound to the least-privilege roles `webhookRbacManifests` derives: a verb the code needs
// and the roles lack fails the test. The configurations here point nowhere and match no object, so the
// shared cluster's other tests never see them.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, type TestContext, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  ClusterRole,
  ClusterRoleBinding,
  KubeClient,
  type KubeObject,
  MutatingWebhookConfiguration,
  type ResourceType,
  Role,
  RoleBinding,
  Secret,
  ServiceAccount,
  ValidatingWebhookConfiguration,
} from 'capstan/kube';
import { createCertAuthority } from 'capstan/runtime';
import { type SharedCluster, useSharedCluster } from 'capstan/testing';
import { eventually as eventuallyWithin } from '../testing/index.ts';
import type { WebhookConfiguration } from './ca-injection.ts';
import { injectCaBundle } from './ca-injection.ts';
import { certificatesFromSecret, secretCertificateStore } from './certificate-store.ts';
import { issueWebhookCertificates, pemCertificates, serviceDnsNames } from './certificates.ts';
import { webhookRbacManifests } from './rbac.ts';
import { followCertificateSecret } from './secret-certificates.ts';

const skip = process.getuid?.() === 0 || process.env['CI'] ? false : 'the shared cluster needs root';
const suffix = randomBytes(3).toString('hex');
const NAME = `inject-test-${suffix}`;
const SECRET = `${NAME}-webhook-tls`;

let cluster: SharedCluster;
let admin: KubeClient;
const clients: KubeClient[] = [];

/** A configuration that calls nowhere and matches nothing: only its caBundle matters here. */
function configuration(
  kind: 'ValidatingWebhookConfiguration' | 'MutatingWebhookConfiguration',
  name: string,
  hooks: string[],
): WebhookConfiguration {
  return {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind,
    metadata: { name },
    webhooks: hooks.map((hook) => ({
      name: `${hook}.capstan.dev`,
      admissionReviewVersions: ['v1'],
      sideEffects: 'None',
      failurePolicy: 'Ignore',
      clientConfig: { url: `https://127.0.0.1:1/${hook}` },
      rules: [{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['configmaps'] }],
      objectSelector: { matchLabels: { 'webhook-test.capstan.dev/never': suffix } },
    })),
  } as WebhookConfiguration;
}

const validating = configuration('ValidatingWebhookConfiguration', NAME, ['deny-a', 'deny-b']);
const mutating = configuration('MutatingWebhookConfiguration', NAME, ['label']);

const typeOf: Record<string, ResourceType<unknown>> = {
  ServiceAccount,
  ClusterRole,
  ClusterRoleBinding,
  Role,
  RoleBinding,
  ValidatingWebhookConfiguration,
  MutatingWebhookConfiguration,
  Secret,
} as never;

async function applyAll(objects: readonly KubeObject[]): Promise<void> {
  for (const o of objects) {
    const type = typeOf[o.kind ?? ''];
    assert.ok(type, `no type for ${o.kind}`);
    await admin.resource(type).apply(o, { fieldManager: 'test', force: true });
  }
}

/** A client that authenticates as a ServiceAccount (a token from the TokenRequest API, as the kubelet mounts it). */
async function serviceAccountClient(namespace: string, name: string): Promise<KubeClient> {
  const res = await admin.json<{ status: { token: string } }>({
    method: 'POST',
    path: `/api/v1/namespaces/${namespace}/serviceaccounts/${name}/token`,
    json: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds: 3600 } },
  });
  const adminConfig = await import('capstan/kube').then((m) =>
    m.loadKubeconfig({ path: cluster.kubeconfigPath }),
  );
  const client = new KubeClient({
    server: adminConfig.server,
    ...(adminConfig.caPem ? { caPem: adminConfig.caPem } : {}),
    token: res.status.token,
    namespace,
  });
  clients.push(client);
  return client;
}

const eventually = <T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 30_000,
) => eventuallyWithin(what, probe, { timeoutMs, intervalMs: 100 });

/** The caBundle (PEM) of every webhook of a configuration, as the apiserver stores it. */
async function bundlesOf(config: WebhookConfiguration): Promise<string[]> {
  const type =
    config.kind === 'MutatingWebhookConfiguration'
      ? MutatingWebhookConfiguration
      : ValidatingWebhookConfiguration;
  const stored = (await admin
    .resource(type as typeof MutatingWebhookConfiguration)
    .get(config.metadata?.name ?? '')) as WebhookConfiguration;
  return (stored.webhooks ?? []).map((h) =>
    Buffer.from(h.clientConfig.caBundle ?? '', 'base64').toString('utf8'),
  );
}

/** The shared cluster and a namespace of this test's own; one admin client for the file. */
async function setup(t: TestContext): Promise<void> {
  cluster = await useSharedCluster(t, { node: true });
  if (!admin) {
    admin = await KubeClient.fromKubeconfig({ path: cluster.kubeconfigPath });
    clients.push(admin);
  }
}

after(async () => {
  for (const c of [validating, mutating]) {
    const type =
      c.kind === 'MutatingWebhookConfiguration'
        ? MutatingWebhookConfiguration
        : ValidatingWebhookConfiguration;
    await admin
      ?.resource(type as typeof MutatingWebhookConfiguration)
      .delete(NAME)
      .catch(() => {});
  }
  await admin
    ?.resource(ClusterRole)
    .delete(`${NAME}-webhook`)
    .catch(() => {});
  await admin
    ?.resource(ClusterRoleBinding)
    .delete(`${NAME}-webhook`)
    .catch(() => {});
  for (const c of clients) await c.close();
});

test('as its least-privilege ServiceAccount: certificates stored in the Secret, the bundle injected, drift put back, rotations re-injected', {
  skip,
  timeout: 25 * 60_000,
}, async (t) => {
  await setup(t);
  const ns = cluster.namespace;
  const configurations = [validating, mutating];
  await applyAll([
    ...webhookRbacManifests(NAME, ns, {
      configurations,
      certificates: { namespace: ns, secret: SECRET, mode: 'issue' },
    }),
    // What the deploy manifests create: the configurations without a caBundle, the Secret empty.
    ...configurations,
    {
      apiVersion: 'v1',
      kind: 'Secret',
      type: 'Opaque',
      metadata: { name: SECRET, namespace: ns },
    } as KubeObject,
  ]);
  const sa = await serviceAccountClient(ns, NAME);
  const certs = await issueWebhookCertificates({
    names: { dnsNames: serviceDnsNames(NAME, ns) },
    store: secretCertificateStore(sa, ns, SECRET),
    timings: { propagationMs: 1_500 },
  });
  const stored = certificatesFromSecret(await admin.resource(Secret, ns).get(SECRET));
  assert.equal(stored.state?.caBundle, certs.caBundle, 'the Secret holds what is served');
  assert.equal(stored.state?.serving.certPem, certs.holder.current.certPem);

  const injector = injectCaBundle({ client: sa, configurations, certificates: certs });
  try {
    await injector.injected({ signal: AbortSignal.timeout(30_000) });
    for (const c of configurations)
      assert.deepEqual(
        await bundlesOf(c),
        (c.webhooks ?? []).map(() => certs.caBundle),
      );
    assert.equal(injector.writes, 2);

    // Someone replaces one webhook's bundle: the watch sees it and puts ours back.
    const foreign = await createCertAuthority('someone-else');
    await admin.resource(ValidatingWebhookConfiguration).patch(
      NAME,
      [
        {
          op: 'replace',
          path: '/webhooks/1/clientConfig/caBundle',
          value: Buffer.from(foreign.certPem).toString('base64'),
        },
      ],
      { type: 'json' },
    );
    await eventually('drift repaired', async () =>
      (await bundlesOf(validating)).every((b) => b === certs.caBundle) ? true : undefined,
    );
    assert.equal(injector.repairs, 1);

    // A CA rotation: both CAs in every webhook, then the new one alone; the Secret follows.
    const oldCa = certs.state.ca.certPem;
    await certs.rotateCa();
    await eventually('both CAs injected', async () => {
      const bundles = [...(await bundlesOf(validating)), ...(await bundlesOf(mutating))];
      return bundles.every((b) => pemCertificates(b).length === 2) ? true : undefined;
    });
    await eventually('the new CA alone', async () => {
      const bundles = [...(await bundlesOf(validating)), ...(await bundlesOf(mutating))];
      return certs.phase === 'stable' && bundles.every((b) => b === certs.caBundle) ? true : undefined;
    });
    assert.notEqual(certs.state.ca.certPem, oldCa);
    const after = certificatesFromSecret(await admin.resource(Secret, ns).get(SECRET));
    assert.equal(after.state?.ca.certPem, certs.state.ca.certPem);

    // Least privilege, checked by the apiserver: another configuration, another Secret, a create: refused.
    await assert.rejects(sa.resource(ValidatingWebhookConfiguration).get('some-other-webhook'), {
      code: 'CAP_ERR_KUBE_FORBIDDEN',
    });
    await assert.rejects(sa.resource(ValidatingWebhookConfiguration).list(), {
      code: 'CAP_ERR_KUBE_FORBIDDEN',
    });
    await assert.rejects(sa.resource(Secret, ns).list(), { code: 'CAP_ERR_KUBE_FORBIDDEN' });
    await assert.rejects(sa.resource(Secret, ns).create({ metadata: { name: 'x' } }), {
      code: 'CAP_ERR_KUBE_FORBIDDEN',
    });
  } finally {
    await injector.close();
    await certs.close();
  }
});

test('two replicas on one Secret agree on one CA, and a renewal by one reaches the other through the watch', {
  skip,
  timeout: 25 * 60_000,
}, async (t) => {
  await setup(t);
  const ns = cluster.namespace;
  const secret = `${NAME}-replicas`;
  const store = () => secretCertificateStore(admin, ns, secret);
  const names = { dnsNames: serviceDnsNames(NAME, ns) };
  const [a, b] = await Promise.all([
    issueWebhookCertificates({ names, store: store() }),
    issueWebhookCertificates({ names, store: store() }),
  ]);
  try {
    assert.equal(a.caBundle, b.caBundle, 'one CA: the loser of the create read the winner’s');
    assert.equal(a.holder.current.certPem, b.holder.current.certPem);
    await a.renewServing();
    await eventually('b serves a’s renewal', async () =>
      b.holder.current.certPem === a.holder.current.certPem ? true : undefined,
    );
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
});

test('full apply creates the configurations and re-creates one that is deleted', {
  skip,
  timeout: 25 * 60_000,
}, async (t) => {
  await setup(t);
  const name = `${NAME}-full`;
  const config = { ...configuration('ValidatingWebhookConfiguration', name, ['full']) };
  const certs = await issueWebhookCertificates({ names: { ipAddresses: ['127.0.0.1'] } });
  const injector = injectCaBundle({
    client: admin,
    configurations: [config],
    certificates: certs,
    apply: 'full',
  });
  try {
    await injector.injected({ signal: AbortSignal.timeout(30_000) });
    assert.deepEqual(await bundlesOf(config), [certs.caBundle]);
    await admin.resource(ValidatingWebhookConfiguration).delete(name);
    await eventually('re-created', async () =>
      (await bundlesOf(config))[0] === certs.caBundle ? true : undefined,
    );
    assert.ok(injector.repairs >= 1);
  } finally {
    await injector.close();
    await certs.close();
    await admin
      .resource(ValidatingWebhookConfiguration)
      .delete(name)
      .catch(() => {});
  }
});

test('a configuration that lacks a webhook is reported, a missing one is waited for, bad input refused', {
  skip,
  timeout: 25 * 60_000,
}, async (t) => {
  await setup(t);
  const name = `${NAME}-late`;
  const config = configuration('ValidatingWebhookConfiguration', name, ['late']);
  const certs = await issueWebhookCertificates({ names: { ipAddresses: ['127.0.0.1'] } });
  const injector = injectCaBundle({ client: admin, configurations: [config], certificates: certs });
  try {
    await sleep(500);
    await assert.rejects(injector.injected({ signal: AbortSignal.timeout(300) }));
    // Created later without a caBundle (kubectl apply of the manifests): injected once it appears.
    await admin.resource(ValidatingWebhookConfiguration).apply(config as never, { fieldManager: 'test' });
    await injector.injected({ signal: AbortSignal.timeout(30_000) });
    assert.deepEqual(await bundlesOf(config), [certs.caBundle]);
  } finally {
    await injector.close();
    await certs.close();
    await admin
      .resource(ValidatingWebhookConfiguration)
      .delete(name)
      .catch(() => {});
  }
  assert.throws(
    () =>
      injectCaBundle({
        client: admin,
        configurations: [{ kind: 'ConfigMap' } as never],
        certificates: certs,
      }),
    {
      code: 'CAP_ERR_WEBHOOK_USAGE',
    },
  );
});

test('cert-manager’s Secret: a renewal by the same CA is served at once, a new CA only after its propagation delay', {
  skip,
  timeout: 25 * 60_000,
}, async (t) => {
  await setup(t);
  const ns = cluster.namespace;
  const name = `${NAME}-cm`;
  const secrets = admin.resource(Secret, ns);
  const dnsNames = serviceDnsNames(NAME, ns);
  const write = async (ca: {
    certPem: string;
    issue: (o: never) => Promise<{ certPem: string; keyPem: string }>;
  }) => {
    const leaf = await ca.issue({ commonName: dnsNames[2], dnsNames, usage: 'server' } as never);
    const data = { 'tls.crt': leaf.certPem, 'tls.key': leaf.keyPem, 'ca.crt': ca.certPem };
    await secrets.apply(
      {
        apiVersion: 'v1',
        kind: 'Secret',
        type: 'kubernetes.io/tls',
        metadata: { name, namespace: ns },
        data: Object.fromEntries(
          Object.entries(data).map(([k, v]) => [k, Buffer.from(v).toString('base64')]),
        ),
      },
      { fieldManager: 'cert-manager', force: true },
    );
    return leaf;
  };
  // Nothing there yet: a clear error after the wait.
  await assert.rejects(
    followCertificateSecret({ client: admin, namespace: ns, name, readyTimeoutMs: 1_000 }),
    {
      code: 'CAP_ERR_WEBHOOK_CERTIFICATE',
    },
  );
  const ca1 = await createCertAuthority('cm-ca-1');
  const first = await write(ca1);
  const propagationMs = 2_000;
  const certs = await followCertificateSecret({ client: admin, namespace: ns, name, propagationMs });
  const bundles: string[] = [];
  certs.onCaBundle((b) => bundles.push(b));
  try {
    assert.equal(certs.holder.current.certPem, first.certPem);
    assert.equal(certs.caBundle.trim(), ca1.certPem.trim());
    const renewed = await write(ca1);
    await eventually('renewal served', async () =>
      certs.holder.current.certPem === renewed.certPem ? true : undefined,
    );
    assert.deepEqual(bundles, [], 'same CA: the bundle did not change');

    const ca2 = await createCertAuthority('cm-ca-2');
    const startedAt = Date.now();
    const rotated = await write(ca2);
    await eventually('both CAs trusted', async () =>
      pemCertificates(certs.caBundle).length === 2 ? true : undefined,
    );
    assert.equal(
      certs.holder.current.certPem,
      renewed.certPem,
      'the old CA’s certificate until the delay is over',
    );
    await eventually('new CA’s certificate served', async () =>
      certs.holder.current.certPem === rotated.certPem ? true : undefined,
    );
    assert.ok(Date.now() - startedAt >= propagationMs - 100, 'not before the propagation delay');
    await eventually('old CA dropped', async () =>
      certs.caBundle.trim() === ca2.certPem.trim() ? true : undefined,
    );
    assert.equal(bundles.length, 2);

    // An inconsistent Secret: a new ca.crt beside a leaf of the served CA. The leaf is served (it verifies
    // already) and its CA is never dropped from the bundle while it is served.
    const ca3 = await createCertAuthority('cm-ca-3');
    const leaf2 = await ca2.issue({ commonName: dnsNames[2] ?? '', dnsNames, usage: 'server' });
    await secrets.patch(name, {
      data: {
        'tls.crt': Buffer.from(leaf2.certPem).toString('base64'),
        'tls.key': Buffer.from(leaf2.keyPem).toString('base64'),
        'ca.crt': Buffer.from(ca3.certPem).toString('base64'),
      },
    });
    await eventually('leaf of the old CA served', async () =>
      certs.holder.current.certPem === leaf2.certPem ? true : undefined,
    );
    await sleep(propagationMs + 1_000);
    assert.deepEqual(
      pemCertificates(certs.caBundle)
        .map((c) => c.trim())
        .sort(),
      [ca2.certPem.trim(), ca3.certPem.trim()].sort(),
      'the served certificate’s CA stays trusted',
    );

    // A broken Secret (key of another certificate) is not served: the current certificate stays.
    const other = await ca2.issue({ commonName: 'x', usage: 'server' });
    await secrets.patch(name, { data: { 'tls.key': Buffer.from(other.keyPem).toString('base64') } });
    await sleep(1_000);
    assert.equal(certs.holder.current.certPem, leaf2.certPem);
  } finally {
    await certs.close();
  }
});
