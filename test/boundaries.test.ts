// The import boundaries (scripts/check-boundaries.ts over .dependency-cruiser.mjs): they fire on a tree that
// breaks each rule, and the real tree keeps them.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
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
  const modules = Number(/✔ import boundaries hold \((\d+) modules/.exec(out)?.[1]);
  assert.ok(modules > 150, `the whole tree was read (${modules} modules)`);
});

/** The areas issue 7 named as coming: until one lands, docs/architecture.md says where it will live. */
const comingAreas = [
  'kube',
  'webhook',
  'traffic',
  'terraform',
  'cloud',
  'helm',
  'ansible',
  'yaml',
  'automation',
  'dashboard',
];

test('docs/architecture.md names only paths that exist; its coming areas do not exist yet', () => {
  const doc = readFileSync(join(repo, 'docs/architecture.md'), 'utf8');
  const paths = (text: string) =>
    [...text.matchAll(/`((?:src|test|docs|scripts|examples|bench)\/[^`\s<>*]+)`/g)].map((m) => m[1]!);
  // The "Coming areas" section (up to the next `## `) names src/ folders that do not exist yet.
  const sections = doc.split(/^(?=## )/m);
  const coming = sections.filter((section) => section.startsWith('## Coming areas'));
  assert.equal(coming.length, 1, 'one "## Coming areas" section');
  const comingFolders = paths(coming[0]!).filter((path) => path.startsWith('src/'));
  const named = paths(doc).filter((path) => !comingFolders.includes(path));

  assert.ok(named.length > 30, `the map names the code it describes (${named.length} paths)`);
  for (const path of named) {
    assert.ok(existsSync(join(repo, path)), `docs/architecture.md names ${path}, which does not exist`);
  }
  for (const link of doc.matchAll(/\]\((?!https?:|#)([^)#\s]+)(?:#[^)]*)?\)/g)) {
    const target = link[1]!;
    assert.ok(
      existsSync(join(repo, 'docs', target)),
      `docs/architecture.md links to ${target}, which does not exist`,
    );
  }
  for (const area of comingAreas) {
    // An area is either still coming (listed) or has landed (its folder exists and "The areas" maps it).
    const landed = existsSync(join(repo, 'src', area));
    assert.ok(landed || comingFolders.includes(`src/${area}`), `"Coming areas" lists src/${area}`);
  }
  for (const path of comingFolders) {
    assert.ok(
      !existsSync(join(repo, path)),
      `${path} has landed: move it from "Coming areas" to "The areas"`,
    );
  }
});
