import { readFileSync, writeFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import type { z } from 'zod';
import type { SchemaSelector, YamlEditor } from '../yaml/index.ts';
import { CliError, CliErrorCode } from './errors.ts';
import { runAction } from './run-action.ts';
import { importUserModule } from './user-module.ts';

/** The file's text; `-` reads stdin. */
function readInput(file: string): string {
  try {
    return readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (err) {
    throw new CliError(CliErrorCode.usage, `cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Map the yaml area's errors to the CLI's statuses: a bad path is a usage error (2), a file that is not
 * valid YAML is bad input (78), anything else (not found, an edit that cannot be made) a failure (1).
 */
async function asCliError<T>(fn: () => T | Promise<T>): Promise<T> {
  const { YamlError, YamlErrorCode } = await import('../yaml/index.ts');
  try {
    return await fn();
  } catch (err) {
    if (!(err instanceof YamlError)) throw err;
    const code =
      err.code === YamlErrorCode.path
        ? CliErrorCode.usage
        : err.code === YamlErrorCode.syntax || err.code === YamlErrorCode.invalid
          ? CliErrorCode.invalidInput
          : CliErrorCode.failed;
    throw new CliError(code, err.message, { cause: err });
  }
}

/** `--doc 2` (an index) or `--doc Deployment/web` (kind and name) or `--doc Deployment` (the one of a kind). */
function documentOf(editor: YamlEditor, doc: string | undefined): number | undefined {
  if (doc === undefined) return undefined;
  if (/^\d+$/.test(doc)) return Number(doc);
  const slash = doc.indexOf('/');
  return slash < 0
    ? editor.findDocument(doc)
    : editor.findDocument(doc.slice(0, slash), doc.slice(slash + 1));
}

function isZodSchema(v: unknown): v is z.ZodType {
  return (
    v !== null &&
    typeof v === 'object' &&
    '_zod' in v &&
    typeof (v as { safeParse?: unknown }).safeParse === 'function'
  );
}

/** `./schema.ts#name`: the zod schema a module exports under `name` (or its default, or its only one). */
async function schemaFrom(spec: string): Promise<z.ZodType> {
  const hash = spec.lastIndexOf('#');
  const modulePath = hash < 0 ? spec : spec.slice(0, hash);
  const name = hash < 0 ? undefined : spec.slice(hash + 1);
  const mod = await importUserModule(modulePath);
  if (name !== undefined) {
    const v = mod[name];
    if (!isZodSchema(v)) {
      throw new CliError(
        CliErrorCode.usage,
        v === undefined
          ? `${modulePath} exports nothing named ${name}`
          : `${modulePath}: export ${name} is not a zod schema`,
      );
    }
    return v;
  }
  if (isZodSchema(mod['default'])) return mod['default'];
  const schemas = Object.entries(mod).filter(([, v]) => isZodSchema(v));
  if (schemas.length === 1) return schemas[0]![1] as z.ZodType;
  throw new CliError(
    CliErrorCode.usage,
    schemas.length === 0
      ? `${modulePath} exports no zod schema`
      : `${modulePath} exports ${schemas.length} zod schemas (${schemas.map(([n]) => n).join(', ')}): name one as ${modulePath}#<name>`,
  );
}

/**
 * `--crd ./resources.ts[#Export]`: a selector giving each custom resource's documents (by apiVersion and
 * kind, every served version) the schema of its CRD version, and every other document the basic
 * Kubernetes shape.
 */
async function crdSelector(spec: string): Promise<SchemaSelector> {
  const { exportedCustomResources } = await import('../kube/index.ts');
  const { kubeObject, kubeObjectSchema, schemaByKind } = await import('../yaml/index.ts');
  const hash = spec.lastIndexOf('#');
  const modulePath = hash < 0 ? spec : spec.slice(0, hash);
  const name = hash < 0 ? undefined : spec.slice(hash + 1);
  let found = exportedCustomResources(await importUserModule(modulePath));
  if (name !== undefined) found = found.filter(([n]) => n === name);
  if (found.length === 0) {
    throw new CliError(
      CliErrorCode.usage,
      name === undefined
        ? `${modulePath} exports no custom resource (made by defineCustomResource)`
        : `${modulePath} exports no custom resource named ${name}`,
    );
  }
  const schemas = found.flatMap(([, resource]) => {
    const { group, kind, versions } = resource.definition;
    return versions.map((v) => {
      const apiVersion = `${group}/${v.name}`;
      return {
        apiVersion,
        kind,
        schema: kubeObject({ apiVersion, kind, spec: v.spec, ...(v.status ? { status: v.status } : {}) }),
      };
    });
  });
  return schemaByKind(schemas, kubeObjectSchema);
}

/** `capstan yaml`: read, edit, check and format YAML files, comments kept. */
export function command(): Command {
  const yaml = new Command('yaml').description(
    'Read, edit in place (comments and layout kept), validate and format YAML files',
  );
  const docOption = new Option(
    '--doc <which>',
    'the document of a multi-document file: its index (0, 1...) or Kind[/name] (Deployment/web)',
  );

  yaml
    .command('get')
    .description(
      'Print the value at a path (the whole document without one): scalars as is, the rest as YAML',
    )
    .argument('<file>', 'a YAML or JSON file, - for stdin')
    .argument(
      '[path]',
      'dotted path with indexes: spec.template.spec.containers[0].image; quote keys with dots: metadata.annotations["a.b/c"]',
    )
    .addOption(docOption)
    .addOption(
      new Option('-o, --output <format>', 'how to print maps and lists')
        .choices(['yaml', 'json'])
        .default('yaml'),
    )
    .action((file: string, path: string | undefined, opts: { doc?: string; output: 'yaml' | 'json' }) =>
      runAction('capstan yaml get', () =>
        asCliError(async () => {
          const { editYaml, toYaml } = await import('../yaml/index.ts');
          const editor = editYaml(readInput(file), { file });
          const document = documentOf(editor, opts.doc);
          const value = editor.get(path ?? '', document === undefined ? {} : { document });
          if (opts.output === 'json') process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
          else if (typeof value === 'string') process.stdout.write(`${value}\n`);
          else if (value === null || typeof value !== 'object') process.stdout.write(`${String(value)}\n`);
          else process.stdout.write(toYaml(value));
        }),
      ),
    );

  yaml
    .command('set')
    .description(
      'Set the value at a path, editing only those bytes: comments, order and quoting elsewhere stay as they are; a missing key is added beside its siblings',
    )
    .argument('<file>', 'a YAML or JSON file')
    .argument('<path>', 'dotted path with indexes; index = length appends to a list')
    .argument('<value>', 'a YAML value: 0 is a number, true a boolean, "0" a string, [a, b] a list')
    .addOption(docOption)
    .option('--string', 'take <value> as a string as is (no YAML parsing)')
    .option('-o, --output <file>', 'write the result here instead of editing <file> in place (- for stdout)')
    .action(
      (
        file: string,
        path: string,
        rawValue: string,
        opts: { doc?: string; string?: boolean; output?: string },
      ) =>
        runAction('capstan yaml set', () =>
          asCliError(async () => {
            const { editYaml, parseScalar } = await import('../yaml/index.ts');
            const text = readInput(file);
            const editor = editYaml(text, { file });
            const value = opts.string ? rawValue : parseScalar(rawValue);
            const document = documentOf(editor, opts.doc);
            editor.set(path, value, document === undefined ? {} : { document });
            const out = editor.toString();
            if (opts.output === '-') process.stdout.write(out);
            else if (opts.output !== undefined) writeFileSync(opts.output, out);
            else if (out !== text) writeFileSync(file, out);
          }),
        ),
    );

  yaml
    .command('validate')
    .description(
      'Check files strictly: YAML errors, duplicate keys, and with a schema unknown fields (with a did-you-mean) and type errors; every problem listed, exit 1 if any',
    )
    .argument('<files...>', 'YAML or JSON files (multi-document streams too), - for stdin')
    .option('--kube', 'each document is a Kubernetes object: apiVersion, kind, strict metadata')
    .option(
      '--schema <module#export>',
      'a zod schema a module exports (./schema.ts#Deployment; default export or the only one without #)',
    )
    .option(
      '--crd <module[#export]>',
      'custom resources a module exports (defineCustomResource): their documents are checked against the CRD schema, others with --kube',
    )
    .action((files: string[], opts: { kube?: boolean; schema?: string; crd?: string }) =>
      runAction('capstan yaml validate', async () => {
        const given = [opts.kube, opts.schema, opts.crd].filter((x) => x !== undefined).length;
        if (given > 1) throw new CliError(CliErrorCode.usage, 'use one of --kube, --schema and --crd');
        const { checkYaml, formatProblem, kubeObjectSchema } = await import('../yaml/index.ts');
        const schema: z.ZodType | SchemaSelector | undefined = opts.schema
          ? await schemaFrom(opts.schema)
          : opts.crd
            ? await crdSelector(opts.crd)
            : opts.kube
              ? kubeObjectSchema
              : undefined;
        let problems = 0;
        for (const file of files) {
          const check = checkYaml(readInput(file), schema, { file });
          if (check.problems.length === 0) {
            const n = check.values.length;
            process.stdout.write(`ok ${file} (${n} document${n === 1 ? '' : 's'})\n`);
            continue;
          }
          problems += check.problems.length;
          for (const p of check.problems) process.stderr.write(`${formatProblem(p)}\n`);
        }
        if (problems > 0) {
          throw new CliError(
            CliErrorCode.failed,
            `${problems} problem${problems === 1 ? '' : 's'} in ${files.length === 1 ? files[0] : `${files.length} files`}`,
          );
        }
      }),
    );

  yaml
    .command('fmt')
    .description(
      'Normalise indentation (and list placement) keeping comments and key order; refuses if the data or a comment would change',
    )
    .argument('<files...>', 'YAML files, formatted in place')
    .addOption(new Option('--indent <n>', 'spaces per level').default('2'))
    .addOption(
      new Option(
        '--sequences <style>',
        'list dashes indented under their key, or compact at its column (kubectl)',
      ).choices(['indented', 'compact']),
    )
    .option('--check', 'write nothing: exit 1 listing the files that are not formatted (for CI)')
    .option('-o, --output <file>', 'write the result here (- for stdout) instead of in place; one file only')
    .action(
      (
        files: string[],
        opts: { indent: string; sequences?: 'indented' | 'compact'; check?: boolean; output?: string },
      ) =>
        runAction('capstan yaml fmt', () =>
          asCliError(async () => {
            const { formatYaml } = await import('../yaml/index.ts');
            const indent = Number(opts.indent);
            if (!Number.isInteger(indent) || indent < 1 || indent > 8) {
              throw new CliError(CliErrorCode.usage, `--indent must be 1..8, got ${opts.indent}`);
            }
            if (opts.output !== undefined && files.length !== 1) {
              throw new CliError(CliErrorCode.usage, '-o takes one input file');
            }
            const stale: string[] = [];
            for (const file of files) {
              const text = readInput(file);
              const out = formatYaml(text, {
                file,
                indent,
                ...(opts.sequences ? { sequences: opts.sequences } : {}),
              });
              if (opts.check) {
                if (out !== text) stale.push(file);
              } else if (opts.output === '-') process.stdout.write(out);
              else if (opts.output !== undefined) writeFileSync(opts.output, out);
              else if (out !== text) writeFileSync(file, out);
            }
            if (stale.length > 0) {
              throw new CliError(
                CliErrorCode.failed,
                `${stale.length} file${stale.length === 1 ? ' is' : 's are'} not formatted; run capstan yaml fmt:\n${stale.map((f) => `  - ${f}`).join('\n')}`,
              );
            }
          }),
        ),
    );
  return yaml;
}
