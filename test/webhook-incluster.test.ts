// The webhook as users deploy it: its program (test/fixtures/pod-policy-webhook.ts, which calls runWebhook)
// bundled into an image by capstanImageSpec, loaded into the shared node, the manifests from
// `capstan webhook manifests --image`, applied with kubectl. The pod issues its CA into its Secret, injects
// the bundle into the configurations as its least-privilege ServiceAccount, and the apiserver calls it
// through its Service: root is denied, a sidecar is injected and runs. A replacement pod carries on with the
// same CA. The webhook only acts in a namespace labelled for it, so the shared cluster's other tests never
// meet it.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { request } from 'node:https';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import {
  ClusterRole,
  ClusterRoleBinding,
  Deployment,
  KubeClient,
  KubeError,
  MutatingWebhookConfiguration,
  Namespace,
  Pod,
  Secret,
  ValidatingWebhookConfiguration,
} from 'capstan/kube';
import { capstanImageSpec } from 'capstan/peers';
import { useSharedCluster } from 'capstan/testing';
import { certificatesFromSecret, pemCertificates, webhookSecretName } from 'capstan/webhook';
import { ENABLED_LABEL, INJECTED_LABEL, SIDECAR, SIDECAR_LABEL } from './fixtures/pod-policy-webhook.ts';

const skip = process.getuid?.() === 0 || process.env['CI'] ? false : 'a node needs root';
const mainTs = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
const program = fileURLToPath(new URL('./fixtures/pod-policy-webhook.ts', import.meta.url));
const NAME = 'pod-policy-incluster';

async function eventually<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 120_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await sleep(500);
  }
}

/** GET over HTTPS from a pod, verifying its certificate against `ca` for the Service's name. */
function get(
  ip: string,
  path: string,
  ca: string,
  servername: string,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: ip, port: 9443, path, ca, servername, timeout: 5_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        body += c;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

function pod(name: string, options: { root?: boolean; sidecar?: boolean; image: string }): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, labels: options.sidecar ? { [SIDECAR_LABEL]: 'inject' } : {} },
    spec: {
      terminationGracePeriodSeconds: 0,
      containers: [
        {
          name: 'app',
          image: options.image,
          imagePullPolicy: 'IfNotPresent',
          command: ['sh', '-c', 'sleep 3600'],
          securityContext: { runAsUser: options.root ? 0 : 1000 },
        },
      ],
    },
  };
}

test('in the cluster: the webhook image (capstanImageSpec) deployed with `capstan webhook manifests --image` is called by the apiserver through its Service', {
  skip,
  timeout: 25 * 60_000,
}, async (t) => {
  // Two namespaces of the test's own: the webhook's (which it never reviews) and the workload's.
  const home = await useSharedCluster(t, { node: true });
  const work = await useSharedCluster(t, { node: true });
  const kube = await KubeClient.fromKubeconfig({ path: home.kubeconfigPath });
  t.after(() => kube.close());
  const busybox = home.node?.images.busybox ?? '';

  const image = await capstanImageSpec({ entry: program, conditions: ['capstan-source'] });
  const loadStarted = Date.now();
  home.loadImage(image);
  t.diagnostic(`image ${image.name} loaded into the node in ${Date.now() - loadStarted} ms`);

  const gen = spawnSync(
    process.execPath,
    [
      '--conditions=capstan-source',
      mainTs,
      'webhook',
      'manifests',
      program,
      '--image',
      image.name,
      '--image-pull-policy',
      'Never',
      '--namespace',
      home.namespace,
      '--replicas',
      '1',
    ],
    { encoding: 'utf8', timeout: 60_000 },
  );
  assert.equal(gen.status, 0, gen.stderr);
  t.after(async () => {
    // Cluster-scoped objects outlive the test's namespaces: remove them.
    await kube
      .resource(ValidatingWebhookConfiguration)
      .delete(NAME)
      .catch(() => {});
    await kube
      .resource(MutatingWebhookConfiguration)
      .delete(NAME)
      .catch(() => {});
    await kube
      .resource(ClusterRoleBinding)
      .delete(`${NAME}-webhook`)
      .catch(() => {});
    await kube
      .resource(ClusterRole)
      .delete(`${NAME}-webhook`)
      .catch(() => {});
  });
  home.kubectl(['apply', '--server-side', '-f', '-'], { input: gen.stdout });
  await eventually(
    'webhook pod ready',
    async () => {
      const d = await kube.resource(Deployment, home.namespace).get(NAME);
      return (d.status?.readyReplicas ?? 0) >= 1 ? d : undefined;
    },
    180_000,
  );
  // The pod filled its Secret and injected its CA into both configurations.
  const secret = webhookSecretName(NAME);
  const stored = await eventually(
    'certificates in the Secret',
    async () => certificatesFromSecret(await kube.resource(Secret, home.namespace).get(secret)).state,
  );
  assert.equal(pemCertificates(stored.caBundle).length, 1);
  for (const type of [ValidatingWebhookConfiguration, MutatingWebhookConfiguration] as const) {
    await eventually(`${type.kind} injected`, async () => {
      const config = await kube.resource(type as typeof ValidatingWebhookConfiguration).get(NAME);
      const bundles = (config.webhooks ?? []).map((h) =>
        Buffer.from(h.clientConfig.caBundle ?? '', 'base64').toString(),
      );
      return bundles.length > 0 && bundles.every((b) => b === stored.caBundle) ? true : undefined;
    });
  }

  // The pod serves the Service's names with a certificate of the injected CA; its metrics say when the
  // certificates expire and that the bundle was written.
  const [webhookPod] = (
    await kube.resource(Pod, home.namespace).list({ labelSelector: `app.kubernetes.io/name=${NAME}` })
  ).items;
  const metrics = await eventually('metrics with the injection counted', async () => {
    const r = await get(
      webhookPod?.status?.podIP ?? '',
      '/metrics',
      stored.caBundle,
      `${NAME}.${home.namespace}.svc`,
    );
    return r.status === 200 && /capstan_webhook_ca_bundle_writes_total\{reason="write"\} [1-9]/.test(r.body)
      ? r.body
      : undefined;
  });
  const servingExpiry = Number(
    /capstan_webhook_certificate_expiry_timestamp_seconds\{certificate="serving"\} (\S+)/.exec(metrics)?.[1],
  );
  const caExpiry = Number(
    /capstan_webhook_certificate_expiry_timestamp_seconds\{certificate="ca"\} (\S+)/.exec(metrics)?.[1],
  );
  assert.ok(
    servingExpiry > Date.now() / 1000 + 29 * 86_400,
    `serving certificate for 30 days: ${servingExpiry}`,
  );
  assert.ok(caExpiry > servingExpiry, 'the CA outlives the serving certificate');

  // The workload namespace asks for this webhook.
  await kube.resource(Namespace).patch(work.namespace, { metadata: { labels: { [ENABLED_LABEL]: NAME } } });
  const pods = kube.resource(Pod, work.namespace);
  const denied = await eventually('root denied through the Service', async () => {
    try {
      await pods.create(pod('root', { root: true, image: busybox }), { dryRun: true });
      return undefined;
    } catch (err) {
      return err instanceof KubeError && /denied the request/.test(err.message) ? err : undefined;
    }
  });
  assert.match(
    denied.message,
    /admission webhook "validate-core-v1-pod\.pod-policy-incluster\.capstan\.dev" denied the request: container app would run with root privileges/,
  );
  const created = await pods.create(pod('with-sidecar', { sidecar: true, image: busybox }));
  assert.deepEqual(
    created.spec?.containers.map((c) => c.name),
    ['app', SIDECAR],
  );
  assert.equal(created.metadata?.labels?.[INJECTED_LABEL], 'true');
  await eventually('the injected sidecar runs on the node', async () => {
    const p = await pods.get('with-sidecar');
    const statuses = p.status?.containerStatuses ?? [];
    return statuses.length === 2 && statuses.every((s) => s.state?.running) ? p : undefined;
  });

  // The webhook's own namespace is never reviewed: its pod restarts even though the webhook is down then.
  const [first] = (
    await kube.resource(Pod, home.namespace).list({ labelSelector: `app.kubernetes.io/name=${NAME}` })
  ).items;
  assert.ok(first?.metadata?.name);
  await kube.resource(Pod, home.namespace).delete(first.metadata.name, { gracePeriodSeconds: 0 });
  await eventually(
    'a replacement pod ready',
    async () => {
      const { items } = await kube
        .resource(Pod, home.namespace)
        .list({ labelSelector: `app.kubernetes.io/name=${NAME}` });
      return items.some(
        (p) =>
          p.metadata?.uid !== first.metadata?.uid &&
          !p.metadata?.deletionTimestamp &&
          p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
      )
        ? true
        : undefined;
    },
    180_000,
  );
  // It carries on with the stored CA: the same bundle, and admissions work again.
  const after = certificatesFromSecret(await kube.resource(Secret, home.namespace).get(secret)).state;
  assert.equal(after?.ca.certPem, stored.ca.certPem, 'same CA after the restart');
  const again = await eventually('admitted after the restart', async () => {
    const p = await pods
      .create(pod('after-restart', { sidecar: true, image: busybox }), { dryRun: true })
      .catch(() => undefined);
    return p?.spec?.containers.length === 2 ? p : undefined;
  });
  assert.equal(again.metadata?.labels?.[INJECTED_LABEL], 'true');
});
