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

/**
 * Build a redactor. It copies only what it changes, so objects without secrets are returned as-is
 * (no allocation on the common path), and it tolerates cycles.
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

  const walk = (value: unknown, seen: Set<object>): unknown => {
    if (typeof value === 'string') return maskUrlCredentials(value);
    if (value === null || typeof value !== 'object') return value;
    if (seen.has(value)) return value;
    if (value instanceof Error) {
      // Nested errors would serialise as `{}`; give them pino's shape, then redact that.
      seen.add(value);
      const out = walk({ ...stdSerializers.err(value) }, seen);
      seen.delete(value);
      return out;
    }
    seen.add(value);
    try {
      if (Array.isArray(value)) {
        let copy: unknown[] | undefined;
        for (let i = 0; i < value.length; i++) {
          const before = value[i];
          const after = walk(before, seen);
          if (after !== before) {
            copy ??= value.slice();
            copy[i] = after;
          }
        }
        return copy ?? value;
      }
      const proto = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) {
        // Class instances (Date, URL, Buffer, Map...) serialise through their own toJSON; only URL
        // can carry credentials.
        if (value instanceof URL) return maskUrlCredentials(value.href);
        return value;
      }
      let copy: Record<string, unknown> | undefined;
      const record = value as Record<string, unknown>;
      for (const key of Object.keys(record)) {
        const before = record[key];
        const after =
          isSecretKey(key) && before !== undefined && before !== null ? REDACTED : walk(before, seen);
        if (after !== before) {
          copy ??= { ...record };
          copy[key] = after;
        }
      }
      return copy ?? value;
    } finally {
      seen.delete(value);
    }
  };

  return (value) => walk(value, new Set());
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
