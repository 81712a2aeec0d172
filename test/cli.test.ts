import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';

const main = new URL('../src/cli/main.ts', import.meta.url).pathname;
const built = new URL('../dist/cli/main.js', import.meta.url).pathname;
const fixture = (name: string) => new URL(`./fixtures/${name}`, import.meta.url).pathname;
const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));

test('capstan --help lists the command groups and loads none of the heavy dependencies', () => {
  const record = join(mkdtempSync(join(tmpdir(), 'capstan-help-')), 'imports.json');
  const out = execFileSync(
    process.execPath,
    ['--conditions=capstan-source', '--import', fixture('record-imports.mjs'), main, '--help'],
    { encoding: 'utf8', env: { ...process.env, RECORD_IMPORTS: record } },
  );
  assert.match(out, /Usage: capstan/);
  for (const group of ['up', 'config', 'dev', 'docker', 'crd', 'kube', 'logs']) {
    assert.match(out, new RegExp(`^\\s+${group}\\b`, 'm'), `--help lists ${group}`);
  }
  const loaded = JSON.parse(readFileSync(record, 'utf8')) as string[];
  assert.ok(
    loaded.some((u) => u.includes('/commander/')),
    'the recorder saw the CLI framework load',
  );
  const heavy = loaded.filter((u) =>
    /node_modules\/(@kubernetes|@grpc|@aws-sdk|pino|prom-client|undici|zod|pg|yaml|node-forge)\//.test(u),
  );
  assert.deepEqual(heavy, [], 'help loads no heavy dependency');
  rmSync(dirname(record), { recursive: true, force: true });
});

test('capstan --version prints the package version', () => {
  const out = execFileSync(process.execPath, ['--conditions=capstan-source', main, '--version'], {
    encoding: 'utf8',
  });
  assert.equal(out.trim(), pkg.version);
});

test('the compiled CLI (dist) runs without type stripping', () => {
  const r = spawnSync(process.execPath, ['--no-experimental-strip-types', built, '--version'], {
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), pkg.version);
});

test('an unknown command exits non-zero with a reason', () => {
  const r = spawnSync(process.execPath, ['--conditions=capstan-source', main, 'no-such-command'], {
    encoding: 'utf8',
  });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /unknown command/);
});
