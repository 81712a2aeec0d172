// `capstan webhook manifests --image`: everything to run a webhook in the cluster, checked by the real
// apiserver in a server-side dry run (nothing is registered, so the shared cluster's other tests never meet
// it), with cert-manager's objects and the usage errors.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { useSharedCluster } from 'capstan/testing';
import { parseAllDocuments } from 'yaml';

const program = fileURLToPath(new URL('./fixtures/pod-policy-webhook.ts', import.meta.url));
const mainTs = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));

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

test('--image: RBAC, the empty Secret, Service, Deployment and configurations, accepted by the real apiserver', async (t) => {
  const cluster = await useSharedCluster(t);
  const out = capstan([
    'webhook',
    'manifests',
    program,
    '--image',
    'capstan.local/pod-policy:1',
    '--namespace',
    cluster.namespace,
    '--replicas',
    '3',
    '--log-level',
    'debug',
  ]);
  assert.equal(out.status, 0, out.stderr);
  const objects = docs(out.stdout);
  assert.deepEqual(
    objects.map((o) => o['kind']),
    [
      'Namespace',
      'ServiceAccount',
      'ClusterRole',
      'ClusterRoleBinding',
      'Role',
      'RoleBinding',
      'Secret',
      'Service',
      'Deployment',
      'PodDisruptionBudget',
      'ValidatingWebhookConfiguration',
      'MutatingWebhookConfiguration',
    ],
  );
  const deployment = objects.find((o) => o['kind'] === 'Deployment');
  assert.equal(deployment?.['spec'].replicas, 3);
  const env = deployment?.['spec'].template.spec.containers[0].env as Array<{ name: string; value?: string }>;
  assert.equal(env.find((e) => e.name === 'LOG_LEVEL')?.value, 'debug');
  assert.equal(env.find((e) => e.name === 'WEBHOOK_CERTIFICATES')?.value, 'capstan');
  const applied = cluster.kubectl(['apply', '--dry-run=server', '--server-side', '-f', '-'], {
    input: out.stdout,
  });
  for (const kind of [
    'serviceaccount',
    'clusterrole',
    'role',
    'secret',
    'service',
    'deployment',
    'poddisruptionbudget',
    'validatingwebhookconfiguration',
    'mutatingwebhookconfiguration',
  ]) {
    assert.match(
      applied,
      new RegExp(`${kind}[^ ]*/[^ ]+ serverside-applied \\(server dry run\\)`),
      `${kind}: ${applied}`,
    );
  }
});

test('--image --certificates cert-manager: an Issuer and a Certificate instead of the Secret; usage errors exit 2', () => {
  const out = capstan([
    'webhook',
    'manifests',
    program,
    '--image',
    'x:1',
    '--certificates',
    'cert-manager',
    '--issuer',
    'ClusterIssuer/corp-ca',
  ]);
  assert.equal(out.status, 0, out.stderr);
  const objects = docs(out.stdout);
  const certificate = objects.find((o) => o['kind'] === 'Certificate');
  assert.deepEqual(certificate?.['spec'].issuerRef, { kind: 'ClusterIssuer', name: 'corp-ca' });
  assert.ok(!objects.some((o) => o['kind'] === 'Secret' || o['kind'] === 'Issuer'));
  const cases: Array<[string[], RegExp]> = [
    [['--image', 'x', '--service', 'a/b'], /no --service, --port, --url or --ca-bundle/],
    [['--service', 'a/b', '--replicas', '2'], /go with --image/],
    [['--image', 'x', '--replicas', '0'], /not a replica count/],
    [['--image', 'x', '--certificates', 'vault'], /--certificates: one of capstan, cert-manager/],
    [['--image', 'x', '--certificates', 'cert-manager', '--issuer', 'corp-ca'], /--issuer: Issuer\/<name>/],
    [['--image', 'x', '--issuer', 'Issuer/a'], /issuer needs certificates: cert-manager/],
    [['--image', 'x', '--namespace', 'Not_A_Label'], /namespace must be a DNS-1123 label/],
  ];
  for (const [args, reason] of cases) {
    const r = capstan(['webhook', 'manifests', program, ...args]);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, reason, args.join(' '));
  }
});
