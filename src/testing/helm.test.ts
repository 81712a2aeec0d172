import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { createHelmHome, type HelmHome, runHelm } from './helm.ts';

describe('helm (real helm v3 built from the Go module proxy)', () => {
  let home: HelmHome;
  let work: string;

  before(() => {
    home = createHelmHome();
    work = mkdtempSync(join(tmpdir(), 'capstan-helm-test-'));
  });
  after(async () => {
    await home?.close();
    rmSync(work, { recursive: true, force: true });
  });

  test('version reports the pinned v3', async () => {
    const r = await runHelm(['version', '--short']);
    // Built with go install, helm knows its version from the module's minor line only.
    assert.match(r.stdout, /^v3\.22\b/);
  });

  test('create, lint and template a chart; values reach the rendered manifests', async () => {
    await home.run(['create', 'shop'], { cwd: work });
    const chart = join(work, 'shop');
    assert.match(readFileSync(join(chart, 'Chart.yaml'), 'utf8'), /name: shop/);

    const lint = await home.run(['lint', chart]);
    assert.match(lint.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);

    const r = await home.run([
      'template',
      'web',
      chart,
      '--namespace',
      'team-a',
      '--set',
      'replicaCount=3',
      '--set',
      'image.tag=1.2.3',
    ]);
    type Manifest = {
      kind: string;
      metadata: { name: string; labels: Record<string, string> };
      spec: { replicas: number; template: { spec: { containers: Array<{ image: string }> } } };
    };
    const docs = parseAllDocuments(r.stdout).map((d) => d.toJS() as Manifest | null);
    const kinds = docs.filter((d) => d).map((d) => d!.kind);
    assert.deepEqual([...kinds].sort(), ['Deployment', 'Pod', 'Service', 'ServiceAccount']);
    const deployment = docs.find((d) => d?.kind === 'Deployment')!;
    assert.equal(deployment.metadata.name, 'web-shop');
    assert.equal(deployment.metadata.labels['app.kubernetes.io/instance'], 'web');
    assert.equal(deployment.spec.replicas, 3);
    assert.equal(deployment.spec.template.spec.containers[0].image, 'nginx:1.2.3');
  });

  test('lint and template reject a broken chart', async () => {
    const chart = join(work, 'broken');
    mkdirSync(join(chart, 'templates'), { recursive: true });
    writeFileSync(join(chart, 'Chart.yaml'), 'apiVersion: v2\nname: broken\n'); // no version
    writeFileSync(
      join(chart, 'templates', 'cm.yaml'),
      'kind: ConfigMap\nmetadata:\n  name: {{ .Values.name\n',
    );
    await assert.rejects(home.run(['lint', chart]), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'CAP_ERR_PEER_COMMAND_FAILED');
      assert.match(err.message, /version is required/);
      return true;
    });
    const r = await home.run(['template', 'x', chart], { allowFailure: true });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /version is required|parse error/);
  });

  test('a local plugin installs into the private home and runs with the HELM_* environment', async () => {
    // Helm links a local plugin under its folder's name, so the folder carries the plugin's name.
    const src = join(work, 'capstan-env');
    mkdirSync(src);
    writeFileSync(
      join(src, 'plugin.yaml'),
      [
        'name: capstan-env',
        'version: 0.1.0',
        'usage: print what Helm hands a plugin',
        'description: test plugin',
        // Helm expands $HELM_PLUGIN_DIR itself; the command is not run through a shell.
        'command: "$HELM_PLUGIN_DIR/run.sh"',
        '',
      ].join('\n'),
    );
    writeFileSync(
      join(src, 'run.sh'),
      [
        '#!/bin/sh',
        'echo "args=$*"',
        'echo "HELM_BIN=$HELM_BIN"',
        'echo "HELM_PLUGIN_NAME=$HELM_PLUGIN_NAME"',
        'echo "HELM_PLUGIN_DIR=$HELM_PLUGIN_DIR"',
        'echo "HELM_NAMESPACE=$HELM_NAMESPACE"',
        'echo "HELM_DATA_HOME=$HELM_DATA_HOME"',
        '',
      ].join('\n'),
    );
    chmodSync(join(src, 'run.sh'), 0o755);

    const installed = await home.run(['plugin', 'install', src]);
    assert.match(installed.stdout, /Installed plugin: capstan-env/);
    const list = await home.run(['plugin', 'list']);
    assert.match(list.stdout, /capstan-env\s+0\.1\.0/);
    assert.ok(existsSync(join(home.env.HELM_DATA_HOME!, 'plugins', 'capstan-env', 'plugin.yaml')));

    const r = await home.run(['--namespace', 'team-b', 'capstan-env', 'one', 'two']);
    const out = Object.fromEntries(
      r.stdout
        .trim()
        .split('\n')
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
    assert.equal(out.args, 'one two');
    assert.match(out.HELM_BIN!, /helm$/);
    assert.equal(out.HELM_PLUGIN_NAME, 'capstan-env');
    assert.equal(out.HELM_PLUGIN_DIR, join(home.env.HELM_DATA_HOME!, 'plugins', 'capstan-env'));
    assert.equal(out.HELM_NAMESPACE, 'team-b');
    assert.equal(out.HELM_DATA_HOME, home.env.HELM_DATA_HOME);

    // A throwaway home (no `home`) does not see the plugin: homes are isolated.
    const other = await runHelm(['plugin', 'list']);
    assert.doesNotMatch(other.stdout, /capstan-env/);
    const unknown = await runHelm(['capstan-env'], { allowFailure: true });
    assert.notEqual(unknown.code, 0);
    assert.match(unknown.stderr, /unknown command "capstan-env"/);
  });

  test('installing a folder without plugin.yaml fails', async () => {
    const empty = join(work, 'not-a-plugin');
    mkdirSync(empty);
    await assert.rejects(home.run(['plugin', 'install', empty]), { code: 'CAP_ERR_PEER_COMMAND_FAILED' });
  });
});
