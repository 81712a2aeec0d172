// Redaction, once for the whole runtime: the logger and the config loader redact secret-named fields at any
// depth and the password part of URL userinfo inside any string; health checks hide credentials of the targets
// they name (a probe body is often readable by anyone who can reach the pod). pino's own `redact` needs
// explicit paths and has no "any depth" wildcard, so a secret nested somewhere unexpected would leak; this
// pass walks the value. A leaf module: config, log and health all import it, it imports none of them.
import { stdSerializers } from 'pino';

/** The text that replaces a redacted value. */
export const REDACTED = '[REDACTED]';

/**
 * Fragments that make a field name secret, compared against the lower-cased name with `-` and `_`
 * removed, so `apiKey`, `api_key`, `x-api-key` and `API-KEY` all match `apikey`.
 */
export const DEFAULT_SECRET_KEY_FRAGMENTS: readonly string[] = [
  'password',
  'passwd',
  'passphrase',
  'token',
  'secret',
  'authorization',
  'cookie',
  'apikey',
  'accesskey',
  'privatekey',
  'credential',
  'sessionid',
  'signature',
];

/**
 * Whole field names (same normalisation) that are secret but too short to match as fragments:
 * `auth` would otherwise hit `author`, `pass` would hit `passenger`.
 */
export const DEFAULT_SECRET_KEY_NAMES: readonly string[] = ['auth', 'pass', 'pwd', 'jwt', 'bearer'];

// scheme://user:password@ — the password may hold anything except `@`, `/` and whitespace (an `@`
// inside a password must be percent-encoded in a valid URL).
const URL_USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/[^:@/\s]*):([^@/\s]*)@/gi;

/** Replace the password in every `scheme://user:password@host` found in `text`. */
export function maskUrlCredentials(text: string): string {
  // Cheap pre-check: most log strings hold no URL at all.
  if (!text.includes('://') || !text.includes('@')) return text;
  return text.replace(URL_USERINFO, (_m, head: string) => `${head}:${REDACTED}@`);
}

/** Options for {@link createRedactor}. */
export interface RedactorOptions {
  /** Extra name fragments (case-insensitive, `-`/`_` ignored) to treat as secret. */
  extraKeys?: readonly string[];
}

/** A function returning a redacted copy of a value (or the same value when nothing needed redaction). */
export type Redactor = (value: unknown) => unknown;

/** Nesting deeper than this is replaced by {@link TRUNCATED}: it bounds the walk's stack and time. */
export const MAX_REDACT_DEPTH = 32;
/** What replaces a value nested deeper than {@link MAX_REDACT_DEPTH}. */
export const TRUNCATED = '[Truncated]';
/** What replaces a reference back to an object being walked (a cycle). */
export const CIRCULAR = '[Circular]';

// Collections whose JSON is `{}` although they hold entries (WHATWG Headers, URLSearchParams, FormData, from
// Node or from an undici copy): recognised by tag, not class, since several copies of undici may be loaded.
const ENTRY_TAGS = new Set(['Headers', 'URLSearchParams', 'FormData']);

interface EntryCollection {
  entries(): Iterable<[unknown, unknown]>;
}

function isEntryCollection(value: object): value is EntryCollection {
  const tag = (value as { [Symbol.toStringTag]?: unknown })[Symbol.toStringTag];
  return (
    typeof tag === 'string' && ENTRY_TAGS.has(tag) && typeof (value as EntryCollection).entries === 'function'
  );
}

/**
 * Build a redactor. It copies only what it changes, so plain objects without secrets are returned as-is
 * (no allocation on the common path). Beyond plain objects and arrays it serialises, so that the JSON log
 * shows the entries (`JSON.stringify` would give `{}`, or a class's own fields unredacted):
 * - an `Error`: pino's shape (`type`, `message` and `stack` with the causes'), its own fields, `cause` (an
 *   error or any value) and `aggregateErrors` (`AggregateError.errors`), all redacted, recursively;
 * - a `Map`: an object of its entries (keys through `String`), a `Set`: an array;
 * - a flat list of names and values (`IncomingMessage.rawHeaders`): the value after a secret name;
 * - a `Headers`, `URLSearchParams` or `FormData`: an object of its entries (repeated names joined by `, `);
 * - a `URL`: its `href` with the password masked; a `Date`, a `Buffer` or typed array: as-is;
 * - another class instance: the result of its `toJSON()` if it has one, else its own enumerable fields, redacted
 *   (a plain object when anything changed, the instance itself otherwise: the same JSON).
 * A cycle becomes {@link CIRCULAR}; nesting deeper than {@link MAX_REDACT_DEPTH}, {@link TRUNCATED}.
 */
export function createRedactor(options: RedactorOptions = {}): Redactor {
  const fragments = [...DEFAULT_SECRET_KEY_FRAGMENTS, ...(options.extraKeys ?? [])].map(normalizeKey);
  const exact = new Set(DEFAULT_SECRET_KEY_NAMES);
  const verdicts = new Map<string, boolean>();
  const isSecretKey = (key: string): boolean => {
    let v = verdicts.get(key);
    if (v === undefined) {
      const k = normalizeKey(key);
      v = exact.has(k) || fragments.some((f) => k.includes(f));
      // Field names come from code, so the set stays small; the cap guards against data used as keys.
      if (verdicts.size < 10_000) verdicts.set(key, v);
    }
    return v;
  };
  const field = (key: string, value: unknown, seen: Set<object>, depth: number): unknown =>
    isSecretKey(key) && value !== undefined && value !== null ? REDACTED : walk(value, seen, depth);

  /** Fields of a record, redacted; the record itself when nothing changed. */
  const walkRecord = (record: Record<string, unknown>, seen: Set<object>, depth: number) => {
    let copy: Record<string, unknown> | undefined;
    for (const key of Object.keys(record)) {
      const before = record[key];
      const after = field(key, before, seen, depth);
      if (after !== before) {
        copy ??= { ...record };
        copy[key] = after;
      }
    }
    return copy ?? record;
  };

  /** Entries as a fresh plain object, redacted (a Map, a Headers...). */
  const fromEntries = (entries: Iterable<[unknown, unknown]>, seen: Set<object>, depth: number) => {
    const out: Record<string, unknown> = {};
    for (const [k, v] of entries) {
      const key = String(k);
      const value = field(key, v, seen, depth);
      // Headers already joins repeated names; FormData and URLSearchParams repeat them.
      out[key] =
        key in out && typeof out[key] === 'string' && typeof value === 'string'
          ? `${out[key]}, ${value}`
          : value;
    }
    return out;
  };

  const walkError = (err: Error, seen: Set<object>, depth: number): Record<string, unknown> => {
    // pino's shape for type, message and stack (causes' messages and stacks appended), then what pino skips
    // or keeps raw: own fields (whatever their type), the cause (a non-error one is dropped by pino) and an
    // AggregateError's errors, each redacted here.
    const { type, message, stack } = stdSerializers.err(err);
    const out: Record<string, unknown> = { type, message, stack };
    for (const key in err) {
      if (key in out) continue;
      out[key] = (err as unknown as Record<string, unknown>)[key];
    }
    if (err.cause !== undefined) out['cause'] = err.cause;
    const errors = (err as { errors?: unknown }).errors;
    if (Array.isArray(errors)) {
      delete out['errors'];
      out['aggregateErrors'] = errors;
    }
    return walkRecord(out, seen, depth);
  };

  const walkObject = (value: object, seen: Set<object>, depth: number): unknown => {
    if (Array.isArray(value)) {
      const pairs = isNameValuePairs(value);
      let copy: unknown[] | undefined;
      for (let i = 0; i < value.length; i++) {
        const before = value[i];
        const after =
          pairs && i % 2 === 1 && isSecretKey(value[i - 1] as string) ? REDACTED : walk(before, seen, depth);
        if (after !== before) {
          copy ??= value.slice();
          copy[i] = after;
        }
      }
      return copy ?? value;
    }
    const proto = Object.getPrototypeOf(value);
    if (proto === Object.prototype || proto === null)
      return walkRecord(value as Record<string, unknown>, seen, depth);
    if (value instanceof Error) return walkError(value, seen, depth);
    if (value instanceof URL) return maskUrlCredentials(value.href);
    if (value instanceof Date || ArrayBuffer.isView(value) || value instanceof ArrayBuffer) return value;
    if (value instanceof Map) return fromEntries(value.entries(), seen, depth);
    if (value instanceof Set) return walkObject([...value], seen, depth);
    if (isEntryCollection(value)) return fromEntries(value.entries(), seen, depth);
    const toJSON = (value as { toJSON?: unknown }).toJSON;
    if (typeof toJSON === 'function') return walk(toJSON.call(value), seen, depth);
    return walkRecord(value as Record<string, unknown>, seen, depth);
  };

  const walk = (value: unknown, seen: Set<object>, depth: number): unknown => {
    if (typeof value === 'string') return maskUrlCredentials(value);
    if (value === null || typeof value !== 'object') return value;
    // The original object must never reach the output: pino would print it in full.
    if (seen.has(value)) return CIRCULAR;
    if (depth >= MAX_REDACT_DEPTH) return TRUNCATED;
    seen.add(value);
    try {
      return walkObject(value, seen, depth + 1);
    } finally {
      seen.delete(value);
    }
  };

  return (value) => walk(value, new Set(), 0);
}

const HEADER_NAME = /^[A-Za-z0-9_-]{1,64}$/;

// Raw headers are a flat list of names and values (`IncomingMessage.rawHeaders`, undici's array form of
// `headers`): ['Host', 'h', 'Authorization', 'Bearer x']. A list of strings of even length whose even items
// look like header names is read that way; a plain word list is over-redacted at worst.
function isNameValuePairs(list: readonly unknown[]): boolean {
  if (list.length < 2 || list.length % 2 !== 0) return false;
  for (let i = 0; i < list.length; i += 2) {
    const name = list[i];
    if (typeof name !== 'string' || !HEADER_NAME.test(name) || typeof list[i + 1] !== 'string') return false;
  }
  return true;
}

function normalizeKey(key: string): string {
  return key.toLowerCase().replace(/[-_]/g, '');
}

/**
 * The URL with its password, and its query string (which often carries tokens), replaced by
 * {@link REDACTED}; `<invalid url>` when it does not parse.
 */
export function redactUrl(url: string | URL): string {
  const parsed = URL.parse(typeof url === 'string' ? url : url.href);
  if (!parsed) return '<invalid url>';
  const query = parsed.search ? `?${REDACTED}` : '';
  const hash = parsed.hash;
  parsed.search = '';
  parsed.hash = '';
  return `${maskUrlCredentials(parsed.href)}${query}${hash}`;
}

/**
 * Replace every occurrence of each secret in `text` (a driver's error message) by {@link REDACTED}, also in
 * its URL-encoded form. Empty secrets are ignored.
 */
export function scrub(text: string, secrets: ReadonlyArray<string | undefined>): string {
  let out = text;
  for (const secret of secrets) {
    if (!secret) continue;
    out = out.split(secret).join(REDACTED);
    // A URL-encoded password shows up encoded inside URLs quoted by drivers.
    const encoded = encodeURIComponent(secret);
    if (encoded !== secret) out = out.split(encoded).join(REDACTED);
  }
  return out;
}

/** The secrets hidden in a connection URL, for {@link scrub}: its password (raw and decoded) and the URL itself. */
export function urlSecrets(url: string): string[] {
  try {
    const parsed = new URL(url);
    const password = parsed.password ? decodeURIComponent(parsed.password) : '';
    return password ? [url, parsed.password, password] : [];
  } catch {
    // Not a URL, or a password that is not valid percent-encoding: hide the whole string.
    return [url];
  }
}
