// `capstan crd generate`, run as users run it (a child process): files, stdout, exit statuses, and every
// problem listed when a definition cannot become a CRD. The apiserver's verdict on the output is in
// test/crd-example.test.ts and src/kube/crd/apiserver.test.ts.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse, parseAllDocuments } from 'yaml';
import { crdManifest } from '../kube/index.ts';
import { Backup, Cache } from './testdata/crd/good.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const mainTs = fileURLToPath(new URL('./main.ts', import.meta.url));
const fixture = (name: string) => fileURLToPath(new URL(`./testdata/crd/${name}`, import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'capstan-crd-cli-'));
after(() => rmSync(work, { recursive: true, force: true }));

function capstan(args: string[]) {
  const r = spawnSync(process.execPath, ['--conditions=capstan-source', mainTs, ...args], {
    cwd: root,
    env: { PATH: process.env['PATH'] ?? '' },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('capstan crd generate', () => {
  test('-o writes one <group>_<plural>.yaml per exported custom resource, skipping other exports', () => {
    const out = join(work, 'out', 'nested');
    const r = capstan(['crd', 'generate', fixture('good.ts'), '-o', out]);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(readdirSync(out).sort(), [
      'ops.capstan.dev_backups.yaml',
      'ops.capstan.dev_caches.yaml',
    ]);
    assert.deepEqual(
      parse(readFileSync(join(out, 'ops.capstan.dev_backups.yaml'), 'utf8')),
      crdManifest(Backup),
    );
    assert.deepEqual(
      parse(readFileSync(join(out, 'ops.capstan.dev_caches.yaml'), 'utf8')),
      crdManifest(Cache),
    );
    assert.match(
      r.stdout,
      /^wrote .*ops\.capstan\.dev_backups\.yaml\nwrote .*ops\.capstan\.dev_caches\.yaml\n$/,
    );
  });

  test('without -o, the YAML documents go to stdout (for kubectl apply -f -)', () => {
    const r = capstan(['crd', 'generate', fixture('good.ts')]);
    assert.equal(r.status, 0, r.stderr);
    const docs = parseAllDocuments(r.stdout).map((d) => d.toJSON());
    assert.deepEqual(docs, [crdManifest(Backup), crdManifest(Cache)]);
  });

  test('--check: exit 0 when the files match, exit 1 listing each missing or changed file, nothing written', () => {
    const out = join(work, 'check');
    assert.equal(capstan(['crd', 'generate', fixture('good.ts'), '-o', out]).status, 0);
    const same = capstan(['crd', 'generate', fixture('good.ts'), '-o', out, '--check']);
    assert.equal(same.status, 0, same.stderr);
    assert.equal(same.stdout, 'up to date: 2 CRD files\n');
    const edited = join(out, 'ops.capstan.dev_caches.yaml');
    writeFileSync(edited, `${readFileSync(edited, 'utf8')}# hand edit\n`);
    rmSync(join(out, 'ops.capstan.dev_backups.yaml'));
    const stale = capstan(['crd', 'generate', fixture('good.ts'), '-o', out, '--check']);
    assert.equal(stale.status, 1);
    assert.match(stale.stderr, /2 CRD files are out of date; run capstan crd generate again:/);
    assert.match(stale.stderr, /ops\.capstan\.dev_backups\.yaml \(missing\)/);
    assert.match(stale.stderr, /ops\.capstan\.dev_caches\.yaml \(differs\)/);
    assert.deepEqual(readdirSync(out), ['ops.capstan.dev_caches.yaml'], '--check wrote nothing');
  });

  test('--export picks one definition', () => {
    const r = capstan(['crd', 'generate', fixture('good.ts'), '--export', 'Cache']);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(parse(r.stdout), crdManifest(Cache));
  });

  test('the example users copy generates (examples/crd-website.ts)', () => {
    const r = capstan(['crd', 'generate', join(root, 'examples', 'crd-website.ts')]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(
      (parse(r.stdout) as { metadata: { name: string } }).metadata.name,
      'websites.example.capstan.dev',
    );
  });

  test('definitions that cannot become CRDs: exit 78, every problem of every module listed, nothing written', () => {
    const out = join(work, 'bad-out');
    const r = capstan(['crd', 'generate', fixture('bad.ts'), fixture('good.ts'), '-o', out]);
    assert.equal(r.status, 78, r.stderr);
    assert.equal(r.stdout, '');
    assert.equal(existsSync(out), false);
    const lines = r.stderr.trimEnd().split('\n');
    assert.equal(lines[0], 'capstan crd generate: 5 problems in the custom resource definitions:');
    assert.deepEqual(
      lines.slice(1).map((l) => l.replace(/^ {2}- /, '').replace(/:.*?: /, ': ')),
      [
        'alsobrokens.nodot: group "nodot" must be a lower-case domain with at least one dot (example.com)',
        'alsobrokens.nodot: spec.anything: z.unknown() has no type, and every field of a structural schema needs one; give it a type, or mark it with preserveUnknownFields(z.unknown())',
        'brokens.ops.capstan.dev: spec.when: z.date() is not JSON; use z.iso.datetime() (a string with format date-time)',
        'brokens.ops.capstan.dev: spec.choice: a union of string, object is not structural (the apiserver needs one type per field); use z.enum() for a choice of values, intOrString() for integer-or-string, z.discriminatedUnion() of objects, or one object with optional fields and a CEL rule (withRules)',
        'brokens.ops.capstan.dev: printer column "Size": .spec.size names no field of the schema',
      ],
    );
  });

  test('a module without custom resources, a missing file, a module that throws, a wrong --export: exit 2', () => {
    const none = capstan(['crd', 'generate', fixture('none.ts')]);
    assert.equal(none.status, 2);
    assert.match(none.stderr, /none\.ts exports no custom resource/);
    const missing = capstan(['crd', 'generate', join(work, 'nope.ts')]);
    assert.equal(missing.status, 2);
    assert.match(missing.stderr, /cannot import .*nope\.ts/);
    const throws = capstan(['crd', 'generate', fixture('throws.ts')]);
    assert.equal(throws.status, 2);
    assert.match(throws.stderr, /cannot import .*throws\.ts: boom while defining/);
    const wrongExport = capstan(['crd', 'generate', fixture('good.ts'), '--export', 'Nope']);
    assert.equal(wrongExport.status, 2);
    assert.match(wrongExport.stderr, /exports no custom resource named Nope/);
  });

  test('no module: a usage error', () => {
    const r = capstan(['crd', 'generate']);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /missing required argument/);
  });
});
