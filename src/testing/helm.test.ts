import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CoreV1Api } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { peerCatalogue, startControlPlane } from '../peers/index.ts';
import { createHelmHome, type HelmHome, runHelm } from './helm.ts';
import { startRegistry } from './registry.ts';

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

  test('version reports the pinned version (stamped at build, as upstream releases are)', async () => {
    const r = await runHelm(['version', '--template', '{{ .Version }}']);
    assert.equal(r.stdout.trim(), peerCatalogue().peers.helm?.version);
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

  /** A chart whose only template is a ConfigMap: installable on a control plane without nodes. */
  function configChart(name: string, version: string): string {
    const chart = join(work, `${name}-${version}`, name);
    mkdirSync(join(chart, 'templates'), { recursive: true });
    writeFileSync(join(chart, 'Chart.yaml'), `apiVersion: v2\nname: ${name}\nversion: ${version}\n`);
    writeFileSync(join(chart, 'values.yaml'), 'greeting: hello\n');
    writeFileSync(
      join(chart, 'templates', 'cm.yaml'),
      'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-settings\n' +
        'data:\n  greeting: {{ .Values.greeting | quote }}\n  chartVersion: {{ .Chart.Version | quote }}\n',
    );
    return chart;
  }

  test('a chart repository over HTTP: package, index, repo add, search, pull', async () => {
    const repoDir = join(work, 'repo');
    mkdirSync(repoDir);
    for (const v of ['1.0.0', '1.1.0'])
      await home.run(['package', configChart('settings', v), '-d', repoDir]);
    // A chart repository is static files; any HTTP server is one.
    const server = createServer((req, res) => {
      const file = join(repoDir, (req.url ?? '/').split('?')[0]!.replace(/^\/+/, ''));
      if (!file.startsWith(repoDir) || !existsSync(file)) return res.writeHead(404).end();
      res.writeHead(200).end(readFileSync(file));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      await home.run(['repo', 'index', repoDir, '--url', url]);
      await home.run(['repo', 'add', 'local', url]);
      const search = await home.run(['search', 'repo', 'local/settings', '--versions', '-o', 'json']);
      assert.deepEqual(
        (JSON.parse(search.stdout) as Array<{ name: string; version: string }>).map((c) => [
          c.name,
          c.version,
        ]),
        [
          ['local/settings', '1.1.0'],
          ['local/settings', '1.0.0'],
        ],
      );
      const dest = join(work, 'pulled');
      mkdirSync(dest);
      await home.run(['pull', 'local/settings', '--version', '1.0.0', '-d', dest]);
      assert.ok(existsSync(join(dest, 'settings-1.0.0.tgz')));
      const missing = await home.run(['pull', 'local/settings', '--version', '9.9.9', '-d', dest], {
        allowFailure: true,
      });
      assert.notEqual(missing.code, 0);
      assert.match(missing.stderr, /9\.9\.9/);
    } finally {
      server.close();
    }
  });

  test('OCI: push a chart to a real registry (CNCF Distribution) and pull it back', async () => {
    await using registry = await startRegistry();
    const tgzDir = join(work, 'oci');
    await home.run(['package', configChart('oci-settings', '0.3.0'), '-d', tgzDir]);
    const pushed = await home.run([
      'push',
      join(tgzDir, 'oci-settings-0.3.0.tgz'),
      `oci://${registry.host}/charts`,
      '--plain-http',
    ]);
    const digest = /Digest: (sha256:[0-9a-f]{64})/.exec(`${pushed.stdout}${pushed.stderr}`)?.[1];
    assert.ok(digest, `${pushed.stdout}${pushed.stderr}`);
    // The registry's own API lists the tag helm pushed.
    const tags = (await (await fetch(`${registry.url}/v2/charts/oci-settings/tags/list`)).json()) as {
      tags: string[];
    };
    assert.deepEqual(tags.tags, ['0.3.0']);
    const dest = join(work, 'oci-pulled');
    mkdirSync(dest);
    await home.run([
      'pull',
      `oci://${registry.host}/charts/oci-settings`,
      '--version',
      '0.3.0',
      '--plain-http',
      '-d',
      dest,
    ]);
    assert.ok(existsSync(join(dest, 'oci-settings-0.3.0.tgz')));
  });

  test('install, upgrade and uninstall a release on a real control plane', async () => {
    await using cp = await startControlPlane();
    const env = { KUBECONFIG: cp.kubeconfigPath };
    const core = cp.kubeConfig.makeApiClient(CoreV1Api);
    const read = async () =>
      (await core.readNamespacedConfigMap({ name: 'demo-settings', namespace: 'default' })).data;
    await home.run(['install', 'demo', configChart('settings', '1.0.0'), '--wait'], { env });
    assert.deepEqual(await read(), { greeting: 'hello', chartVersion: '1.0.0' });
    await home.run(['upgrade', 'demo', configChart('settings', '1.1.0'), '--set', 'greeting=bonjour'], {
      env,
    });
    assert.deepEqual(await read(), { greeting: 'bonjour', chartVersion: '1.1.0' });
    const list = await home.run(['list', '-o', 'json'], { env });
    assert.deepEqual(
      (JSON.parse(list.stdout) as Array<{ name: string; revision: string; status: string }>).map((r) => [
        r.name,
        r.revision,
        r.status,
      ]),
      [['demo', '2', 'deployed']],
    );
    // A second install of the same name is refused by helm, with its reason.
    const again = await home.run(['install', 'demo', configChart('settings', '1.0.0')], {
      env,
      allowFailure: true,
    });
    assert.notEqual(again.code, 0);
    assert.match(again.stderr, /cannot re-use a name that is still in use/);
    await home.run(['uninstall', 'demo'], { env });
    await assert.rejects(read(), (e: unknown) => (e as { code?: number }).code === 404);
  });
});
