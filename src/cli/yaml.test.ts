// `capstan yaml get|set|validate|fmt`, run as users run it (a child process): output, files changed or
// left alone, every problem listed, and the exit statuses.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));
const mainTs = fileURLToPath(new URL('./main.ts', import.meta.url));
const corpus = (name: string) => fileURLToPath(new URL(`../yaml/testdata/corpus/${name}`, import.meta.url));
const schemas = fileURLToPath(new URL('../yaml/testdata/manifest-schemas.ts', import.meta.url));
const crdModule = fileURLToPath(new URL('./testdata/crd/good.ts', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'capstan-yaml-cli-'));
after(() => rmSync(work, { recursive: true, force: true }));

function capstan(args: string[], input?: string) {
  const r = spawnSync(process.execPath, ['--conditions=capstan-source', mainTs, 'yaml', ...args], {
    cwd: root,
    env: { PATH: process.env['PATH'] ?? '' },
    encoding: 'utf8',
    timeout: 60_000,
    ...(input === undefined ? {} : { input }),
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function copy(name: string): string {
  const file = join(work, `${Math.random().toString(36).slice(2)}-${name}`);
  copyFileSync(corpus(name), file);
  return file;
}

describe('capstan yaml', () => {
  test('get prints scalars as is, maps as YAML or JSON; - reads stdin', () => {
    const file = corpus('01-web-deployment.yaml');
    assert.deepEqual(capstan(['get', file, 'spec.template.spec.containers[0].image']), {
      status: 0,
      stdout: 'registry.example.com/shop/web:1.14.2\n',
      stderr: '',
    });
    assert.equal(capstan(['get', file, 'spec.replicas']).stdout, '3\n');
    assert.equal(capstan(['get', file, 'metadata.labels["app.kubernetes.io/name"]']).stdout, 'web\n');
    assert.equal(capstan(['get', file, 'metadata.labels.app\\.kubernetes\\.io/part-of']).stdout, 'shop\n');
    assert.equal(
      capstan(['get', file, 'spec.strategy']).stdout,
      'type: RollingUpdate\nrollingUpdate:\n  maxSurge: 25%\n  maxUnavailable: 0\n',
    );
    assert.deepEqual(JSON.parse(capstan(['get', file, 'spec.strategy.rollingUpdate', '-o', 'json']).stdout), {
      maxSurge: '25%',
      maxUnavailable: 0,
    });
    assert.equal(capstan(['get', '-', 'a.b'], 'a: {b: [1]}\n').stdout, '- 1\n');
  });

  test('get: a missing path exits 1, a bad path 2, invalid YAML 78, each with a message', () => {
    const file = corpus('01-web-deployment.yaml');
    const missing = capstan(['get', file, 'spec.nope']);
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /spec\.nope not found/);
    const bad = capstan(['get', file, 'spec..x']);
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /bad path "spec\.\.x"/);
    const dup = capstan(['get', '-', 'a'], 'a: 1\nb: 2\na: 3\n');
    assert.equal(dup.status, 78);
    assert.match(dup.stderr, /-:3:1: duplicate key "a"/);
    assert.equal(capstan(['get', join(work, 'absent.yaml')]).status, 2);
  });

  test('set edits in place, only the value; a no-op leaves the file untouched; -o writes elsewhere', () => {
    const file = copy('04-statefulset.yaml');
    const before = readFileSync(file, 'utf8');
    const r = capstan(['set', file, 'spec.replicas', '3']);
    assert.equal(r.status, 0, r.stderr);
    const after = readFileSync(file, 'utf8');
    assert.equal(after, before.replace('  replicas: 0    #', '  replicas: 3    #'));
    assert.equal(capstan(['get', file, 'spec.replicas']).stdout, '3\n');
    // "0" is a number, '"0"' a string.
    assert.equal(capstan(['set', file, 'spec.replicas', '0']).status, 0);
    assert.equal(readFileSync(file, 'utf8'), before);
    assert.equal(capstan(['set', file, 'spec.serviceName', '"0"']).status, 0);
    assert.match(readFileSync(file, 'utf8'), /serviceName: "0"\n/);
    const out = join(work, 'out.yaml');
    assert.equal(capstan(['set', file, 'metadata.namespace', 'db', '-o', out]).status, 0);
    assert.match(readFileSync(out, 'utf8'), /namespace: db\n/);
    assert.match(readFileSync(file, 'utf8'), /namespace: orders\n/);
    const stdout = capstan(['set', file, 'metadata.labels.tier', 'db', '-o', '-']);
    assert.match(stdout.stdout, /^ {2}namespace: orders\n {2}labels:\n {4}tier: db\nspec:/m);
    assert.equal(
      capstan(['set', file, 'metadata.name', 'x y', '--string', '-o', '-']).stdout.split('\n')[5],
      '  name: x y',
    );
  });

  test('set in a multi-document file needs --doc (index or Kind/name)', () => {
    const file = copy('05-rbac.yaml');
    const before = readFileSync(file, 'utf8');
    const ambiguous = capstan(['set', file, 'metadata.name', 'x']);
    assert.equal(ambiguous.status, 1);
    assert.match(ambiguous.stderr, /has 3 documents: say which one \(--doc/);
    assert.equal(readFileSync(file, 'utf8'), before);
    assert.equal(capstan(['set', file, 'metadata.name', 'bot', '--doc', 'RoleBinding/deploy-bot']).status, 0);
    assert.equal(capstan(['set', file, 'rules[0].verbs[4]', 'update', '--doc', '1']).status, 0);
    const after = readFileSync(file, 'utf8');
    assert.equal(
      after,
      before
        .replace(
          'kind: RoleBinding\nmetadata:\n  name: deploy-bot',
          'kind: RoleBinding\nmetadata:\n  name: bot',
        )
        .replace(
          'verbs: ["get", "list", "watch", "patch"]',
          'verbs: ["get", "list", "watch", "patch", "update"]',
        ),
    );
    const unknown = capstan(['set', file, 'x', '1', '--doc', 'Pod']);
    assert.equal(unknown.status, 1);
    assert.match(unknown.stderr, /no document is a Pod/);
  });

  test('set refuses what it cannot do in place, and leaves the file alone', () => {
    const file = copy('12-daemonset-anchors.yaml');
    const before = readFileSync(file, 'utf8');
    const r = capstan(['set', file, 'spec.selector.matchLabels.tier', 'x']);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /alias \(\*labels\)/);
    assert.equal(capstan(['set', file, 'spec.updateStrategy.type.x', '1']).status, 1);
    assert.equal(readFileSync(file, 'utf8'), before);
  });

  test('validate: the corpus passes --kube; every problem of every file is listed, exit 1', () => {
    const files = [
      '01-web-deployment.yaml',
      '02-service-and-ingress.yaml',
      '05-rbac.yaml',
      '08-deployment.json',
    ].map(corpus);
    const ok = capstan(['validate', '--kube', ...files]);
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, /ok .*02-service-and-ingress\.yaml \(2 documents\)/);
    const bad1 = join(work, 'bad1.yaml');
    writeFileSync(
      bad1,
      readFileSync(corpus('02-service-and-ingress.yaml'), 'utf8')
        .replace(
          '  name: web\n  namespace: shop\nspec:\n  type',
          '  name: web\n  namespce: shop\nspec:\n  type',
        )
        .replace('cert-manager.io/cluster-issuer: letsencrypt-prod', 'cert-manager.io/cluster-issuer: 7'),
    );
    const bad2 = join(work, 'bad2.yaml');
    writeFileSync(bad2, 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, name: b}\n');
    const r = capstan(['validate', '--kube', bad1, bad2, files[0]!]);
    assert.equal(r.status, 1);
    assert.deepEqual(r.stderr.trimEnd().split('\n'), [
      `${bad1}:7:3: metadata.namespce: unknown field "namespce" (did you mean "namespace"?)`,
      `${bad1}:26:37: metadata.annotations["cert-manager.io/cluster-issuer"]: Invalid input: expected string, received number`,
      `${bad2}:3:21: duplicate key "name"`,
      'capstan yaml validate: 3 problems in 3 files',
    ]);
    assert.match(r.stdout, /ok .*01-web-deployment\.yaml/);
  });

  test('validate --schema module#export, and --crd with a module of custom resources', () => {
    const deploy = corpus('01-web-deployment.yaml');
    assert.equal(capstan(['validate', '--schema', `${schemas}#Deployment`, deploy]).status, 0);
    const typo = join(work, 'typo.yaml');
    writeFileSync(typo, readFileSync(deploy, 'utf8').replace('containerPort: 8080', 'containerport: 8080'));
    const r = capstan(['validate', '--schema', `${schemas}#Deployment`, typo]);
    assert.equal(r.status, 1);
    assert.match(
      r.stderr,
      /typo\.yaml:38:15: .*ports\[0\]\.containerport: unknown field "containerport" \(did you mean "containerPort"\?\)/,
    );
    assert.equal(capstan(['validate', '--schema', `${schemas}#Nope`, deploy]).status, 2);
    assert.equal(capstan(['validate', '--schema', schemas, deploy]).status, 2, 'several schemas: name one');
    assert.equal(capstan(['validate', '--kube', '--schema', schemas, deploy]).status, 2);

    const backups = join(work, 'backups.yaml');
    writeFileSync(
      backups,
      'apiVersion: ops.capstan.dev/v1\nkind: Backup\nmetadata: {name: a}\nspec:\n  schedule: "0 3 * * *"\n  keep: 0\n  kepp: 3\n---\napiVersion: ops.capstan.dev/v1\nkind: Cache\nmetadata: {name: c}\nspec: {size: huge}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, lables: {}}\n',
    );
    const crd = capstan(['validate', '--crd', crdModule, backups]);
    assert.equal(crd.status, 1);
    const lines = crd.stderr.trimEnd().split('\n');
    assert.equal(lines.length, 5, crd.stderr);
    assert.match(lines[0]!, /:6:9: spec\.keep: .*>=1/);
    assert.match(lines[1]!, /:7:3: spec\.kepp: unknown field "kepp" \(did you mean "keep"\?\)/);
    assert.match(lines[2]!, /:12:14: spec\.size: /);
    assert.match(lines[3]!, /:16:21: metadata\.lables: unknown field/);
    assert.equal(capstan(['validate', '--crd', `${crdModule}#Nope`, backups]).status, 2);
  });

  test('fmt re-indents in place keeping comments; --check lists unformatted files', () => {
    const file = join(work, 'messy.yaml');
    writeFileSync(file, '# head\nspec:\n    replicas: 0    # zero stays\n    args:\n    -   a\n');
    const check = capstan(['fmt', '--check', file]);
    assert.equal(check.status, 1);
    assert.match(check.stderr, /1 file is not formatted/);
    assert.equal(capstan(['fmt', file]).status, 0);
    assert.equal(readFileSync(file, 'utf8'), '# head\nspec:\n  replicas: 0 # zero stays\n  args:\n  - a\n');
    assert.equal(capstan(['fmt', '--check', file]).status, 0);
    assert.equal(capstan(['fmt', '--indent', '0', file]).status, 2);
    assert.equal(
      capstan(['fmt', '--sequences', 'indented', file, '-o', '-']).stdout,
      '# head\nspec:\n  replicas: 0 # zero stays\n  args:\n    - a\n',
    );
  });
});
