// `npm run docs:errors`: writes docs/errors.md, the catalogue of every error code, from the `*ErrorCode`
// objects of each `src/**/errors.ts` and the TSDoc line above each code. test/errors.test.ts reads the same
// catalogue to check the codes themselves, and fails when docs/errors.md is not what this script would write.
// `--check` only compares (exit 1 when the file is out of date).

import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

/** The repository root (this script lives in `scripts/`). */
export const repoRoot = fileURLToPath(new URL('..', import.meta.url));

/** The generated file, relative to the repository root. */
export const errorsDocPath = 'docs/errors.md';

/** The command that regenerates {@link errorsDocPath}. */
export const errorsDocCommand = 'npm run docs:errors';

/** One code of a `*ErrorCode` object, as written in the source. */
export interface CatalogueCode {
  /** The property name, e.g. `notFound`. */
  key: string;
  /** The code itself, e.g. `CAP_ERR_DOCKER_NOT_FOUND`. */
  value: string;
  /** Its TSDoc comment, on one line ('' when it has none). */
  doc: string;
}

/** One exported `*ErrorCode` object. */
export interface CatalogueObject {
  /** The export's name, e.g. `DockerErrorCode`. */
  name: string;
  /** Its TSDoc comment, on one line. */
  doc: string;
  /** Declared `as const`, so its type alias is the union of the codes rather than `string`. */
  asConst: boolean;
  codes: CatalogueCode[];
}

/** What one `errors.ts` declares. */
export interface CatalogueFile {
  /** Path relative to the repository root, with `/`: `src/docker/errors.ts`. */
  path: string;
  objects: CatalogueObject[];
  /** Exported classes whose `extends` names `CapstanError` (written in the source; the test checks the runtime). */
  classes: string[];
}

/** Every `errors.ts` under `src/`, relative to the repository root, sorted. */
export function errorFiles(root = repoRoot): string[] {
  return readdirSync(join(root, 'src'), { recursive: true, encoding: 'utf8' })
    .map((p) => p.split('\\').join('/'))
    .filter((p) => p === 'errors.ts' || p.endsWith('/errors.ts'))
    .map((p) => `src/${p}`)
    .sort();
}

/** The text of a node's TSDoc comment on one line, tags dropped. */
function docOf(node: ts.Node): string {
  const parts = ts
    .getJSDocCommentsAndTags(node)
    .filter(ts.isJSDoc)
    .map((d) => ts.getTextOfJSDocComment(d.comment) ?? '');
  return parts.join(' ').replace(/\s+/g, ' ').trim();
}

function isExported(node: ts.Node): boolean {
  return (
    ts.canHaveModifiers(node) &&
    (ts.getModifiers(node) ?? []).some((m) => m.kind === ts.SyntaxKind.ExportKeyword)
  );
}

/** Read one `errors.ts`: its code objects (`export const XErrorCode = { ... } as const`) and error classes. */
export function readErrorsFile(path: string, root = repoRoot): CatalogueFile {
  const text = readFileSync(join(root, path), 'utf8');
  const source = ts.createSourceFile(path, text, ts.ScriptTarget.Latest, true);
  const objects: CatalogueObject[] = [];
  const classes: string[] = [];
  for (const statement of source.statements) {
    if (!isExported(statement)) continue;
    if (ts.isClassDeclaration(statement) && statement.name) {
      const base = statement.heritageClauses
        ?.find((h) => h.token === ts.SyntaxKind.ExtendsKeyword)
        ?.types[0]?.expression.getText(source);
      if (base === 'CapstanError') classes.push(statement.name.text);
      continue;
    }
    if (!ts.isVariableStatement(statement)) continue;
    for (const declaration of statement.declarationList.declarations) {
      if (!ts.isIdentifier(declaration.name) || !declaration.name.text.endsWith('ErrorCode')) continue;
      let init = declaration.initializer;
      let asConst = false;
      while (init && (ts.isAsExpression(init) || ts.isSatisfiesExpression(init))) {
        if (ts.isAsExpression(init) && init.type.getText(source) === 'const') asConst = true;
        init = init.expression;
      }
      if (!init || !ts.isObjectLiteralExpression(init)) continue;
      const codes: CatalogueCode[] = [];
      for (const property of init.properties) {
        if (!ts.isPropertyAssignment(property) || !ts.isStringLiteral(property.initializer)) {
          throw new Error(`${path}: ${declaration.name.text} holds something other than 'key: "CODE"' pairs`);
        }
        codes.push({
          key: property.name.getText(source),
          value: property.initializer.text,
          doc: docOf(property),
        });
      }
      objects.push({ name: declaration.name.text, doc: docOf(statement), asConst, codes });
    }
  }
  return { path, objects, classes };
}

/** The catalogue: every `errors.ts` under `src/` with what it declares. */
export function readCatalogue(root = repoRoot): CatalogueFile[] {
  return errorFiles(root).map((path) => readErrorsFile(path, root));
}

const cell = (text: string) => text.replace(/\|/g, '\\|');

/** docs/errors.md for `catalogue`. */
export function renderErrorsDoc(catalogue: readonly CatalogueFile[]): string {
  const out = [
    '# Error codes',
    '',
    `<!-- Generated by \`${errorsDocCommand}\` (scripts/errors-doc.ts) from the \`*ErrorCode\` objects in`,
    '     src/**/errors.ts and their TSDoc comments. Do not edit by hand: test/errors.test.ts fails when this',
    '     file is out of date. -->',
    '',
    'Every error Capstan throws on purpose is a `CapstanError` (from `capstan/runtime`) with a stable `code`:',
    'branch on `code`, never on the message. Each area (and each module of `src/runtime`) has one `errors.ts`',
    'with one error class and its codes, under one prefix: `CAP_ERR_<AREA>_` for an area,',
    '`CAP_ERR_RUNTIME_<MODULE>_` for a runtime module. The code objects are exported next to their class',
    '(`DockerErrorCode.notFound`, `HealthErrorCode.timeout`, ...).',
  ];
  for (const file of catalogue) {
    const area = file.path.replace(/^src\//, '').replace(/\/errors\.ts$/, '');
    for (const object of file.objects) {
      const owner = file.classes.length > 0 ? ` — ${file.classes.map((c) => `\`${c}\``).join(', ')}` : '';
      out.push(
        '',
        `## ${area}${owner}`,
        '',
        `\`${object.name}\` in \`${file.path}\`. ${object.doc}`.trimEnd(),
      );
      out.push('', '| Code | Key | Meaning |', '| --- | --- | --- |');
      for (const code of object.codes)
        out.push(`| \`${code.value}\` | \`${code.key}\` | ${cell(code.doc)} |`);
    }
  }
  return `${out.join('\n')}\n`;
}

if (import.meta.main) {
  const expected = renderErrorsDoc(readCatalogue());
  const target = join(repoRoot, errorsDocPath);
  let current = '';
  try {
    current = readFileSync(target, 'utf8');
  } catch {
    // Not written yet.
  }
  if (process.argv.includes('--check')) {
    if (current !== expected) {
      process.stderr.write(`${errorsDocPath} is out of date: run \`${errorsDocCommand}\`\n`);
      process.exit(1);
    }
  } else if (current !== expected) {
    writeFileSync(target, expected);
    process.stdout.write(`wrote ${relative(process.cwd(), target) || errorsDocPath}\n`);
  }
}
