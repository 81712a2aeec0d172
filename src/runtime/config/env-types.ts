// Ready-made environment variable types. Each is a zod schema from the raw string to the typed value,
// wrapped in an immutable `EnvField` carrying what the loader and `describeConfig` need: the variable
// name override, the default, whether it is secret, and a human description of what is expected.
import { z } from 'zod';
import { ConfigDefinitionError } from './errors.ts';

const FIELD_BRAND = Symbol.for('capstan.config.field');

/** What an {@link EnvField} knows about itself, for the loader and for documentation. */
export interface EnvFieldInfo {
  /** Short type name for tables: `port`, `duration`, `list<int>`, `enum(a|b)`... */
  readonly type: string;
  /** What a valid value looks like, used in error messages: `a port number (integer 1..65535)`. */
  readonly expected: string;
  /** Explicit variable name (used verbatim, without the definition's prefix). */
  readonly env: string | undefined;
  readonly description: string | undefined;
  /** Secret values are never printed: not in errors, not in `describeConfig` defaults. */
  readonly secret: boolean;
  /** Unset is allowed and yields `undefined`. */
  readonly optional: boolean;
  readonly hasDefault: boolean;
  readonly defaultValue: unknown;
  /** The default as a person would write it in the environment (`30s`, `a,b`). */
  readonly defaultText: string | undefined;
  /** Renders a typed value back to its environment spelling. */
  readonly format: (value: unknown) => string;
}

/** Outcome of parsing one raw variable. */
export type FieldParseResult<T> =
  | { ok: true; value: T }
  | { ok: false; kind: 'missing' | 'invalid'; expected: string };

/**
 * One environment variable: a zod schema from its string to `T`, plus metadata. Immutable: every
 * modifier returns a new field, so shared fields (like {@link listenFields}) are safe to reuse.
 */
export class EnvField<T> {
  /** Brand so definitions are recognisable across module copies (source and dist). */
  readonly [FIELD_BRAND] = true;
  /** Parses a non-empty raw value. */
  readonly schema: z.ZodType<T, string>;
  readonly info: EnvFieldInfo;

  constructor(schema: z.ZodType<T, string>, info: EnvFieldInfo) {
    this.schema = schema;
    this.info = info;
  }

  /**
   * Value used when the variable is unset or empty. A string is parsed like the variable itself
   * (`env.duration().default('30s')`); anything else is taken as the typed value.
   */
  default(value: NonNullable<T> | string): EnvField<NonNullable<T>> {
    let typed: unknown = value;
    if (typeof value === 'string') {
      const r = this.schema.safeParse(value);
      if (!r.success) {
        throw new ConfigDefinitionError(
          `default ${this.info.secret ? '[REDACTED]' : JSON.stringify(value)} is not ${this.info.expected}`,
        );
      }
      typed = r.data;
    }
    // Frozen: the same default object is handed to every load, so one caller must not change it for all.
    if (typeof typed === 'object' && typed !== null) Object.freeze(typed);
    const text = typeof value === 'string' ? value : this.info.format(value);
    return new EnvField(this.schema as z.ZodType<NonNullable<T>, string>, {
      ...this.info,
      optional: false,
      hasDefault: true,
      defaultValue: typed,
      defaultText: text,
    });
  }

  /** Unset (or empty) yields `undefined` instead of a "missing" problem. */
  optional(): EnvField<T | undefined> {
    return new EnvField<T | undefined>(this.schema, { ...this.info, optional: true });
  }

  /** Mark the value secret: it is masked in every message and in documentation. */
  secret(): EnvField<T> {
    return new EnvField(this.schema, { ...this.info, secret: true });
  }

  /** One-line description shown by `describeConfig` and `capstan config doc`. */
  describe(description: string): EnvField<T> {
    return new EnvField(this.schema, { ...this.info, description });
  }

  /** Read this exact variable name instead of prefix + SNAKE_CASE(field). */
  env(name: string): EnvField<T> {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
      throw new ConfigDefinitionError(`invalid environment variable name ${JSON.stringify(name)}`);
    }
    return new EnvField(this.schema, { ...this.info, env: name });
  }

  /** Parse a raw value; `undefined` or blank means unset (so `PORT=` falls back to the default). */
  parse(raw: string | undefined): FieldParseResult<T> {
    if (raw === undefined || raw.trim() === '') {
      if (this.info.hasDefault) return { ok: true, value: this.info.defaultValue as T };
      if (this.info.optional) return { ok: true, value: undefined as T };
      return { ok: false, kind: 'missing', expected: this.info.expected };
    }
    const r = this.schema.safeParse(raw);
    if (r.success) return { ok: true, value: r.data };
    let expected = expectedFromZod(r.error.issues[0]?.message, this.info.expected);
    // A custom zod message could quote its input; a secret must not survive that.
    if (this.info.secret && raw.trim().length >= 3) expected = expected.replaceAll(raw.trim(), '[REDACTED]');
    return { ok: false, kind: 'invalid', expected };
  }
}

/**
 * Our own schemas put the expectation in the message; zod's say "Invalid option: expected one of
 * ..., received ...": keep the expectation, drop the rest, never the input.
 */
function expectedFromZod(message: string | undefined, fallback: string): string {
  if (message === undefined) return fallback;
  if (message.startsWith(fallback)) return message;
  const m = /expected (.+?)(?:, received .*)?$/i.exec(message);
  return m ? m[1]! : `${fallback} (${message})`;
}

/** True for an {@link EnvField}, including one from another copy of this module. */
export function isEnvField(value: unknown): value is EnvField<unknown> {
  return (
    typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[FIELD_BRAND] === true
  );
}

function field<T>(
  type: string,
  expected: string,
  parse: (raw: string) => T | undefined,
  format: (value: unknown) => string = String,
): EnvField<T> {
  const schema = z.string().transform((raw, ctx) => {
    const value = parse(raw);
    if (value === undefined) {
      // The message is what the loader prints after "expected"; it never includes the input, so a
      // secret cannot leak through it.
      ctx.issues.push({ code: 'custom', message: expected, input: raw });
      return z.NEVER;
    }
    return value;
  });
  return new EnvField<T>(schema, {
    type,
    expected,
    env: undefined,
    description: undefined,
    secret: false,
    optional: false,
    hasDefault: false,
    defaultValue: undefined,
    defaultText: undefined,
    format,
  });
}

/** Bounds for {@link env.int} and {@link env.number}. */
export interface RangeOptions {
  min?: number;
  max?: number;
}

function rangeText({ min, max }: RangeOptions): string {
  if (min !== undefined && max !== undefined) return ` ${min}..${max}`;
  if (min !== undefined) return ` >= ${min}`;
  if (max !== undefined) return ` <= ${max}`;
  return '';
}

function inRange(n: number, { min, max }: RangeOptions): boolean {
  return (min === undefined || n >= min) && (max === undefined || n <= max);
}

const INT = /^[+-]?\d+$/;
const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

function parseInteger(raw: string, range: RangeOptions): number | undefined {
  const s = raw.trim();
  if (!INT.test(s)) return undefined;
  const n = Number(s);
  return Number.isSafeInteger(n) && inRange(n, range) ? n : undefined;
}

/** Unit suffixes accepted by {@link env.duration}, in milliseconds. */
const DURATION_UNITS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};
const DURATION_PART = /(\d+(?:\.\d+)?|\.\d+)(ns|us|µs|ms|s|m|h|d)/y;

/**
 * Parse a Go-style duration (`250ms`, `30s`, `1h30m`, `1.5h`) to milliseconds. A bare number is
 * accepted only with `unit` (and `0` always, as in Go). Returns undefined when malformed.
 */
export function parseDuration(raw: string, unit?: DurationUnit): number | undefined {
  const s = raw.trim();
  if (s === '0') return 0;
  if (NUMBER.test(s))
    return unit === undefined || s.startsWith('-') ? undefined : Number(s) * DURATION_UNITS[unit]!;
  let total = 0;
  let pos = 0;
  DURATION_PART.lastIndex = 0;
  while (pos < s.length) {
    DURATION_PART.lastIndex = pos;
    const m = DURATION_PART.exec(s);
    if (!m) return undefined;
    total += Number(m[1]) * DURATION_UNITS[m[2]!]!;
    pos = DURATION_PART.lastIndex;
  }
  return pos === 0 ? undefined : total;
}

/** Render milliseconds as a duration string (`90000` → `1m30s`). */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  let rest = ms;
  let out = '';
  for (const [u, size] of [
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ] as const) {
    if (rest >= size) {
      const n = Math.floor(rest / size);
      out += `${n}${u}`;
      rest -= n * size;
    }
  }
  if (rest > 0) out += `${rest}ms`;
  return out;
}

/** Unit a bare number is read in, for {@link env.duration}. */
export type DurationUnit = 'ms' | 's' | 'm' | 'h';

const TRUE = new Set(['true', '1', 'yes', 'on']);
const FALSE = new Set(['false', '0', 'no', 'off']);

/**
 * Builders for the ready-made variable types. Each returns a required {@link EnvField}; chain
 * `.default()`, `.optional()`, `.secret()`, `.describe()` and `.env()`.
 */
export const env = {
  /** Any string (not trimmed). Optional length bounds and pattern. */
  string(options: { minLength?: number; maxLength?: number; pattern?: RegExp } = {}): EnvField<string> {
    const { minLength, maxLength, pattern } = options;
    const parts = [
      minLength !== undefined ? `at least ${minLength} characters` : '',
      maxLength !== undefined ? `at most ${maxLength} characters` : '',
      pattern ? `matching ${pattern}` : '',
    ].filter(Boolean);
    const expected = parts.length ? `a string (${parts.join(', ')})` : 'a string';
    return field('string', expected, (raw) =>
      (minLength === undefined || raw.length >= minLength) &&
      (maxLength === undefined || raw.length <= maxLength) &&
      (!pattern || pattern.test(raw))
        ? raw
        : undefined,
    );
  },

  /** An integer (`42`, `-3`), optionally bounded. */
  int(range: RangeOptions = {}): EnvField<number> {
    return field('int', `an integer${rangeText(range)}`, (raw) => parseInteger(raw, range));
  },

  /** A finite decimal number (`0.5`, `1e3`), optionally bounded. */
  number(range: RangeOptions = {}): EnvField<number> {
    return field('number', `a number${rangeText(range)}`, (raw) => {
      const s = raw.trim();
      if (!NUMBER.test(s)) return undefined;
      const n = Number(s);
      return Number.isFinite(n) && inRange(n, range) ? n : undefined;
    });
  },

  /**
   * A TCP port, 1..65535. `allowZero` admits 0 ("any free port"), which listen ports want so a
   * supervisor such as `capstan up` can pass `PORT=0`.
   */
  port(options: { allowZero?: boolean } = {}): EnvField<number> {
    const min = options.allowZero ? 0 : 1;
    return field('port', `a port number (integer ${min}..65535)`, (raw) =>
      parseInteger(raw, { min, max: 65535 }),
    );
  },

  /**
   * `true/1/yes/on` or `false/0/no/off` (any case). Anything else is an error, unlike
   * `z.coerce.boolean()`, which reads "false" as true.
   */
  bool(): EnvField<boolean> {
    return field('bool', 'a boolean (true/false, 1/0, yes/no, on/off)', (raw) => {
      const s = raw.trim().toLowerCase();
      return TRUE.has(s) ? true : FALSE.has(s) ? false : undefined;
    });
  },

  /**
   * A duration in milliseconds from `250ms`, `30s`, `5m`, `1h30m`, `1.5h`, `2d`. A bare number is
   * rejected (is `30` seconds or ms?) unless `unit` says how to read it.
   */
  duration(options: { unit?: DurationUnit; min?: number; max?: number } = {}): EnvField<number> {
    const { unit, min, max } = options;
    const bounds = [
      min !== undefined ? `>= ${formatDuration(min)}` : '',
      max !== undefined ? `<= ${formatDuration(max)}` : '',
    ].filter(Boolean);
    const expected =
      'a duration such as 250ms, 30s, 5m or 1h30m' +
      (unit ? ` (or a number of ${unit})` : '') +
      (bounds.length ? `, ${bounds.join(' and ')}` : '');
    return field(
      'duration',
      expected,
      (raw) => {
        const ms = parseDuration(raw, unit);
        return ms !== undefined && inRange(ms, { min, max }) ? ms : undefined;
      },
      (v) => formatDuration(v as number),
    );
  },

  /**
   * A URL such as a backing service's connection string (`DATABASE_URL=postgres://...`), kept as the
   * string so drivers get it verbatim. `protocols` restricts the scheme (`['postgres:', 'postgresql:']`).
   */
  url(options: { protocols?: readonly string[] } = {}): EnvField<string> {
    const protocols = options.protocols?.map((p) => (p.endsWith(':') ? p : `${p}:`).toLowerCase());
    const expected = protocols ? `a URL with protocol ${protocols.join(' or ')}` : 'a URL';
    return field(protocols ? `url(${protocols.join('|')})` : 'url', expected, (raw) => {
      const s = raw.trim();
      if (!URL.canParse(s)) return undefined;
      const u = new URL(s);
      return !protocols || protocols.includes(u.protocol) ? s : undefined;
    });
  },

  /** One of a fixed set of strings. `caseInsensitive` maps `DEBUG` to `debug`. */
  enum<const V extends readonly [string, ...string[]]>(
    values: V,
    options: { caseInsensitive?: boolean } = {},
  ): EnvField<V[number]> {
    return field(`enum(${values.join('|')})`, `one of ${values.join(', ')}`, (raw) => {
      const s = raw.trim();
      const hit = options.caseInsensitive
        ? values.find((v) => v.toLowerCase() === s.toLowerCase())
        : values.find((v) => v === s);
      return hit;
    });
  },

  /**
   * A separated list (comma by default) of `item` values, each trimmed; empty entries are skipped so a
   * trailing comma is harmless. `env.list(env.int())` gives `number[]`.
   */
  list<T = string>(item?: EnvField<T>, options: { separator?: string } = {}): EnvField<T[]> {
    const it = (item ?? env.string()) as EnvField<T>;
    const sep = options.separator ?? ',';
    const expected = `a ${sep === ',' ? 'comma' : JSON.stringify(sep)}-separated list of ${plural(it.info.expected)}`;
    const schema = z.string().transform((raw, ctx) => {
      const out: T[] = [];
      const parts = raw
        .split(sep)
        .map((p) => p.trim())
        .filter((p) => p !== '');
      for (const [i, part] of parts.entries()) {
        const r = it.schema.safeParse(part);
        if (!r.success) {
          // Position, not value: the list may be secret.
          ctx.issues.push({
            code: 'custom',
            message: `${expected}; item ${i + 1} is invalid`,
            input: raw,
          });
          return z.NEVER;
        }
        out.push(r.data);
      }
      return out;
    });
    return new EnvField<T[]>(schema, {
      ...it.info,
      type: `list<${it.info.type}>`,
      expected,
      env: undefined,
      description: undefined,
      optional: false,
      hasDefault: false,
      defaultValue: undefined,
      defaultText: undefined,
      format: (v) => (v as unknown[]).map((x) => it.info.format(x)).join(sep),
    });
  },

  /**
   * Any zod schema taking the raw string (`z.string().email()`, `z.enum([...])`, `z.coerce.number()`),
   * for types not covered here. `expected` describes it in messages.
   */
  custom<T>(schema: z.ZodType<T, string>, expected = 'a valid value', type = 'custom'): EnvField<T> {
    return new EnvField<T>(schema, {
      type,
      expected,
      env: undefined,
      description: schema.description,
      secret: false,
      optional: false,
      hasDefault: false,
      defaultValue: undefined,
      defaultText: undefined,
      format: String,
    });
  },
};

function plural(expected: string): string {
  // "a port number (...)" -> "port numbers (...)"; good enough for the few built-in phrases.
  return expected.replace(/^an? (port number|\w+)/, '$1s');
}
