// 12-factor configuration: a typed definition read from environment variables, every problem
// reported at once, secrets never printed.
import { readFileSync, writeSync } from 'node:fs';
import type { z } from 'zod';
import { maskUrlCredentials, REDACTED } from '../redact.ts';
import { type EnvField, env, isEnvField } from './env-types.ts';
import { ConfigDefinitionError, ConfigError, type ConfigIssue } from './errors.ts';

const DEFINITION_BRAND = Symbol.for('capstan.config.definition');

/** A field of a definition: an {@link EnvField} or any zod schema taking the raw string. */
export type ConfigFieldInput = EnvField<unknown> | z.ZodType | ConfigGroup<Record<string, ConfigFieldInput>>;

const GROUP_BRAND = Symbol.for('capstan.config.group');

/** A nested set of fields, made by {@link configGroup}; it loads into a nested object. */
export interface ConfigGroup<F extends Record<string, ConfigFieldInput>> {
  readonly [GROUP_BRAND]: true;
  /** Prefix added after the definition's; default SNAKE_CASE(key) + `_`. */
  readonly prefix: string | undefined;
  readonly fields: F;
}

/**
 * Nest fields under one key, like a nested struct in Go's envconfig: with definition prefix `APP_`,
 * `db: configGroup({ url: env.url(), poolSize: env.int() })` reads `APP_DB_URL` and `APP_DB_POOL_SIZE`
 * into `cfg.db.url` and `cfg.db.poolSize`. `prefix` replaces the `DB_` part (`''` for none).
 */
export function configGroup<const F extends Record<string, ConfigFieldInput>>(
  fields: F,
  options: { prefix?: string } = {},
): ConfigGroup<F> {
  return Object.freeze({ [GROUP_BRAND]: true as const, prefix: options.prefix, fields });
}

function isConfigGroup(value: unknown): value is ConfigGroup<Record<string, ConfigFieldInput>> {
  return (
    typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[GROUP_BRAND] === true
  );
}

/** The typed value a field yields. */
export type FieldValue<F> =
  F extends EnvField<infer T>
    ? T
    : F extends ConfigGroup<infer G>
      ? { readonly [K in keyof G]: FieldValue<G[K]> }
      : F extends z.ZodType<infer O>
        ? O
        : never;

/** The typed configuration object a definition loads into. */
export type ConfigOf<D> =
  D extends ConfigDefinition<infer F> ? { readonly [K in keyof F]: FieldValue<F[K]> } : never;

/** Options for {@link defineConfig}. */
export interface DefineConfigOptions<F extends Record<string, ConfigFieldInput>> {
  /**
   * Prepended to every derived variable name, like Go's envconfig: with `EXPORTER_`, field
   * `listenPort` reads `EXPORTER_LISTEN_PORT`. A missing trailing `_` is added. Fields with an
   * explicit `.env(name)` ignore it.
   */
  prefix?: string;
  /** Short name shown in documentation, e.g. `exporter`. */
  name?: string;
  fields: F;
}

/** One resolved field: its key (dotted inside groups: `db.url`), its variable and its parser. */
export interface ConfigEntry {
  readonly key: string;
  /** The key split at groups: `['db', 'url']`. */
  readonly path: readonly string[];
  readonly env: string;
  readonly field: EnvField<unknown>;
}

/** A configuration definition: build with {@link defineConfig}, read with {@link loadConfig}. */
export interface ConfigDefinition<
  F extends Record<string, ConfigFieldInput> = Record<string, ConfigFieldInput>,
> {
  readonly [DEFINITION_BRAND]: true;
  readonly name: string | undefined;
  readonly prefix: string;
  readonly fields: F;
  /** Fields in declaration order with their resolved variable names. */
  readonly entries: readonly ConfigEntry[];
}

/** `listenPort` → `LISTEN_PORT`, `databaseURL` → `DATABASE_URL`, `http2Port` → `HTTP2_PORT`. */
export function envNameFor(key: string, prefix = ''): string {
  const snake = key
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1_$2')
    .replace(/[^A-Za-z0-9]+/g, '_')
    .toUpperCase();
  return normalizePrefix(prefix) + snake;
}

function normalizePrefix(prefix: string): string {
  return prefix === '' || prefix.endsWith('_') ? prefix : `${prefix}_`;
}

/**
 * Define a configuration. Checks the definition itself (variable names unique and well-formed) at
 * once, so a mistake fails at import time, not in production.
 *
 * ```ts
 * const exporterConfig = defineConfig({
 *   prefix: 'EXPORTER_',
 *   fields: {
 *     listenPort: env.port().default(9100).describe('Port for /metrics'),
 *     databaseUrl: env.url({ protocols: ['postgres:'] }).env('DATABASE_URL').secret(),
 *     scrapeTimeout: env.duration().default('10s'),
 *   },
 * });
 * ```
 */
export function defineConfig<const F extends Record<string, ConfigFieldInput>>(
  options: DefineConfigOptions<F>,
): ConfigDefinition<F> {
  const prefix = normalizePrefix(options.prefix ?? '');
  if (prefix !== '' && !/^[A-Za-z_][A-Za-z0-9_]*$/.test(prefix)) {
    throw new ConfigDefinitionError(`invalid prefix ${JSON.stringify(options.prefix)}`);
  }
  const seen = new Map<string, string>();
  const entries: ConfigEntry[] = [];
  const visit = (fields: Record<string, ConfigFieldInput>, namePrefix: string, parent: readonly string[]) => {
    for (const [key, input] of Object.entries(fields)) {
      const path = [...parent, key];
      if (isConfigGroup(input)) {
        const own = input.prefix === undefined ? envNameFor(key) : input.prefix;
        if (own !== '' && !/^[A-Za-z0-9_]+$/.test(own)) {
          throw new ConfigDefinitionError(
            `invalid prefix ${JSON.stringify(own)} for group ${path.join('.')}`,
          );
        }
        visit(input.fields, namePrefix + normalizePrefix(own), path);
        continue;
      }
      const dotted = path.join('.');
      const field = toEnvField(dotted, input);
      const name = field.info.env ?? envNameFor(key, namePrefix);
      const other = seen.get(name);
      if (other !== undefined) {
        throw new ConfigDefinitionError(`fields ${other} and ${dotted} both read ${name}`);
      }
      seen.set(name, dotted);
      entries.push({ key: dotted, path, env: name, field });
    }
  };
  visit(options.fields, prefix, []);
  return Object.freeze({
    [DEFINITION_BRAND]: true as const,
    name: options.name,
    prefix,
    fields: options.fields,
    entries: Object.freeze(entries),
  });
}

function toEnvField(key: string, input: unknown): EnvField<unknown> {
  if (isEnvField(input)) return input;
  if (typeof input === 'object' && input !== null && typeof (input as z.ZodType).safeParse === 'function') {
    const schema = input as z.ZodType<unknown, string | undefined>;
    // A raw zod schema decides itself whether unset is fine (`.optional()`, `.default()`).
    const unset = schema.safeParse(undefined);
    let f = env.custom(schema as z.ZodType<unknown, string>, 'a valid value', 'zod');
    if (unset.success)
      f =
        unset.data === undefined
          ? f.optional()
          : (f.default(unset.data as NonNullable<unknown>) as EnvField<unknown>);
    return schema.description ? f.describe(schema.description) : f;
  }
  throw new ConfigDefinitionError(`field ${key} is neither an env field nor a zod schema`);
}

/** True for a definition made by {@link defineConfig} (from any copy of this module). */
export function isConfigDefinition(value: unknown): value is ConfigDefinition {
  return (
    typeof value === 'object' &&
    value !== null &&
    (value as Record<symbol, unknown>)[DEFINITION_BRAND] === true
  );
}

/** Quote a found value for a message, masking secrets entirely and URL passwords always. */
function shown(raw: string, secret: boolean): string {
  return secret ? REDACTED : JSON.stringify(maskUrlCredentials(raw));
}

function setPath(target: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let node = target;
  for (const part of path.slice(0, -1)) {
    node[part] ??= {};
    node = node[part] as Record<string, unknown>;
  }
  node[path[path.length - 1]!] = value;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

function issue(
  name: string,
  field: string,
  kind: ConfigIssue['kind'],
  expected: string,
  found: string,
  label = name,
): ConfigIssue {
  const required = kind === 'missing' ? 'required, ' : '';
  return {
    env: name,
    field,
    kind,
    expected,
    found,
    message: `${label}: ${required}expected ${expected}, found ${found}`,
  };
}

/**
 * Collect every problem with `envVars` against `def` without throwing (for tools such as
 * `capstan config check` that merge several definitions).
 */
export function checkConfig(
  def: ConfigDefinition,
  envVars: Record<string, string | undefined> = process.env,
): { value: Record<string, unknown>; issues: ConfigIssue[] } {
  const value: Record<string, unknown> = {};
  const issues: ConfigIssue[] = [];
  for (const { key, path, env: name, field } of def.entries) {
    let raw = envVars[name];
    let label = name;
    const filePath = field.info.secret ? envVars[`${name}_FILE`] : undefined;
    if (filePath !== undefined && filePath.trim() !== '') {
      // Docker and Kubernetes mount secrets as files; NAME_FILE keeps them out of the environment.
      const fileVar = `${name}_FILE`;
      if (raw !== undefined && raw.trim() !== '') {
        issues.push(issue(name, key, 'invalid', `either ${name} or ${fileVar}, not both`, 'both set'));
        continue;
      }
      try {
        raw = readFileSync(filePath, 'utf8').replace(/\r?\n$/, '');
        label = `${name} (from ${fileVar})`;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? 'unreadable';
        issues.push(
          issue(fileVar, key, 'invalid', 'a readable file', `${JSON.stringify(filePath)} (${code})`),
        );
        continue;
      }
    }
    const r = field.parse(raw);
    if (r.ok) {
      setPath(value, path, r.value);
      continue;
    }
    const found =
      r.kind === 'missing' ? (raw === undefined ? 'unset' : 'empty') : shown(raw!, field.info.secret);
    issues.push(issue(name, key, r.kind, r.expected, found, label));
  }
  return { value, issues };
}

/**
 * Read `def` from `envVars` (default `process.env`). Empty variables count as unset. A secret field
 * may instead be given as `<NAME>_FILE=/path` (one trailing newline dropped). Throws a
 * {@link ConfigError} listing every problem at once.
 */
export function loadConfig<F extends Record<string, ConfigFieldInput>>(
  def: ConfigDefinition<F>,
  envVars: Record<string, string | undefined> = process.env,
): ConfigOf<ConfigDefinition<F>> {
  const { value, issues } = checkConfig(def as ConfigDefinition, envVars);
  if (issues.length > 0) throw new ConfigError(issues);
  return deepFreeze(value) as ConfigOf<ConfigDefinition<F>>;
}

/** Exit status for a configuration error (`EX_CONFIG` from sysexits.h). */
export const EX_CONFIG = 78;

/**
 * {@link loadConfig}, but on a configuration problem print every problem to stderr and exit with
 * status 78 (EX_CONFIG) before anything starts. Call it first thing in `main`.
 */
export function loadConfigOrExit<F extends Record<string, ConfigFieldInput>>(
  def: ConfigDefinition<F>,
  envVars: Record<string, string | undefined> = process.env,
): ConfigOf<ConfigDefinition<F>> {
  try {
    return loadConfig(def, envVars);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    // writeSync: process.exit must not race an asynchronous stderr.
    writeSync(2, `${err.message}\n`);
    process.exit(EX_CONFIG);
  }
}

/** One row of configuration documentation. */
export interface ConfigRow {
  env: string;
  field: string;
  type: string;
  required: boolean;
  /** Default as written in the environment; `[REDACTED]` for a secret; absent when none. */
  default?: string;
  secret: boolean;
  /** For secrets: the `<NAME>_FILE` variable that may name a file holding the value instead. */
  fileEnv?: string;
  description: string;
}

/** Document a definition: one row per variable. */
export function describeConfig(def: ConfigDefinition): ConfigRow[] {
  return def.entries.map(({ key, env: name, field }) => {
    const row: ConfigRow = {
      env: name,
      field: key,
      type: field.info.type,
      required: !field.info.optional && !field.info.hasDefault,
      secret: field.info.secret,
      description: field.info.description ?? '',
    };
    // Omitted rather than undefined, so rows survive a JSON round trip unchanged.
    if (field.info.secret) row.fileEnv = `${name}_FILE`;
    if (field.info.defaultText !== undefined) {
      row.default = field.info.secret ? REDACTED : maskUrlCredentials(field.info.defaultText);
    }
    return row;
  });
}

/** Output formats of {@link renderConfigRows}. */
export type ConfigDocFormat = 'table' | 'markdown' | 'json';

/** Render rows as an aligned text table, a Markdown table or JSON. */
export function renderConfigRows(rows: readonly ConfigRow[], format: ConfigDocFormat = 'table'): string {
  if (format === 'json') return `${JSON.stringify(rows, null, 2)}\n`;
  const head = ['Variable', 'Type', 'Default', 'Secret', 'Description'];
  const cells = rows.map((r) => [
    r.env,
    r.type,
    r.required ? '(required)' : (r.default ?? '(optional)'),
    r.secret ? 'yes (or _FILE)' : '',
    r.description,
  ]);
  if (format === 'markdown') {
    const esc = (s: string) => s.replace(/\|/g, '\\|');
    const line = (c: string[]) => `| ${c.map(esc).join(' | ')} |`;
    return [line(head), `|${head.map(() => '---').join('|')}|`, ...cells.map(line)].join('\n') + '\n';
  }
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]) =>
    c
      .map((s, i) => (i === c.length - 1 ? s : s.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(head), ...cells.map(line)].join('\n') + '\n';
}

/**
 * The HTTP listen address every Capstan service reads: `PORT` (default 8080; `0` picks a free port,
 * which is how `capstan up` runs several services side by side) and `HOST` (unset: all interfaces,
 * IPv6 and IPv4 where available, which is Node's own default). Spread into your own fields:
 * `defineConfig({ prefix: 'APP_', fields: { ...listenFields, ... } })`; their names are explicit, so
 * the prefix does not apply.
 */
export const listenFields = {
  port: env
    .port({ allowZero: true })
    .default(8080)
    .env('PORT')
    .describe('HTTP listen port (0 = any free port)'),
  host: env.string().optional().env('HOST').describe('Listen address; unset = all interfaces'),
};

/** A definition holding only {@link listenFields}. */
export const listenConfig = defineConfig({ name: 'listen', fields: listenFields });
