import { DockerError, DockerErrorCode } from './errors.ts';

/**
 * Split a byte stream of JSON objects into parsed values. The daemon sends `/events`, pull and import
 * progress as objects separated by newlines, but a chunk may hold several objects or part of one, and
 * some daemons omit the newline between objects: both are handled. A trailing object without a newline
 * is parsed at the end; a truncated one raises `CAP_ERR_DOCKER_JSON`.
 */
export async function* ndjson<T = unknown>(source: AsyncIterable<Uint8Array>): AsyncGenerator<T> {
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
      for (const value of parseLine<T>(line)) yield value;
      start = nl + 1;
      nl = pending.indexOf('\n', start);
    }
    pending = start === 0 ? pending : pending.slice(start);
  }
  pending += decoder.decode();
  for (const value of parseLine<T>(pending)) yield value;
}

/** Parse one line, which may hold zero, one or several concatenated JSON values (`{..}{..}`). */
function parseLine<T>(line: string): T[] {
  const text = line.trim();
  if (text === '') return [];
  try {
    return [JSON.parse(text) as T];
  } catch (err) {
    const parts = splitConcatenated(text);
    if (parts.length > 1) return parts.map((p) => parseOne<T>(p));
    throw new DockerError(DockerErrorCode.json, `bad JSON object in stream: ${text.slice(0, 200)}`, {
      cause: err,
    });
  }
}

function parseOne<T>(text: string): T {
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    throw new DockerError(DockerErrorCode.json, `bad JSON object in stream: ${text.slice(0, 200)}`, {
      cause: err,
    });
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

/** Shape of an in-band error object in a 200 stream (pull, import, push, build). */
export interface StreamErrorObject {
  error?: string;
  errorDetail?: { code?: number; message?: string };
}

/** Throw `CAP_ERR_DOCKER_STREAM` if `value` is an `{error, errorDetail}` object. */
export function throwIfStreamError(value: unknown, what: string): void {
  if (value === null || typeof value !== 'object') return;
  const v = value as StreamErrorObject;
  if (v.error === undefined && v.errorDetail === undefined) return;
  const text = v.errorDetail?.message ?? v.error ?? 'unknown error';
  throw new DockerError(DockerErrorCode.stream, `${what} failed: ${text}`, {
    daemonMessage: text,
    status: v.errorDetail?.code ?? 0,
  });
}
