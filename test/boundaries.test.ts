// The import boundaries (scripts/check-boundaries.ts over .dependency-cruiser.mjs): they fire on a tree that
// breaks each rule, and the real tree keeps them.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const repo = fileURLToPath(new URL('..', import.meta.url));
const checker = fileURLToPath(new URL('../scripts/check-boundaries.ts', import.meta.url));
const fixture = fileURLToPath(new URL('./fixtures/boundaries', import.meta.url));

/** Runs the checker on the package in `cwd`, as `npm run lint:deps` does on the repository. */
function check(cwd: string): { status: number | null; out: string } {
  const run = spawnSync(process.execPath, [checker], {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, NO_COLOR: '1' },
  });
  return { status: run.status, out: run.stdout + run.stderr };
}

test('the boundary check fails on a tree that breaks each rule, naming the rule and the import', () => {
  const { status, out } = check(fixture);
  assert.equal(status, 1, out);
  const expected = [
    'error area-through-index: src/alpha/a.ts → src/beta/deep.ts',
    'error runtime-imports-no-area: src/runtime/hub.ts → src/alpha/index.ts',
    'error index-exports-no-internal: src/beta/index.ts → src/beta/internal/secret.ts',
    'error no-reexport-of-internal: src/beta/leak.ts → src/beta/internal/secret.ts',
    // Both imports of this cycle are type-only: they count.
    'error no-circular: src/alpha/ping.ts → \n      src/alpha/pong.ts →\n      src/alpha/ping.ts',
    // Areas: alpha deep-imports beta, beta imports alpha's index.
    'error no-folder-cycle: src/alpha/ → \n      src/beta/ (src/alpha/a.ts → src/beta/deep.ts) →\n' +
      '      src/alpha/ (src/beta/uses-alpha.ts → src/alpha/index.ts)',
    // Modules of one area, without any file-level cycle.
    'error no-folder-cycle: src/gamma/one/ → \n      src/gamma/two/ (src/gamma/one/first.ts → src/gamma/two/second.ts) →\n' +
      '      src/gamma/one/ (src/gamma/two/second.ts → src/gamma/one/base.ts)',
    'error not-to-unresolvable: src/alpha/lost.ts → ./missing.ts',
    'error examples-use-public-api: examples/deep.ts → src/alpha/a.ts',
    'error no-path-into-other-area: src/alpha/spawn.ts → src/beta/internal/secret.ts (a path in the code, not an import)',
    'error exports-no-internal: package.json exports["./beta/internal"] → ./src/beta/internal/secret.ts',
  ];
  for (const line of expected) assert.ok(out.includes(`  ${line}\n`), `reports: ${line}\n--- got:\n${out}`);
  assert.match(out, /✘ 11 boundary violations/);
  // Runtime's test code may use an area through its index, here by a self-import the checker resolved.
  assert.doesNotMatch(out, /testdata\/peer\.ts/);
});

test('the real tree keeps every boundary', () => {
  const { status, out } = check(repo);
  assert.equal(status, 0, out);
  assert.match(out, /✔ import boundaries hold \(\d+ modules/);
});
