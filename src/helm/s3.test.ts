// s3:// chart repositories end to end: the real helm (the Helm peer) with Capstan's plugin installed from
// the folder the package ships, the real S3-compatible server (Versity Gateway), the shared control plane.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createHelmHome, type HelmHome, type S3Peer, startS3, useSharedCluster } from 'capstan/testing';
import { parse } from 'yaml';
import { parseChartIndex, pushChart } from './chart-index.ts';
import { HelmErrorCode } from './errors.ts';
import { ChartBucket } from './s3.ts';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const shippedPlugin = join(repoRoot, 'helm-plugin', 'capstan');

/** The AWS variables for `s3`, isolated from any ~/.aws of the machine. */
function awsEnv(s3: S3Peer, work: string, secret = s3.secretAccessKey): Record<string, string> {
  return {
    AWS_ENDPOINT_URL: s3.endpoint,
    AWS_REGION: s3.region,
    AWS_ACCESS_KEY_ID: s3.accessKeyId,
    AWS_SECRET_ACCESS_KEY: secret,
    AWS_CONFIG_FILE: join(work, 'no-aws-config'),
    AWS_SHARED_CREDENTIALS_FILE: join(work, 'no-aws-credentials'),
    AWS_EC2_METADATA_DISABLED: 'true',
    // The launcher runs this Node (the one that runs TypeScript), whatever `node` is on PATH.
    CAPSTAN_NODE: process.execPath,
  };
}

/** A chart whose only template is a ConfigMap: a release needs no node. */
function configChart(work: string, name: string, version: string): string {
  const chart = join(work, `${name}-${version}`, name);
  mkdirSync(join(chart, 'templates'), { recursive: true });
  writeFileSync(
    join(chart, 'Chart.yaml'),
    `apiVersion: v2\nname: ${name}\nversion: ${version}\ndescription: test chart\n`,
  );
  writeFileSync(join(chart, 'values.yaml'), 'greeting: hello\n');
  writeFileSync(
    join(chart, 'templates', 'cm.yaml'),
    'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-settings\n' +
      'data:\n  greeting: {{ .Values.greeting | quote }}\n  chartVersion: {{ .Chart.Version | quote }}\n',
  );
  return chart;
}

describe('s3:// chart repositories (real helm, Versity Gateway, Capstan plugin from helm-plugin/capstan)', () => {
  let s3: S3Peer;
  let home: HelmHome;
  let work: string;
  let env: Record<string, string>;
  const archives = new Map<string, string>();

  before(async () => {
    s3 = await startS3({ bucket: 'charts' });
    home = createHelmHome();
    work = mkdtempSync(join(tmpdir(), 'capstan-helm-s3-test-'));
    env = awsEnv(s3, work);
    const installed = await home.run(['plugin', 'install', shippedPlugin]);
    assert.match(installed.stdout, /Installed plugin: capstan/);
    const tgzDir = join(work, 'tgz');
    for (const v of ['1.0.0', '1.1.0']) {
      await home.run(['package', configChart(work, 'settings', v), '-d', tgzDir]);
      archives.set(v, join(tgzDir, `settings-${v}.tgz`));
    }
  });
  after(async () => {
    await home?.close();
    await s3?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  test('helm capstan s3 push builds the repository: archives beside index.yaml, a version pushed twice is refused', async () => {
    for (const v of ['1.0.0', '1.1.0']) {
      const r = await home.run(['capstan', 's3', 'push', archives.get(v)!, 's3://charts/stable'], { env });
      assert.match(r.stdout, new RegExp(`pushed settings ${v} to s3://charts/stable/settings-${v}.tgz`));
    }
    // Read back through S3 itself, not through the plugin.
    await using bucket = new ChartBucket({
      endpoint: s3.endpoint,
      region: s3.region,
      forcePathStyle: true,
      credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
      timeoutMs: 30_000,
    });
    const index = parse(
      Buffer.from((await bucket.get({ bucket: 'charts', key: 'stable/index.yaml' })).body).toString(),
    ) as {
      apiVersion: string;
      entries: { settings: Array<{ version: string; urls: string[]; digest: string }> };
    };
    assert.equal(index.apiVersion, 'v1');
    assert.deepEqual(
      index.entries.settings.map((e) => [e.version, e.urls]),
      [
        ['1.1.0', ['settings-1.1.0.tgz']],
        ['1.0.0', ['settings-1.0.0.tgz']],
      ],
    );
    const stored = (await bucket.get({ bucket: 'charts', key: 'stable/settings-1.0.0.tgz' })).body;
    assert.deepEqual(Buffer.from(stored), readFileSync(archives.get('1.0.0')!));

    const again = await home.run(['capstan', 's3', 'push', archives.get('1.0.0')!, 's3://charts/stable'], {
      env,
      allowFailure: true,
    });
    assert.notEqual(again.code, 0);
    assert.match(again.stderr, /already in the repository/);
    await home.run(['capstan', 's3', 'push', archives.get('1.0.0')!, 's3://charts/stable', '--force'], {
      env,
    });

    // Not a chart: refused before anything is uploaded.
    const junk = join(work, 'junk-0.1.0.tgz');
    writeFileSync(junk, 'not a gzip');
    const bad = await home.run(['capstan', 's3', 'push', junk, 's3://charts/stable'], {
      env,
      allowFailure: true,
    });
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, new RegExp(HelmErrorCode.badChart));
    await assert.rejects(bucket.get({ bucket: 'charts', key: 'stable/junk-0.1.0.tgz' }), {
      code: HelmErrorCode.s3NotFound,
    });
  });

  test('concurrent pushes to one repository keep every entry (index.yaml written with If-Match / If-None-Match)', async () => {
    const settings = {
      endpoint: s3.endpoint,
      region: s3.region,
      forcePathStyle: true,
      credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
      timeoutMs: 30_000,
    };
    const dir = join(work, 'race');
    const names = ['alpha', 'beta', 'gamma', 'delta'];
    for (const name of names) await home.run(['package', configChart(work, name, '0.1.0'), '-d', dir]);
    const pushed = await Promise.all(
      names.map((name) =>
        pushChart(join(dir, `${name}-0.1.0.tgz`), 's3://charts/race', settings, { attempts: 10 }),
      ),
    );
    assert.deepEqual(pushed.map((p) => p.name).sort(), [...names].sort());
    await using bucket = new ChartBucket(settings);
    const index = parseChartIndex(
      Buffer.from((await bucket.get({ bucket: 'charts', key: 'race/index.yaml' })).body).toString(),
    );
    assert.deepEqual(Object.keys(index.entries).sort(), [...names].sort());
  });

  test('helm repo add s3://, search and pull go through the downloader; the pulled archive is the pushed one', async () => {
    await home.run(['repo', 'add', 'private', 's3://charts/stable'], { env });
    const search = await home.run(['search', 'repo', 'private/settings', '--versions', '-o', 'json'], {
      env,
    });
    assert.deepEqual(
      (JSON.parse(search.stdout) as Array<{ name: string; version: string }>).map((c) => [c.name, c.version]),
      [
        ['private/settings', '1.1.0'],
        ['private/settings', '1.0.0'],
      ],
    );
    const dest = join(work, 'pulled');
    mkdirSync(dest);
    await home.run(['pull', 'private/settings', '--version', '1.1.0', '-d', dest], { env });
    assert.deepEqual(readFileSync(join(dest, 'settings-1.1.0.tgz')), readFileSync(archives.get('1.1.0')!));
    // A full s3:// URL works too, without a repository.
    const direct = join(work, 'direct');
    mkdirSync(direct);
    await home.run(['pull', 's3://charts/stable/settings-1.0.0.tgz', '-d', direct], { env });
    assert.ok(existsSync(join(direct, 'settings-1.0.0.tgz')));
  });

  test('helm install from the private bucket puts a release into the control plane', async (t) => {
    const cluster = await useSharedCluster(t);
    const kube = { ...env, KUBECONFIG: cluster.kubeconfigPath };
    await home.run(['repo', 'add', 'installs', 's3://charts/stable'], { env: kube });
    await home.run(['install', 'web', 'installs/settings', '--version', '1.0.0', '-n', cluster.namespace], {
      env: kube,
    });
    await home.run(['install', 'direct', 's3://charts/stable/settings-1.1.0.tgz', '-n', cluster.namespace], {
      env: kube,
    });
    const list = await home.run(['list', '-n', cluster.namespace, '-o', 'json'], { env: kube });
    assert.deepEqual(
      (JSON.parse(list.stdout) as Array<{ name: string; chart: string; status: string }>)
        .map((r) => [r.name, r.chart, r.status])
        .sort(),
      [
        ['direct', 'settings-1.1.0', 'deployed'],
        ['web', 'settings-1.0.0', 'deployed'],
      ],
    );
    const cm = JSON.parse(cluster.kubectl(['get', 'configmap', 'web-settings', '-o', 'json'])) as {
      data: Record<string, string>;
    };
    assert.deepEqual(cm.data, { greeting: 'hello', chartVersion: '1.0.0' });
  });

  test('failures reach helm as a non-zero exit with the reason on stderr: wrong credentials, missing object, missing bucket', async () => {
    const wrong = awsEnv(s3, work, 'not-the-secret');
    const denied = await home.run(['repo', 'add', 'denied', 's3://charts/stable'], {
      env: wrong,
      allowFailure: true,
    });
    assert.notEqual(denied.code, 0);
    assert.match(denied.stderr, new RegExp(HelmErrorCode.s3AccessDenied));
    assert.match(denied.stderr, /SignatureDoesNotMatch|InvalidAccessKeyId|AccessDenied/);

    const dest = join(work, 'missing');
    mkdirSync(dest);
    const missing = await home.run(['pull', 's3://charts/stable/nope-9.9.9.tgz', '-d', dest], {
      env,
      allowFailure: true,
    });
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, new RegExp(HelmErrorCode.s3NotFound));

    const noBucket = await home.run(['repo', 'add', 'nobucket', 's3://no-such-bucket/charts'], {
      env,
      allowFailure: true,
    });
    assert.notEqual(noBucket.code, 0);
    assert.match(noBucket.stderr, /NoSuchBucket/);

    // The downloader on its own, run as Helm's getter runs it: the launcher in the installed plugin folder with
    // certFile keyFile caFile URL (empty strings for the TLS files). Helm's own `helm capstan ...` path cuts
    // arguments at the first empty one, so it cannot stand in for the getter here.
    const launcher = join(home.env.HELM_DATA_HOME!, 'plugins', 'capstan', 'bin', 'capstan');
    const run = (args: string[]) =>
      spawnSync(launcher, ['download', ...args], {
        env: { ...process.env, ...home.env, ...env },
        encoding: 'utf8',
      });
    const bare = run(['s3://charts/stable/index.yaml']);
    assert.notEqual(bare.status, 0);
    assert.equal(bare.stdout, '');
    assert.match(bare.stderr, /certFile keyFile caFile URL/);
    const ok = run(['', '', '', 's3://charts/stable/index.yaml']);
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, /^apiVersion: v1$/m);
  });
});
