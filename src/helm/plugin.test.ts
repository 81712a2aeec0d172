import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { parse } from 'yaml';
import { addChartToIndex, compareVersions, parseChartIndex, readChartArchive } from './chart-index.ts';
import { helmEnv } from './env.ts';
import { HelmErrorCode } from './errors.ts';
import { capstanHelmPlugin } from './install.ts';
import {
  defineDownloader,
  defineHelmPlugin,
  helmPluginManifest,
  launcherScript,
  runHelmPlugin,
  writeHelmPluginDir,
} from './plugin.ts';
import { parseS3Url, s3SettingsFromEnv } from './s3.ts';

function capture() {
  const stream = new PassThrough();
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  return { stream, text: () => Buffer.concat(chunks).toString('utf8') };
}

const plugin = defineHelmPlugin({
  name: 'demo',
  usage: 'a demo',
  commands: {
    echo: {
      usage: 'print args',
      run: ({ args, env, stdout }) => void stdout.write(`${env.namespace}:${args.join(',')}\n`),
    },
    fail: {
      usage: 'throw',
      run: () => {
        throw new Error('boom');
      },
    },
    status: { usage: 'exit 7', run: () => 7 },
  },
  downloaders: [
    defineDownloader({ protocols: ['mem'], fetch: async ({ url }) => `bytes of ${url.pathname}` }),
  ],
});

describe('helm plugin library', () => {
  test('definitions are checked: names, reserved commands, protocols', () => {
    assert.throws(
      () => defineHelmPlugin({ name: 'bad name', usage: '', commands: { a: { usage: '', run() {} } } }),
      {
        code: HelmErrorCode.usage,
      },
    );
    assert.throws(() => defineHelmPlugin({ name: 'x', usage: '' }), /at least one command or downloader/);
    assert.throws(
      () =>
        defineHelmPlugin({
          name: 'x',
          usage: '',
          commands: { download: { usage: '', run() {} } },
          downloaders: [defineDownloader({ protocols: ['a'], fetch: async () => '' })],
        }),
      /reserved for the downloaders/,
    );
    assert.throws(
      () => defineDownloader({ protocols: ['s3://'], fetch: async () => '' }),
      /not a URL scheme/,
    );
  });

  test('runHelmPlugin dispatches commands, statuses, errors, help and the downloader contract', async () => {
    const run = async (argv: string[], env: NodeJS.ProcessEnv = {}) => {
      const out = capture();
      const err = capture();
      const status = await runHelmPlugin(plugin, argv, { env, stdout: out.stream, stderr: err.stream });
      return { status, out: out.text(), err: err.text() };
    };
    assert.deepEqual(await run(['echo', 'a', '--b'], { HELM_NAMESPACE: 'ns1' }), {
      status: 0,
      out: 'ns1:a,--b\n',
      err: '',
    });
    assert.equal((await run(['status'])).status, 7);
    const failed = await run(['fail']);
    assert.equal(failed.status, 1);
    assert.match(failed.err, /helm demo fail: boom/);
    const unknown = await run(['nope']);
    assert.equal(unknown.status, 2);
    assert.match(unknown.err, /unknown command "nope"/);
    const help = await run(['--help']);
    assert.equal(help.status, 0);
    assert.match(help.out, /echo\s+print args/);
    assert.match(help.out, /mem:\/\//);
    assert.deepEqual(await run(['download', '', '', '', 'mem://host/x/y']), {
      status: 0,
      out: 'bytes of /x/y',
      err: '',
    });
    const wrongScheme = await run(['download', '', '', '', 'gs://b/k']);
    assert.equal(wrongScheme.status, 1);
    assert.equal(wrongScheme.out, '');
    assert.match(wrongScheme.err, /no downloader for gs:\/\//);
  });

  test("plugin.yaml and the launcher: Helm's fields, a quoted exec line, an executable file", () => {
    const manifest = parse(helmPluginManifest({ ...capstanHelmPlugin })) as Record<string, unknown>;
    assert.deepEqual(manifest['platformCommand'], [{ command: '$HELM_PLUGIN_DIR/bin/capstan' }]);
    assert.deepEqual(manifest['downloaders'], [{ protocols: ['s3'], command: 'bin/capstan download' }]);
    assert.equal(
      launcherScript(['/a b/node', "it's"], 'c').split('\n')[2],
      `exec '/a b/node' 'it'\\''s' "$@"`,
    );
    const dir = mkdtempSync(join(tmpdir(), 'capstan-plugin-dir-'));
    try {
      const written = writeHelmPluginDir(plugin, { dir, exec: ['/usr/bin/env', 'true'] });
      assert.equal(statSync(written.launcher).mode & 0o777, 0o755);
      assert.match(readFileSync(written.manifest, 'utf8'), /command: bin\/demo download/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('the plugin folder the package ships says what helmPluginManifest says', () => {
    const shipped = readFileSync(new URL('../../helm-plugin/capstan/plugin.yaml', import.meta.url), 'utf8');
    assert.equal(shipped, helmPluginManifest(capstanHelmPlugin));
  });

  test("helmEnv: Helm's variables, and what Helm would use without them", () => {
    const env = helmEnv({
      HELM_BIN: '/opt/helm',
      HELM_NAMESPACE: 'a',
      HELM_KUBECONTEXT: '',
      HELM_DEBUG: 'true',
    });
    assert.equal(env.bin, '/opt/helm');
    assert.equal(env.namespace, 'a');
    assert.equal(env.kubeContext, undefined);
    assert.equal(env.debug, true);
    assert.equal(helmEnv({}).bin, 'helm');
    assert.equal(helmEnv({}).namespace, 'default');
  });

  test('s3 URLs and settings', () => {
    assert.deepEqual(parseS3Url('s3://charts/stable/'), { bucket: 'charts', key: 'stable' });
    assert.deepEqual(parseS3Url('s3://charts/a%20b.tgz'), { bucket: 'charts', key: 'a b.tgz' });
    assert.throws(() => parseS3Url('s3:///x'), { code: HelmErrorCode.s3BadUrl });
    assert.throws(() => parseS3Url('s3://Bad_Bucket/x'), { code: HelmErrorCode.s3BadUrl });
    const custom = s3SettingsFromEnv({
      AWS_ENDPOINT_URL: 'http://127.0.0.1:1',
      AWS_DEFAULT_REGION: 'eu-west-3',
    });
    assert.deepEqual(
      [custom.endpoint, custom.region, custom.forcePathStyle],
      ['http://127.0.0.1:1', 'eu-west-3', true],
    );
    const aws = s3SettingsFromEnv({});
    assert.deepEqual([aws.endpoint, aws.region, aws.forcePathStyle], [undefined, 'us-east-1', false]);
    assert.equal(
      s3SettingsFromEnv({ AWS_ENDPOINT_URL_S3: 'http://x', AWS_S3_FORCE_PATH_STYLE: 'false' }).forcePathStyle,
      false,
    );
  });
});

/** A minimal ustar archive: one regular file per entry. */
function tar(files: Record<string, string>): Buffer {
  const blocks: Buffer[] = [];
  for (const [name, text] of Object.entries(files)) {
    const body = Buffer.from(text);
    const header = Buffer.alloc(512);
    header.write(name, 0);
    header.write('0000644\0', 100);
    header.write(`${body.length.toString(8).padStart(11, '0')}\0`, 124);
    header.write('0', 156);
    header.write('ustar\0', 257);
    blocks.push(header, body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

describe('chart repository index', () => {
  test('Chart.yaml from an archive; not a chart is refused', () => {
    const archive = gzipSync(
      tar({
        'shop/Chart.yaml': 'apiVersion: v2\nname: shop\nversion: 1.2.3\n',
        'shop/charts/db/Chart.yaml': 'name: db\n',
      }),
    );
    assert.deepEqual(readChartArchive(archive), { apiVersion: 'v2', name: 'shop', version: '1.2.3' });
    assert.throws(() => readChartArchive(Buffer.from('nope')), { code: HelmErrorCode.badChart });
    assert.throws(
      () => readChartArchive(gzipSync(tar({ 'shop/values.yaml': 'a: 1\n' }))),
      /no <chart>\/Chart.yaml/,
    );
    assert.throws(() => readChartArchive(gzipSync(tar({ 'shop/Chart.yaml': 'name: shop\n' }))), /no version/);
  });

  test('entries sorted newest first by SemVer; a version twice is refused unless replaced', () => {
    assert.ok(compareVersions('1.10.0', '1.9.0') > 0);
    assert.ok(compareVersions('1.0.0-rc.1', '1.0.0') < 0);
    assert.ok(compareVersions('1.0.0-rc.2', '1.0.0-rc.10') < 0);
    let index = addChartToIndex(
      undefined,
      { name: 'a', version: '1.9.0' },
      { urls: ['a-1.9.0.tgz'], digest: 'd1' },
    );
    index = addChartToIndex(
      index,
      { name: 'a', version: '1.10.0' },
      { urls: ['a-1.10.0.tgz'], digest: 'd2' },
    );
    index = addChartToIndex(index, { name: 'a', version: '1.10.0-rc.1' }, { urls: ['x'], digest: 'd3' });
    assert.deepEqual(
      index.entries['a']!.map((e) => e['version']),
      ['1.10.0', '1.10.0-rc.1', '1.9.0'],
    );
    assert.throws(() => addChartToIndex(index, { name: 'a', version: '1.9.0' }, { urls: [], digest: 'x' }), {
      code: HelmErrorCode.usage,
    });
    const replaced = addChartToIndex(
      index,
      { name: 'a', version: '1.9.0' },
      { urls: ['new'], digest: 'd9', replace: true },
    );
    assert.deepEqual(replaced.entries['a']!.find((e) => e['version'] === '1.9.0')!['digest'], 'd9');
    assert.throws(() => parseChartIndex('entries: {}\n'), { code: HelmErrorCode.badIndex });
    assert.throws(() => parseChartIndex('apiVersion: v1\nentries: [1]\n'), { code: HelmErrorCode.badIndex });
  });
});
