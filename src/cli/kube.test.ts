// `capstan kube rbac | manifests | new operator`, run as users run them (a child process), and their output
// held to a real kube-apiserver: the manifests are applied with kubectl (server-side, strict field
// validation), and a scaffolded project's own test runs against a real control plane.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import {
  ClusterRole,
  Deployment,
  operatorManifests,
  PodDisruptionBudget,
  RoleBinding,
  ServiceAccount,
  terminationGraceSeconds,
} from '../kube/index.ts';
import { type ControlPlane, startControlPlane } from '../testing/index.ts';
import { operator } from './testdata/kube/operator.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const mainTs = fileURLToPath(new URL('./main.ts', import.meta.url));
const fixture = fileURLToPath(new URL('./testdata/kube/operator.ts', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'capstan-kube-cli-'));
after(() => rmSync(work, { recursive: true, force: true }));

function capstan(args: string[], cwd = root) {
  const r = spawnSync(process.execPath, ['--conditions=capstan-source', mainTs, ...args], {
    cwd,
    env: { PATH: process.env['PATH'] ?? '' },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const docs = (yaml: string) => parseAllDocuments(yaml).map((d) => d.toJSON() as Record<string, unknown>);

describe('capstan kube rbac and manifests', () => {
  let cp: ControlPlane;
  before(async () => {
    cp = await startControlPlane();
  });
  after(() => cp?.stop());

  function kubectlPath(): string {
    assert.ok(cp.assets.kubectl, 'the kube peer has kubectl');
    return cp.assets.kubectl;
  }

  function kubectl(args: string[]) {
    const r = spawnSync(kubectlPath(), ['--kubeconfig', cp.kubeconfigPath, ...args], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  test('rbac prints the ServiceAccount, roles and bindings; the extra rule lands in a Role', () => {
    const r = capstan(['kube', 'rbac', fixture]);
    assert.equal(r.status, 0, r.stderr);
    const objects = docs(r.stdout);
    assert.deepEqual(
      objects.map((o) => o['kind']),
      ['ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding', 'Role', 'RoleBinding'],
    );
    const role = objects[3] as { metadata: { namespace: string }; rules: unknown[] };
    assert.equal(role.metadata.namespace, 'gizmo-operator-system');
    assert.deepEqual(role.rules, [{ apiGroups: [''], resources: ['secrets'], verbs: ['get'] }]);
  });

  test('manifests -o writes one numbered file per object; kubectl apply --server-side accepts them all', () => {
    const out = join(work, 'deploy');
    const r = capstan([
      'kube',
      'manifests',
      fixture,
      '--image',
      'gizmo:1',
      '-o',
      out,
      '--log-level',
      'debug',
    ]);
    assert.equal(r.status, 0, r.stderr);
    const files = readdirSync(out).sort();
    assert.deepEqual(files, [
      '01-namespace-gizmo-operator-system.yaml',
      '02-customresourcedefinition-gizmos.cli.capstan.dev.yaml',
      '03-serviceaccount-gizmo-operator.yaml',
      '04-clusterrole-gizmo-operator.yaml',
      '05-clusterrolebinding-gizmo-operator.yaml',
      '06-role-gizmo-operator.yaml',
      '07-rolebinding-gizmo-operator.yaml',
      '08-role-gizmo-operator-leader-election.yaml',
      '09-rolebinding-gizmo-operator-leader-election.yaml',
      '10-deployment-gizmo-operator.yaml',
      '11-poddisruptionbudget-gizmo-operator.yaml',
    ]);
    const expected = operatorManifests(operator, { image: 'gizmo:1', logLevel: 'debug' });
    assert.deepEqual(
      files.map((f) => docs(readFileSync(join(out, f), 'utf8'))[0]),
      JSON.parse(JSON.stringify(expected)),
    );
    // Strict field validation: an unknown or misplaced field (a probe, the preStop sleep) is refused, not dropped.
    const applied = kubectl([
      'apply',
      '--server-side',
      '--validate=strict',
      '--field-manager=test',
      '-f',
      out,
    ]);
    assert.equal(applied.status, 0, applied.stderr);
    assert.equal(applied.stdout.trim().split('\n').length, files.length, applied.stdout);
  });

  test('the applied Deployment and PodDisruptionBudget read back as written', async () => {
    const ns = 'gizmo-operator-system';
    const deployment = await cp.client.resource(Deployment, ns).get('gizmo-operator');
    const pod = deployment.spec?.template.spec;
    const container = pod?.containers[0];
    assert.equal(deployment.spec?.replicas, 2, 'two replicas with leader election');
    assert.equal(pod?.serviceAccountName, 'gizmo-operator');
    assert.equal(pod?.terminationGracePeriodSeconds, terminationGraceSeconds());
    assert.equal(pod?.securityContext?.runAsNonRoot, true);
    assert.equal(container?.securityContext?.readOnlyRootFilesystem, true);
    assert.deepEqual(container?.securityContext?.capabilities?.drop, ['ALL']);
    assert.equal(container?.readinessProbe?.httpGet?.path, '/readyz');
    assert.equal(container?.livenessProbe?.httpGet?.path, '/livez');
    assert.equal(container?.lifecycle?.preStop?.sleep?.seconds, 5);
    const env = Object.fromEntries(
      (container?.env ?? []).map((e) => [e.name, e.value ?? e.valueFrom?.fieldRef?.fieldPath]),
    );
    assert.deepEqual(env, {
      PORT: '8080',
      LEADER_ELECTION: 'true',
      POD_NAMESPACE: 'metadata.namespace',
      POD_NAME: 'metadata.name',
      LOG_LEVEL: 'debug',
    });
    const pdb = await cp.client.resource(PodDisruptionBudget, ns).get('gizmo-operator');
    assert.equal(pdb.spec?.maxUnavailable, 1);
    assert.ok(await cp.client.resource(ServiceAccount, ns).get('gizmo-operator'));
    assert.ok(await cp.client.resource(ClusterRole).get('gizmo-operator'));
    assert.ok(await cp.client.resource(RoleBinding, ns).get('gizmo-operator-leader-election'));
  });

  test('stdout is multi-document YAML for kubectl apply -f -; a server-side dry run of it passes', () => {
    const r = capstan([
      'kube',
      'manifests',
      fixture,
      '--image',
      'gizmo:2',
      '--replicas',
      '1',
      '--no-namespace',
    ]);
    assert.equal(r.status, 0, r.stderr);
    const objects = docs(r.stdout);
    assert.equal(objects[0]?.['kind'], 'CustomResourceDefinition', '--no-namespace');
    const deployment = objects.find((o) => o['kind'] === 'Deployment') as Deployment;
    assert.equal(deployment.spec?.replicas, 1);
    const dry = spawnSync(
      kubectlPath(),
      [
        '--kubeconfig',
        cp.kubeconfigPath,
        'apply',
        '--server-side',
        '--dry-run=server',
        '--field-manager=test',
        '-f',
        '-',
      ],
      { input: r.stdout, encoding: 'utf8', timeout: 60_000 },
    );
    assert.equal(dry.status, 0, dry.stderr);
    assert.match(dry.stdout, /deployment\.apps\/gizmo-operator serverside-applied \(server dry run\)/);
  });

  test('usage errors: no operator exported, missing --image, a bad pull policy', () => {
    const none = capstan(['kube', 'rbac', fileURLToPath(new URL('./testdata/crd/good.ts', import.meta.url))]);
    assert.equal(none.status, 2);
    assert.match(none.stderr, /exports no operator/);
    const noImage = capstan(['kube', 'manifests', fixture]);
    assert.equal(noImage.status, 2);
    assert.match(noImage.stderr, /--image/);
    const policy = capstan([
      'kube',
      'manifests',
      fixture,
      '--image',
      'x',
      '--image-pull-policy',
      'Sometimes',
    ]);
    assert.equal(policy.status, 2);
    assert.match(policy.stderr, /Always, IfNotPresent or Never/);
  });
});

describe('capstan kube new operator', () => {
  const dir = join(work, 'demo');

  // Type-checking the project compiles capstan's sources too: this test took 40 s here, 140 s under load.
  test('writes a project whose own test passes against a real control plane', { timeout: 600_000 }, () => {
    const r = capstan([
      'kube',
      'new',
      'operator',
      'demo-operator',
      '-d',
      dir,
      '--kind',
      'Greeting',
      '--group',
      'demo.capstan.dev',
    ]);
    assert.equal(r.status, 0, r.stderr);
    for (const f of [
      'package.json',
      'README.md',
      'src/greeting.ts',
      'src/controller.ts',
      'src/operator.ts',
      'src/main.ts',
      'src/controller.test.ts',
    ]) {
      assert.ok(existsSync(join(dir, f)), f);
    }
    // `capstan` resolves to this checkout, and zod to the same copy capstan uses: no registry involved.
    mkdirSync(join(dir, 'node_modules'));
    symlinkSync(root, join(dir, 'node_modules', 'capstan'));
    symlinkSync(join(root, 'node_modules', 'zod'), join(dir, 'node_modules', 'zod'));
    mkdirSync(join(dir, 'node_modules', '@types'));
    symlinkSync(join(root, 'node_modules', '@types', 'node'), join(dir, 'node_modules', '@types', 'node'));
    const tsc = spawnSync(
      process.execPath,
      [
        join(root, 'node_modules', 'typescript', 'bin', 'tsc'),
        '-p',
        join(dir, 'tsconfig.json'),
        '--customConditions',
        'capstan-source',
      ],
      { cwd: dir, encoding: 'utf8', timeout: 240_000 },
    );
    assert.equal(tsc.status, 0, `the project type-checks:\n${tsc.stdout}${tsc.stderr}`);
    const run = spawnSync(
      process.execPath,
      [
        '--conditions=capstan-source',
        '--test',
        '--test-reporter=tap',
        '--test-concurrency=1',
        'src/controller.test.ts',
      ],
      // Without NODE_TEST_CONTEXT: inside our test run, a child node --test would report to us, not to stdout.
      { cwd: dir, env: { PATH: process.env['PATH'] ?? '' }, encoding: 'utf8', timeout: 240_000 },
    );
    assert.equal(run.status, 0, `the project's test passes:\n${run.stdout}\n${run.stderr}`);
    assert.match(run.stdout, /# pass 1/);
  });

  test("the CLI reads the new project's operator module: crd generate, rbac", () => {
    const crd = capstan(['crd', 'generate', 'src/operator.ts'], dir);
    assert.equal(crd.status, 0, crd.stderr);
    assert.match(crd.stdout, /name: greetings\.demo\.capstan\.dev/);
    const rbac = capstan(['kube', 'rbac', 'src/operator.ts'], dir);
    assert.equal(rbac.status, 0, rbac.stderr);
    assert.match(rbac.stdout, /greetings\/status/);
  });

  test('refuses a folder that is not empty and a name that is not a DNS label', () => {
    const again = capstan(['kube', 'new', 'operator', 'demo-operator', '-d', dir]);
    assert.equal(again.status, 2);
    assert.match(again.stderr, /not empty/);
    const bad = capstan(['kube', 'new', 'operator', 'Demo_Operator', '-d', join(work, 'bad')]);
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /DNS label/);
  });
});
