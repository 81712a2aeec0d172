import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

const main = new URL('../src/cli/main.ts', import.meta.url).pathname;
const built = new URL('../dist/cli/main.js', import.meta.url).pathname;
const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));

test('capstan --help lists the command groups', () => {
  const out = execFileSync(process.execPath, ['--conditions=capstan-source', main, '--help'], {
    encoding: 'utf8',
  });
  assert.match(out, /Usage: capstan/);
  assert.match(out, /\bdev\b/);
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
