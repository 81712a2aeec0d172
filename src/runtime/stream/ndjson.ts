import { StreamError, StreamErrorCode } from './errors.ts';

/** Options of {@link ndjson}. */
export interface NdjsonOptions {
  /**
   * The error for text that does not parse (`text` is its first 200 characters), so an area raises its own
   * class. Default: `CAP_ERR_RUNTIME_STREAM_JSON`.
   */
  badJson?: (text: string, cause: unknown) => Error;
  /**
   * Most bytes one value may span (default {@link DEFAULT_MAX_NDJSON_BYTES}, 8 MiB). A longer value (a
   * stream that never ends its object) raises `CAP_ERR_RUNTIME_STREAM_TOO_LARGE` instead of growing memory
   * without limit; values glued without newlines count one by one.
   */
  maxValueBytes?: number;
}

/** Default of {@link NdjsonOptions.maxValueBytes}: 8 MiB, well above etcd's 1.5 MiB object limit. */
export const DEFAULT_MAX_NDJSON_BYTES = 8 * 1024 * 1024;

function defaultBadJson(text: string, cause: unknown): Error {
  return new StreamError(StreamErrorCode.json, `bad JSON object in stream: ${text}`, { cause });
}

/**
 * Split a byte stream of JSON values into parsed values. Values come separated by newlines, but a chunk may
 * hold several values or part of one, and some servers (dockerd) omit the newline between objects: both are
 * handled. A trailing value without a newline is parsed at the end; a truncated one raises (see `badJson`).
 */
export async function* ndjson<T = unknown>(
  source: AsyncIterable<Uint8Array>,
  options: NdjsonOptions = {},
): AsyncGenerator<T> {
  const badJson = options.badJson ?? defaultBadJson;
  const max = options.maxValueBytes ?? DEFAULT_MAX_NDJSON_BYTES;
  if (!Number.isSafeInteger(max) || max < 1) {
    throw new StreamError(StreamErrorCode.invalid, `maxValueBytes must be a positive integer, got ${max}`);
  }
  const decoder = new TextDecoder();
  let pending = '';
  /** Bytes received since the last newline: what `pending` holds, counted without re-encoding it. */
  let pendingBytes = 0;
  for await (const chunk of source) {
    const lastNl = chunk.lastIndexOf(0x0a);
    pendingBytes = lastNl === -1 ? pendingBytes + chunk.byteLength : chunk.byteLength - lastNl - 1;
    // Only the new text can hold a newline: a long object arriving in many chunks is scanned once.
    const scanFrom = pending.length;
    pending += decoder.decode(chunk, { stream: true });
    let start = 0;
    let nl = pending.indexOf('\n', scanFrom);
    while (nl !== -1) {
      const line = pending.slice(start, nl);
      for (const value of parseLine<T>(line, badJson)) yield value;
      start = nl + 1;
      nl = pending.indexOf('\n', start);
    }
    pending = start === 0 ? pending : pending.slice(start);
    if (pendingBytes > max) {
      // Values glued without a newline are fine one by one: parse the complete ones, keep the last.
      const { values, rest } = completeValues(pending);
      for (const text of values) yield parseOne<T>(text, badJson);
      pending = rest;
      pendingBytes = Buffer.byteLength(rest);
      if (pendingBytes > max) {
        throw new StreamError(
          StreamErrorCode.tooLarge,
          `a value in the stream exceeds maxValueBytes (${max}) and has not ended: ${rest.slice(0, 80)}`,
        );
      }
    }
  }
  pending += decoder.decode();
  for (const value of parseLine<T>(pending, badJson)) yield value;
}

/** Parse one line, which may hold zero, one or several concatenated JSON values (`{..}{..}`). */
function parseLine<T>(line: string, badJson: NonNullable<NdjsonOptions['badJson']>): T[] {
  const text = line.trim();
  if (text === '') return [];
  try {
    return [JSON.parse(text) as T];
  } catch (err) {
    const parts = splitConcatenated(text);
    if (parts.length > 1) return parts.map((p) => parseOne<T>(p, badJson));
    throw badJson(text.slice(0, 200), err);
  }
}

function parseOne<T>(text: string, badJson: NonNullable<NdjsonOptions['badJson']>): T {
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    throw badJson(text.slice(0, 200), err);
  }
}

/** The complete top-level values at the start of `text` (`{...}{...}{...`) and the rest, not ended yet. */
function completeValues(text: string): { values: string[]; rest: string } {
  const values: string[] = [];
  let depth = 0;
  let inString = false;
  let escaped = false;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (escaped) escaped = false;
      else if (c === 0x5c) escaped = true;
      else if (c === 0x22) inString = false;
      continue;
    }
    if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) depth++;
    else if ((c === 0x7d || c === 0x5d) && --depth === 0) {
      const value = text.slice(start, i + 1).trim();
      if (value !== '') values.push(value);
      start = i + 1;
    }
  }
  return { values, rest: text.slice(start) };
}

/** Split `{...}{...}` at top-level value boundaries, honouring strings and escapes; an unended tail is kept. */
function splitConcatenated(text: string): string[] {
  const { values, rest } = completeValues(text);
  const tail = rest.trim();
  return tail === '' ? values : [...values, tail];
}
