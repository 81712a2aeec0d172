// The error catalogue: every `src/**/errors.ts` (found, not listed, so a new area's file is checked the day it
// lands) follows the convention of docs/errors.md, no code is used twice, nothing in src/ names a code that is
// not in the catalogue, and docs/errors.md is what scripts/errors-doc.ts generates from it.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import ts from 'typescript';
import {
  type CatalogueFile,
  errorsDocCommand,
  errorsDocPath,
  readCatalogue,
  renderErrorsDoc,
  repoRoot,
} from '../scripts/errors-doc.ts';
import { CapstanError } from '../src/runtime/errors.ts';

/** The file that defines the base class; it declares no codes of its own. */
const BASE_FILE = 'src/runtime/errors.ts';

/** Folder names whose prefix word is not the folder's name in capitals. */
const PREFIX_WORD: Record<string, string> = { peers: 'PEER', exporters: 'EXPORTER' };

const CODE = /^CAP_ERR_[A-Z0-9_]+$/;

/** `src/docker/errors.ts` → `CAP_ERR_DOCKER_`; `src/runtime/health/errors.ts` → `CAP_ERR_RUNTIME_HEALTH_`. */
function expectedPrefix(path: string): string {
  const folders = path.split('/').slice(1, -1);
  const words = folders.map((f) => PREFIX_WORD[f] ?? f.toUpperCase().replace(/-/g, '_'));
  return `CAP_ERR_${words.map((w) => `${w}_`).join('')}`;
}

const catalogue = readCatalogue();
const codeFiles = catalogue.filter((f) => f.path !== BASE_FILE);

/** Every exported `*ErrorCode` object of `file`, as the module exports it at runtime. */
async function runtimeCodes(file: CatalogueFile): Promise<Map<string, Record<string, unknown>>> {
  const mod = (await import(pathToFileURL(join(repoRoot, file.path)).href)) as Record<string, unknown>;
  const out = new Map<string, Record<string, unknown>>();
  for (const [name, value] of Object.entries(mod)) {
    if (name.endsWith('ErrorCode') && typeof value === 'object' && value !== null) {
      out.set(name, value as Record<string, unknown>);
    }
  }
  return out;
}

test('the catalogue finds every errors.ts under src/', () => {
  assert.ok(codeFiles.length >= 6, codeFiles.map((f) => f.path).join(', '));
  for (const path of [
    'src/docker/errors.ts',
    'src/runtime/health/errors.ts',
    'src/runtime/config/errors.ts',
  ]) {
    assert.ok(
      codeFiles.some((f) => f.path === path),
      `${path} missing`,
    );
  }
});

test(`${BASE_FILE} holds only the base class, CapstanError`, async () => {
  const mod = (await import(pathToFileURL(join(repoRoot, BASE_FILE)).href)) as Record<string, unknown>;
  assert.deepEqual(Object.keys(mod), ['CapstanError']);
  assert.equal(mod['CapstanError'], CapstanError);
});

test('each errors.ts exports its codes (CAP_ERR_..., one documented line each) and the type of the same name', async () => {
  for (const file of codeFiles) {
    assert.ok(file.objects.length > 0, `${file.path}: exports no *ErrorCode object`);
    const exported = await runtimeCodes(file);
    assert.deepEqual(
      [...exported.keys()].sort(),
      file.objects.map((o) => o.name).sort(),
      `${file.path}: every exported *ErrorCode is a plain 'key: "CODE"' object literal`,
    );
    const text = readFileSync(join(repoRoot, file.path), 'utf8');
    for (const object of file.objects) {
      assert.ok(object.doc, `${file.path}: ${object.name} has no TSDoc comment`);
      assert.ok(object.codes.length > 0, `${file.path}: ${object.name} is empty`);
      // What the parser read is what the module exports (so docs/errors.md shows the real values).
      assert.deepEqual(
        exported.get(object.name),
        Object.fromEntries(object.codes.map((c) => [c.key, c.value])),
        `${file.path}: ${object.name}`,
      );
      assert.ok(object.asConst, `${file.path}: ${object.name} needs \`as const\` (its type would be string)`);
      assert.match(
        text,
        new RegExp(
          `export type ${object.name} = \\(typeof ${object.name}\\)\\[keyof typeof ${object.name}\\];`,
        ),
        `${file.path}: export type ${object.name} = (typeof ${object.name})[keyof typeof ${object.name}];`,
      );
      for (const code of object.codes) {
        assert.match(code.value, CODE, `${file.path}: ${object.name}.${code.key}`);
        assert.ok(
          code.doc,
          `${file.path}: ${object.name}.${code.key} has no TSDoc comment (docs/errors.md shows it)`,
        );
      }
    }
  }
});

test('one prefix per file: CAP_ERR_<AREA>_ for an area, CAP_ERR_RUNTIME_<MODULE>_ for a runtime module', () => {
  const prefixes = codeFiles.map((f) => ({ path: f.path, prefix: expectedPrefix(f.path) }));
  for (const file of codeFiles) {
    const prefix = expectedPrefix(file.path);
    const values = file.objects.flatMap((o) => o.codes.map((c) => c.value));
    for (const value of values) {
      assert.ok(value.startsWith(prefix), `${file.path}: ${value} does not start with ${prefix}`);
      // A code under a deeper file's prefix belongs to that file (CAP_ERR_RUNTIME_ + HEALTH_... is health's).
      const owner = prefixes.find((p) => p.prefix.length > prefix.length && value.startsWith(p.prefix));
      assert.equal(
        owner,
        undefined,
        `${file.path}: ${value} is under ${owner?.path}'s prefix ${owner?.prefix}`,
      );
      assert.ok(value.length > prefix.length, `${file.path}: ${value} is only the prefix`);
    }
  }
  assert.equal(expectedPrefix('src/peers/errors.ts'), 'CAP_ERR_PEER_');
  assert.equal(expectedPrefix('src/runtime/health/errors.ts'), 'CAP_ERR_RUNTIME_HEALTH_');
});

test('no code is used twice, in one file or across files', () => {
  const seen = new Map<string, string>();
  for (const file of codeFiles) {
    for (const object of file.objects) {
      for (const code of object.codes) {
        const where = `${file.path} ${object.name}.${code.key}`;
        assert.equal(seen.get(code.value), undefined, `${code.value}: ${seen.get(code.value)} and ${where}`);
        seen.set(code.value, where);
      }
    }
  }
});

test('each errors.ts exports exactly one class extending CapstanError; other error classes extend that one', async () => {
  for (const file of codeFiles) {
    const mod = (await import(pathToFileURL(join(repoRoot, file.path)).href)) as Record<string, unknown>;
    const errorClasses = Object.entries(mod).filter(
      (e): e is [string, typeof CapstanError] =>
        typeof e[1] === 'function' && (e[1] as { prototype?: unknown }).prototype instanceof CapstanError,
    );
    const direct = errorClasses.filter(([, c]) => Object.getPrototypeOf(c) === CapstanError);
    assert.equal(direct.length, 1, `${file.path}: ${direct.map(([n]) => n).join(', ') || 'none'}`);
    const [, root] = direct[0]!;
    for (const [name, c] of errorClasses) {
      assert.ok(
        c === root || c.prototype instanceof root,
        `${file.path}: ${name} does not extend ${root.name}`,
      );
    }
  }
});

/** Source files of src/ that are not tests. */
function productFiles(): string[] {
  return readdirSync(join(repoRoot, 'src'), { recursive: true, encoding: 'utf8' })
    .map((p) => `src/${p.split('\\').join('/')}`)
    .filter((p) => p.endsWith('.ts') && !p.endsWith('.test.ts') && !/(^|\/)testdata\//.test(p));
}

/** Every `CAP_ERR_...` inside a string or template literal of `path` (comments are not code). */
function codesInLiterals(path: string): string[] {
  const text = readFileSync(join(repoRoot, path), 'utf8');
  const out: string[] = [];
  const visit = (node: ts.Node) => {
    // String literals, `templates` and the pieces of `templates ${with} parts`.
    if (
      ts.isStringLiteralLike(node) ||
      ts.isTemplateHead(node) ||
      ts.isTemplateMiddle(node) ||
      ts.isTemplateTail(node)
    ) {
      for (const m of node.text.matchAll(/CAP_ERR_[A-Z0-9_]*/g)) out.push(m[0]);
    }
    node.forEachChild(visit);
  };
  visit(ts.createSourceFile(path, text, ts.ScriptTarget.Latest, true));
  return out;
}

test('every CAP_ERR_ code written in src/ (tests aside) is in the catalogue', () => {
  const known = new Set(codeFiles.flatMap((f) => f.objects.flatMap((o) => o.codes.map((c) => c.value))));
  const unknown = new Set<string>();
  for (const path of productFiles()) {
    for (const code of codesInLiterals(path)) if (!known.has(code)) unknown.add(`${path}: ${code}`);
  }
  assert.deepEqual([...unknown], [], 'codes thrown but not declared in an errors.ts');
});

test(`${errorsDocPath} is generated from the catalogue`, () => {
  let current = '';
  try {
    current = readFileSync(join(repoRoot, errorsDocPath), 'utf8');
  } catch {
    // Missing: reported below like a stale file.
  }
  assert.ok(
    current === renderErrorsDoc(catalogue),
    `${errorsDocPath} is out of date with src/**/errors.ts: run \`${errorsDocCommand}\` and commit the result`,
  );
});
