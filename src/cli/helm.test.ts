// `capstan helm plugin install` (Capstan's own plugin): the launcher it writes pins this Node and this CLI, and
// the real helm runs it.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createHelmHome, type HelmHome, helmBinary } from 'capstan/testing';

const main = fileURLToPath(new URL('./main.ts', import.meta.url));

describe('capstan helm plugin install (real helm)', () => {
  let home: HelmHome;
  let work: string;
  before(() => {
    home = createHelmHome();
    work = mkdtempSync(join(tmpdir(), 'capstan-cli-helm-'));
  });
  after(async () => {
    await home?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  test("installs Capstan's plugin with a launcher that runs this Node; helm capstan works", async () => {
    const dir = join(work, 'capstan');
    const r = spawnSync(
      process.execPath,
      [
        '--conditions=capstan-source',
        main,
        'helm',
        'plugin',
        'install',
        '--dir',
        dir,
        '--helm',
        helmBinary(),
      ],
      { env: { ...process.env, ...home.env }, encoding: 'utf8' },
    );
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /installed Helm plugin capstan/);
    const launcher = readFileSync(join(dir, 'bin', 'capstan'), 'utf8');
    assert.ok(
      launcher.includes(`exec '${process.execPath}' '--conditions=capstan-source' '${main}' 'helm' "$@"`),
      launcher,
    );

    // No CAPSTAN_NODE and a PATH without this Node: the launcher does not depend on either.
    const env = { PATH: '/usr/bin:/bin' };
    const key = await home.run(['capstan', 'secrets', 'keygen'], { env });
    assert.match(key.stdout.trim(), /^[A-Za-z0-9+/]{43}=$/);
    const help = await home.run(['capstan', '--help'], { env });
    assert.match(help.stdout, /lint \[args\.\.\.\]/);
    assert.match(help.stdout, /secrets/);
    const unknown = await home.run(['capstan', 'nope'], { env, allowFailure: true });
    assert.equal(unknown.code, 2, 'a usage error keeps its status through helm');
  });

  test('a module without a plugin, or a helm that is not there, is refused with the reason', () => {
    const run = (args: string[]) =>
      spawnSync(process.execPath, ['--conditions=capstan-source', main, 'helm', 'plugin', ...args], {
        env: { ...process.env, ...home.env },
        encoding: 'utf8',
      });
    const noPlugin = run([
      'write',
      join(work, 'x'),
      '--module',
      fileURLToPath(new URL('./exit-code.ts', import.meta.url)),
    ]);
    assert.equal(noPlugin.status, 2);
    assert.match(noPlugin.stderr, /exports no Helm plugin/);
    const noHelm = run(['install', '--dir', join(work, 'y'), '--helm', join(work, 'no-helm')]);
    assert.equal(noHelm.status, 1);
    assert.match(noHelm.stderr, /CAP_ERR_HELM_HELM_FAILED/);
  });
});
