// How `capstan up` finds services: through package.json `exports`, with no list in the CLI.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { upServices as exporterServices, hostExporterUpService } from 'capstan/exporters';
import type { UpContext } from 'capstan/runtime';
import { CliError } from './errors.ts';
import { discoverUpServices, exportedModules } from './up.ts';

const fixturePackage = new URL('./testdata/up-package/package.json', import.meta.url);

describe('capstan up discovery', () => {
  test('the host exporter is found through the exporters area index, as that area exports it', async () => {
    const services = await discoverUpServices();
    const found = services.find((s) => s.name === 'host-exporter');
    assert.equal(found, hostExporterUpService, 'the very object capstan/exporters exports');
    assert.ok(
      exporterServices.every((s) => services.includes(s)),
      'every service of the area',
    );
  });

  test('every area exporting upServices joins, in exports order; others and non-modules are skipped', async () => {
    const services = await discoverUpServices(fixturePackage, true);
    assert.deepEqual(
      services.map((s) => s.name),
      ['alpha-one', 'alpha-two', 'gamma'],
    );
    // The fixture's services read only the host.
    const started = await services[2]!.start({ host: '127.0.0.1' } as UpContext);
    assert.deepEqual(started.urls, { home: 'http://127.0.0.1/gamma' });
  });

  test('a built CLI imports the default (dist) targets', async () => {
    const modules = exportedModules(fixturePackage, false);
    assert.deepEqual(
      modules.map((m) => [m.subpath, m.url.pathname.split('/').pop()]),
      [
        ['./alpha', 'alpha-built.js'],
        ['./quiet', 'quiet.ts'],
        ['./gamma', 'gamma.ts'],
      ],
    );
    const services = await discoverUpServices(fixturePackage, false);
    assert.deepEqual(
      services.map((s) => s.name),
      ['alpha-built', 'gamma'],
    );
  });

  test('the real package resolves every area to its source index, and each exists', () => {
    for (const { subpath, url } of exportedModules(new URL('../../package.json', import.meta.url), true)) {
      assert.match(url.pathname, new RegExp(`/src/${subpath.slice(2)}/index\\.ts$`));
    }
  });

  test('two areas naming a service alike is an error naming both', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'capstan-up-dup-'));
    try {
      const service = "{ name: 'same', description: 'd', start: async () => ({ urls: {} }) }";
      writeFileSync(join(dir, 'a.mjs'), `export const upServices = [${service}];\n`);
      writeFileSync(join(dir, 'b.mjs'), `export const upServices = [${service}];\n`);
      writeFileSync(
        join(dir, 'package.json'),
        JSON.stringify({ name: 'dup', exports: { './a': './a.mjs', './b': './b.mjs' } }),
      );
      await assert.rejects(
        discoverUpServices(new URL(`file://${join(dir, 'package.json')}`), true),
        (err) => {
          assert.ok(err instanceof CliError);
          assert.equal(err.code, 'CAP_ERR_CLI_FAILED');
          assert.match(err.message, /service named same: \.\/a and \.\/b/);
          return true;
        },
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
