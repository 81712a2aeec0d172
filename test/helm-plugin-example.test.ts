// examples/helm-plugin.ts installed with `capstan helm plugin install --module` and run by the real helm:
// its command sees Helm's environment, its dir:// downloader serves `helm repo add` and `helm pull`.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createHelmHome, type HelmHome, helmBinary } from 'capstan/testing';

const repo = fileURLToPath(new URL('..', import.meta.url));

describe('examples/helm-plugin.ts through the real helm', () => {
  let home: HelmHome;
  let work: string;

  before(() => {
    home = createHelmHome();
    work = mkdtempSync(join(tmpdir(), 'capstan-helm-example-'));
  });
  after(async () => {
    await home?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  /** `capstan helm plugin install --module examples/helm-plugin.ts` into this test's Helm home. */
  const install = () =>
    spawnSync(
      process.execPath,
      [
        '--conditions=capstan-source',
        join(repo, 'src/cli/main.ts'),
        ...['helm', 'plugin', 'install', '--module', join(repo, 'examples/helm-plugin.ts')],
        ...['--dir', join(work, 'team'), '--helm', helmBinary()],
      ],
      { env: { ...process.env, ...home.env }, encoding: 'utf8' },
    );

  test('capstan helm plugin install --module writes the folder and installs it into helm', () => {
    const r = install();
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /installed Helm plugin team/);
    const manifest = readFileSync(join(work, 'team', 'plugin.yaml'), 'utf8');
    assert.match(manifest, /command: \$HELM_PLUGIN_DIR\/bin\/team/);
    assert.match(manifest, /- dir\n\s+command: bin\/team download/);
    // Installing again refreshes the same folder instead of failing.
    const again = install();
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stdout, /refreshed Helm plugin team/);
  });

  test('the command reads the namespace Helm took out of its arguments', async () => {
    const r = await home.run(['team', 'whoami', '--namespace', 'team-b', 'extra']);
    assert.match(r.stdout, /helm=.*helm context=\(current\) namespace=team-b/);
    assert.match(r.stdout, /args=extra/);
    const unknown = await home.run(['team', 'nope'], { allowFailure: true });
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown command "nope"/);
  });

  test('dir:// serves helm repo add and helm pull; a missing file fails with its reason', async () => {
    const charts = join(work, 'charts');
    const chart = join(work, 'src', 'notes');
    mkdirSync(join(chart, 'templates'), { recursive: true });
    writeFileSync(join(chart, 'Chart.yaml'), 'apiVersion: v2\nname: notes\nversion: 2.0.0\n');
    writeFileSync(
      join(chart, 'templates', 'cm.yaml'),
      'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\n',
    );
    await home.run(['package', chart, '-d', charts]);
    await home.run(['repo', 'index', charts]);
    await home.run(['repo', 'add', 'shared', `dir://${charts}`]);
    const dest = join(work, 'pulled');
    mkdirSync(dest);
    await home.run(['pull', 'shared/notes', '-d', dest]);
    assert.deepEqual(
      readFileSync(join(dest, 'notes-2.0.0.tgz')),
      readFileSync(join(charts, 'notes-2.0.0.tgz')),
    );
    const missing = await home.run(['repo', 'add', 'nothing', `dir://${join(work, 'nowhere')}`], {
      allowFailure: true,
    });
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /ENOENT/);
    assert.ok(!existsSync(join(dest, 'index.yaml')));
  });
});
