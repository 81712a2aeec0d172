import { StreamError, StreamErrorCode } from './errors.ts';

/** Options of {@link ndjson}. */
export interface NdjsonOptions {
  /**
   * The error for text that does not parse (`text` is its first 200 characters), so an area raises its own
   * class. Default: `CAP_ERR_RUNTIME_STREAM_JSON`.
   */
  badJson?: (text: string, cause: unknown) => Error;
}

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
  const decoder = new TextDecoder();
  let pending = '';
  for await (const chunk of source) {
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

/** Split `{...}{...}` at top-level object boundaries, honouring strings and escapes. */
function splitConcatenated(text: string): string[] {
  const parts: string[] = [];
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
    else if (c === 0x7d || c === 0x5d) {
      depth--;
      if (depth === 0) {
        parts.push(text.slice(start, i + 1).trim());
        start = i + 1;
      }
    }
  }
  const rest = text.slice(start).trim();
  if (rest !== '') parts.push(rest);
  return parts;
}
