// `capstan external-metrics manifests`, run as users run it (a child process): the objects it prints, held to
// the real kube-apiserver (a server-side dry run with strict field validation), and its usage errors.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { createCertAuthority } from '../runtime/index.ts';
import { useSharedCluster } from '../testing/index.ts';

const mainTs = fileURLToPath(new URL('./main.ts', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'capstan-external-metrics-cli-'));
after(() => rmSync(work, { recursive: true, force: true }));

function capstan(args: string[]) {
  const r = spawnSync(process.execPath, ['--conditions=capstan-source', mainTs, ...args], {
    env: { PATH: process.env['PATH'] ?? '' },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('external-metrics manifests: the objects, accepted by the real apiserver; usage errors exit 2', async (t) => {
  const ca = await createCertAuthority('cli-test-ca');
  const caFile = join(work, 'ca.crt');
  writeFileSync(caFile, ca.certPem);
  const cluster = await useSharedCluster(t);
  const ns = cluster.namespace;

  const inCluster = capstan([
    'external-metrics',
    'manifests',
    '--namespace',
    ns,
    '--ca-bundle',
    caFile,
    '--port',
    '6443',
    '--selector',
    'app=metrics,tier=adapter',
  ]);
  assert.equal(inCluster.status, 0, inCluster.stderr);
  const objects = parseAllDocuments(inCluster.stdout).map(
    (d) => d.toJSON() as { kind: string; spec?: Record<string, unknown> },
  );
  assert.deepEqual(
    objects.map((o) => o.kind),
    ['ServiceAccount', 'Service', 'APIService', 'ClusterRoleBinding', 'RoleBinding'],
  );
  assert.deepEqual((objects[1]?.spec as { selector: unknown } | undefined)?.selector, {
    app: 'metrics',
    tier: 'adapter',
  });
  const apiService = (objects[2]?.spec ?? {}) as { caBundle: string; service: { namespace: string } };
  assert.equal(Buffer.from(apiService.caBundle, 'base64').toString(), ca.certPem);
  assert.equal(apiService.service.namespace, ns);
  // Valid for the apiserver, field by field (nothing is stored: the APIService name is the cluster's one).
  // Without cluster.kubectl's namespace: one binding lives in kube-system.
  const dryRun = (yaml: string) => {
    const r = spawnSync(
      cluster.kubectlPath ?? 'kubectl',
      [
        '--kubeconfig',
        cluster.kubeconfigPath,
        'apply',
        '--server-side',
        '--dry-run=server',
        '--field-manager=test',
        '-f',
        '-',
      ],
      { input: yaml, encoding: 'utf8', timeout: 60_000 },
    );
    assert.equal(r.status, 0, r.stderr);
    return r.stdout;
  };
  assert.match(
    dryRun(inCluster.stdout),
    /apiservice.apiregistration.k8s.io\/v1beta1.external.metrics.k8s.io serverside-applied \(server dry run\)/,
  );

  const outside = capstan([
    'external-metrics',
    'manifests',
    '--namespace',
    ns,
    '--ca-bundle',
    caFile,
    '--port',
    '6443',
    '--endpoint',
    '10.244.0.1',
    '--service',
    'adapter',
  ]);
  assert.equal(outside.status, 0, outside.stderr);
  const kinds = parseAllDocuments(outside.stdout).map((d) => (d.toJSON() as { kind: string }).kind);
  assert.deepEqual(kinds, [
    'ServiceAccount',
    'Service',
    'EndpointSlice',
    'APIService',
    'ClusterRoleBinding',
    'RoleBinding',
  ]);
  assert.match(
    dryRun(outside.stdout),
    /endpointslice.discovery.k8s.io\/adapter serverside-applied \(server dry run\)/,
  );

  const base = ['external-metrics', 'manifests', '--namespace', ns, '--ca-bundle', caFile];
  const bad: Array<[string[], RegExp]> = [
    [[...base, '--port', '6443'], /exactly one of selector .* and endpoint/],
    [[...base, '--port', '6443', '--selector', 'a=b', '--endpoint', '10.0.0.1'], /exactly one of selector/],
    [[...base, '--port', '70000', '--selector', 'a=b'], /not a port: 70000/],
    [[...base, '--port', '6443', '--selector', 'a'], /--selector: key=value/],
    [
      [
        'external-metrics',
        'manifests',
        '--namespace',
        ns,
        '--ca-bundle',
        join(work, 'missing.crt'),
        '--port',
        '1',
        '--selector',
        'a=b',
      ],
      /--ca-bundle: cannot read/,
    ],
    [
      [
        'external-metrics',
        'manifests',
        '--namespace',
        ns,
        '--ca-bundle',
        mainTs,
        '--port',
        '1',
        '--selector',
        'a=b',
      ],
      /caPem is not a PEM certificate/,
    ],
    [
      ['external-metrics', 'manifests', '--ca-bundle', caFile, '--port', '1', '--selector', 'a=b'],
      /--namespace/,
    ],
  ];
  for (const [args, reason] of bad) {
    const r = capstan(args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, reason, args.join(' '));
    assert.equal(r.stdout, '');
  }
});
