import { parseDuration } from '../runtime/index.ts';
import { DockerError, DockerErrorCode } from './errors.ts';

const NS_PER_S = 1_000_000_000n;

/**
 * Parse a Docker RFC3339Nano timestamp (`2026-11-25T09:11:56.31926Z`; Go trims trailing zeros) into
 * nanoseconds since the epoch, exactly: a float would lose the last digits and break deduplication.
 * Returns undefined when the text is not a timestamp.
 */
export function parseTimestampNs(text: string): bigint | undefined {
  // Fast path for the daemon's own form (UTC, `Z`): lines of the same second share the date part, so the
  // Date.parse of it is cached.
  if (
    text.length >= 20 &&
    text.length <= 30 &&
    text.charCodeAt(text.length - 1) === 0x5a &&
    text[10] === 'T'
  ) {
    const head = text.slice(0, 19);
    let base = head === cachedHead ? cachedBase : undefined;
    if (base === undefined) {
      const ms = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$/.test(head) ? Date.parse(`${head}Z`) : Number.NaN;
      if (!Number.isNaN(ms)) {
        base = BigInt(ms) * 1_000_000n;
        cachedHead = head;
        cachedBase = base;
      }
    }
    if (base !== undefined) {
      if (text.length === 20) return base;
      const frac = text.slice(20, -1);
      if (text[19] === '.' && frac.length <= 9 && /^\d+$/.test(frac))
        return base + BigInt(frac.padEnd(9, '0'));
      return undefined;
    }
  }
  const m = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/.exec(text);
  if (!m) return undefined;
  const ms = Date.parse(`${m[1]}${m[3]}`);
  if (Number.isNaN(ms)) return undefined;
  const frac = (m[2] ?? '').padEnd(9, '0');
  return BigInt(ms) * 1_000_000n + BigInt(frac);
}

let cachedHead = '';
let cachedBase: bigint | undefined;

/** Format nanoseconds since the epoch as the API's `since`/`until` value: `seconds.nanoseconds`. */
export function formatDockerTime(ns: bigint): string {
  const s = ns / NS_PER_S;
  const frac = ns % NS_PER_S;
  return `${s}.${frac.toString().padStart(9, '0')}`;
}

/** Format nanoseconds since the epoch as RFC3339Nano (UTC, trailing zeros kept for fixed width). */
export function formatRfc3339Nano(ns: bigint): string {
  const ms = Number(ns / 1_000_000n);
  const iso = new Date(ms).toISOString().slice(0, 19);
  return `${iso}.${(ns % NS_PER_S).toString().padStart(9, '0')}Z`;
}

/**
 * Parse a Go-style duration (`10m`, `1h30m`, `500ms`, `5s`) into milliseconds: the runtime's
 * `parseDuration`, raising `CAP_ERR_DOCKER_BAD_REQUEST` instead of returning undefined (a bad `since` or
 * `--grace` is the caller's request that is wrong).
 */
export function parseDurationMs(text: string): number {
  const ms = parseDuration(text);
  if (ms === undefined) {
    throw new DockerError(
      DockerErrorCode.badRequest,
      `bad duration ${JSON.stringify(text)} (use 500ms, 10s, 5m, 2h)`,
    );
  }
  return ms;
}

/**
 * A point in time for `since`/`until`, as nanoseconds: a Date, Unix seconds (number), a duration
 * relative to now (`'10m'`), an RFC3339 timestamp, or a Unix `seconds[.fraction]` string.
 */
export function toNs(value: Date | number | string, now = Date.now()): bigint {
  if (value instanceof Date) return BigInt(value.getTime()) * 1_000_000n;
  if (typeof value === 'number') return BigInt(Math.round(value * 1e6)) * 1000n;
  const exact = parseTimestampNs(value);
  if (exact !== undefined) return exact;
  const unix = /^(\d+)(?:\.(\d{1,9}))?$/.exec(value);
  if (unix) return BigInt(unix[1]!) * NS_PER_S + BigInt((unix[2] ?? '').padEnd(9, '0'));
  const ms = Date.parse(value);
  if (!Number.isNaN(ms) && /\d{4}-\d{2}-\d{2}/.test(value)) return BigInt(ms) * 1_000_000n;
  return BigInt(Math.round(now - parseDurationMs(value))) * 1_000_000n;
}
