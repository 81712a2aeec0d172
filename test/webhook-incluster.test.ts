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
import { type TestContext, test } from 'node:test';
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
import { eventually as eventuallyWithin, type SharedCluster, useSharedCluster } from 'capstan/testing';
import {
  certificatesFromSecret,
  type IssuedCertificates,
  pemCertificates,
  rotationPhase,
  webhookSecretName,
} from 'capstan/webhook';
import { parseAllDocuments } from 'yaml';
import { ENABLED_LABEL, INJECTED_LABEL, SIDECAR, SIDECAR_LABEL } from './fixtures/pod-policy-webhook.ts';

const skip = process.getuid?.() === 0 || process.env['CI'] ? false : 'a node needs root';
const mainTs = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
const program = fileURLToPath(new URL('./fixtures/pod-policy-webhook.ts', import.meta.url));
const NAME = 'pod-policy-incluster';

const eventually = <T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 120_000,
) => eventuallyWithin(what, probe, { timeoutMs, intervalMs: 500 });

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

interface Deployed {
  home: SharedCluster;
  work: SharedCluster;
  kube: KubeClient;
  busybox: string;
  /** The certificates the pods stored, once both configurations carry their bundle. */
  stored: IssuedCertificates;
}

/**
 * Deploy the webhook `name` as users do: the image of the program (built once per file, loaded into the node),
 * `capstan webhook manifests --image` in a namespace of the test's own, the Deployment's environment extended
 * by `env`, `kubectl apply --server-side`. Returns once the pods are ready and the bundle is injected; the
 * workload namespace (a second one of the test's) is labelled for the webhook.
 */
async function deploy(
  t: TestContext,
  name: string,
  options: { replicas: number; env?: Record<string, string> },
): Promise<Deployed> {
  // Two namespaces of the test's own: the webhook's (which it never reviews) and the workload's.
  const home = await useSharedCluster(t, { node: true });
  const work = await useSharedCluster(t, { node: true });
  const kube = await KubeClient.fromKubeconfig({ path: home.kubeconfigPath });
  t.after(() => kube.close());
  const busybox = home.node?.images.busybox ?? '';
  image ??= (async () => {
    const spec = await capstanImageSpec({ entry: program, conditions: ['capstan-source'] });
    const loadStarted = Date.now();
    home.loadImage(spec);
    t.diagnostic(`image ${spec.name} loaded into the node in ${Date.now() - loadStarted} ms`);
    return spec.name;
  })();
  const gen = spawnSync(
    process.execPath,
    [
      '--conditions=capstan-source',
      mainTs,
      'webhook',
      'manifests',
      program,
      '--image',
      await image,
      '--image-pull-policy',
      'Never',
      '--namespace',
      home.namespace,
      '--replicas',
      String(options.replicas),
    ],
    { encoding: 'utf8', timeout: 60_000, env: { ...process.env, POD_POLICY_NAME: name } },
  );
  assert.equal(gen.status, 0, gen.stderr);
  t.after(async () => {
    // Cluster-scoped objects outlive the test's namespaces: remove them.
    await kube
      .resource(ValidatingWebhookConfiguration)
      .delete(name)
      .catch(() => {});
    await kube
      .resource(MutatingWebhookConfiguration)
      .delete(name)
      .catch(() => {});
    await kube
      .resource(ClusterRoleBinding)
      .delete(`${name}-webhook`)
      .catch(() => {});
    await kube
      .resource(ClusterRole)
      .delete(`${name}-webhook`)
      .catch(() => {});
  });
  // The program reads its webhook's name from POD_POLICY_NAME: the Deployment must set what the CLI saw.
  const objects = parseAllDocuments(gen.stdout).map((d) => d.toJSON() as Record<string, unknown>);
  const deployment = objects.find((o) => o['kind'] === 'Deployment') as unknown as Deployment;
  const container = deployment.spec?.template.spec?.containers[0];
  assert.ok(container);
  container.env = [
    ...(container.env ?? []),
    ...Object.entries({ POD_POLICY_NAME: name, ...options.env }).map(([n, value]) => ({ name: n, value })),
  ];
  home.kubectl(['apply', '--server-side', '-f', '-'], {
    input: objects.map((o) => JSON.stringify(o)).join('\n'),
  });
  await eventually(
    'webhook pods ready',
    async () => {
      const d = await kube.resource(Deployment, home.namespace).get(name);
      return (d.status?.readyReplicas ?? 0) >= options.replicas ? d : undefined;
    },
    180_000,
  );
  // The pods filled their Secret and injected its CA into both configurations.
  const stored = await eventually(
    'certificates in the Secret',
    async () =>
      certificatesFromSecret(await kube.resource(Secret, home.namespace).get(webhookSecretName(name))).state,
  );
  for (const type of [ValidatingWebhookConfiguration, MutatingWebhookConfiguration] as const) {
    await eventually(`${type.kind} injected`, async () => {
      const config = await kube.resource(type as typeof ValidatingWebhookConfiguration).get(name);
      const current = certificatesFromSecret(
        await kube.resource(Secret, home.namespace).get(webhookSecretName(name)),
      ).state;
      const bundles = (config.webhooks ?? []).map((h) =>
        Buffer.from(h.clientConfig.caBundle ?? '', 'base64').toString(),
      );
      return bundles.length > 0 && bundles.every((b) => b === current?.caBundle) ? true : undefined;
    });
  }
  // The workload namespace asks for this webhook.
  await kube.resource(Namespace).patch(work.namespace, { metadata: { labels: { [ENABLED_LABEL]: name } } });
  return { home, work, kube, busybox, stored };
}

let image: Promise<string> | undefined;

test('in the cluster: the webhook image (capstanImageSpec) deployed with `capstan webhook manifests --image` is called by the apiserver through its Service', {
  skip,
  timeout: 25 * 60_000,
}, async (t) => {
  const { home, work, kube, busybox, stored } = await deploy(t, NAME, { replicas: 1 });
  const secret = webhookSecretName(NAME);
  assert.equal(pemCertificates(stored.caBundle).length, 1);

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

test('in the cluster, two replicas on one Secret renew and rotate the CA by their own timers while pods keep being admitted through the Service: none fails', {
  skip,
  timeout: 25 * 60_000,
}, async (t) => {
  const name = 'pod-policy-rotating';
  // Short lives so the timers fire within the test: a serving certificate of 30 s, a CA of 90 s.
  const { home, work, kube, busybox, stored } = await deploy(t, name, {
    replicas: 2,
    env: { WEBHOOK_CERT_VALIDITY: '30s', WEBHOOK_CA_VALIDITY: '90s', WEBHOOK_CA_PROPAGATION: '5s' },
  });
  const secrets = kube.resource(Secret, home.namespace);
  const pods = kube.resource(Pod, work.namespace);
  const servingSeen = new Set<string>([stored.serving.certPem]);
  const phases = new Set<string>();
  const failures: string[] = [];
  let admissions = 0;
  let running = true;
  const denied = new RegExp(
    `admission webhook "validate-core-v1-pod\\.${name}\\.capstan\\.dev" denied the request`,
  );
  const load = (async () => {
    for (let i = 0; running; i++) {
      const root = i % 2 === 0;
      try {
        const p = await pods.create(pod(`load-${i}`, { root, sidecar: !root, image: busybox }), {
          dryRun: true,
        });
        if (root || p.spec?.containers.length !== 2)
          failures.push(`#${i} ${root ? 'root admitted' : 'no sidecar'}`);
      } catch (err) {
        if (!root || !denied.test((err as Error).message)) failures.push(`#${i}: ${(err as Error).message}`);
      }
      admissions += 1;
      await sleep(50);
    }
  })();
  let rotated: IssuedCertificates;
  try {
    rotated = await eventually(
      'the CA rotated by the pods',
      async () => {
        const state = certificatesFromSecret(await secrets.get(webhookSecretName(name))).state;
        if (!state) return undefined;
        servingSeen.add(state.serving.certPem);
        phases.add(rotationPhase(state));
        return state.ca.certPem !== stored.ca.certPem && rotationPhase(state) === 'stable'
          ? state
          : undefined;
      },
      240_000,
    );
    const after = admissions;
    await eventually('admissions after the rotation', async () =>
      admissions >= after + 20 ? true : undefined,
    );
  } finally {
    running = false;
    await load;
  }
  t.diagnostic(
    `${admissions} admissions; ${servingSeen.size} serving certificates; phases seen: ${[...phases].join(', ')}`,
  );
  assert.deepEqual(failures, [], `failed admissions out of ${admissions}`);
  assert.ok(
    phases.has('ca-introduced') && phases.has('serving-switched'),
    `each step of the rotation: ${[...phases].join(', ')}`,
  );
  assert.ok(servingSeen.size >= 3, 'renewals and the switch each stored a new serving certificate');
  // Both replicas serve a certificate of the new CA, for the Service's name, and agree on its expiry.
  const { items } = await kube
    .resource(Pod, home.namespace)
    .list({ labelSelector: `app.kubernetes.io/name=${name}` });
  const live = items.filter((p) => !p.metadata?.deletionTimestamp);
  assert.equal(live.length, 2);
  const expiries = await Promise.all(
    live.map(async (p) => {
      const r = await eventually('metrics of the new CA', async () => {
        const m = await get(
          p.status?.podIP ?? '',
          '/metrics',
          rotated.caBundle,
          `${name}.${home.namespace}.svc`,
        );
        return m.status === 200 ? m : undefined;
      });
      return /capstan_webhook_certificate_expiry_timestamp_seconds\{certificate="ca"\} (\S+)/.exec(
        r.body,
      )?.[1];
    }),
  );
  assert.equal(expiries[0], expiries[1], `both replicas on one CA: ${expiries.join(' vs ')}`);
  assert.ok(expiries[0]);
});
