// JSON Patch (RFC 6902) from the difference of two JSON documents, and the apply that checks it. The diff
// emits add, remove and replace only, with JSON Pointers (RFC 6901) escaped; arrays keep their common head
// and tail, so appending a sidecar is one `add`, not a rewrite of every container after it.
import { WebhookError, WebhookErrorCode } from './errors.ts';

/** A JSON value as `JSON.parse` returns it. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** One operation of a JSON Patch, of the kinds {@link diffJsonPatch} emits. */
export type JsonPatchOperation =
  | { op: 'add'; path: string; value: JsonValue }
  | { op: 'remove'; path: string }
  | { op: 'replace'; path: string; value: JsonValue };

/** A pointer token: `~` as `~0`, `/` as `~1` (in this order, RFC 6901 §3). */
export function escapePointerToken(token: string): string {
  return token.replaceAll('~', '~0').replaceAll('/', '~1');
}

function unescapePointerToken(token: string): string {
  return token.replaceAll('~1', '/').replaceAll('~0', '~');
}

function isObject(value: unknown): value is { [key: string]: JsonValue } {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Deep equality of two JSON values (key order ignored). */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!jsonEqual(a[i], b[i])) return false;
    return true;
  }
  if (isObject(a)) {
    if (!isObject(b)) return false;
    const keys = Object.keys(a);
    if (keys.length !== Object.keys(b).length) return false;
    for (const key of keys) if (!Object.hasOwn(b, key) || !jsonEqual(a[key], b[key])) return false;
    return true;
  }
  return false;
}

/**
 * A value as JSON would carry it: `undefined` keys dropped, `toJSON` applied (dates become strings), NaN
 * and infinities `null`. A handler may leave such values in the object it changes; the patch must describe
 * what the apiserver will see.
 */
export function toJsonValue(value: unknown): JsonValue | undefined {
  const text = JSON.stringify(value);
  return text === undefined ? undefined : (JSON.parse(text) as JsonValue);
}

function diffValue(before: JsonValue, after: JsonValue, path: string, ops: JsonPatchOperation[]): void {
  if (jsonEqual(before, after)) return;
  if (isObject(before) && isObject(after)) {
    for (const key of Object.keys(before)) {
      if (!Object.hasOwn(after, key)) ops.push({ op: 'remove', path: `${path}/${escapePointerToken(key)}` });
    }
    for (const key of Object.keys(after)) {
      const child = `${path}/${escapePointerToken(key)}`;
      if (!Object.hasOwn(before, key)) ops.push({ op: 'add', path: child, value: after[key]! });
      else diffValue(before[key]!, after[key]!, child, ops);
    }
    return;
  }
  if (Array.isArray(before) && Array.isArray(after)) {
    diffArray(before, after, path, ops);
    return;
  }
  ops.push({ op: 'replace', path, value: after });
}

function diffArray(before: JsonValue[], after: JsonValue[], path: string, ops: JsonPatchOperation[]): void {
  let head = 0;
  while (head < before.length && head < after.length && jsonEqual(before[head], after[head])) head++;
  let tail = 0;
  while (
    tail < before.length - head &&
    tail < after.length - head &&
    jsonEqual(before[before.length - 1 - tail], after[after.length - 1 - tail])
  ) {
    tail++;
  }
  const oldMiddle = before.length - head - tail;
  const newMiddle = after.length - head - tail;
  const paired = Math.min(oldMiddle, newMiddle);
  // Elements in the same place change in place (a container's field, not the whole container).
  for (let i = head; i < head + paired; i++) diffValue(before[i]!, after[i]!, `${path}/${i}`, ops);
  // Extra old elements go from the last, so the indices of the ones before stay valid.
  for (let i = head + oldMiddle - 1; i >= head + paired; i--)
    ops.push({ op: 'remove', path: `${path}/${i}` });
  // Extra new elements are inserted in order before the common tail.
  for (let i = head + paired; i < head + newMiddle; i++)
    ops.push({ op: 'add', path: `${path}/${i}`, value: after[i]! });
}

/**
 * The JSON Patch turning `before` into `after` (both taken as JSON: see {@link toJsonValue}). Empty when
 * they are equal. A different root type is one `replace` of the whole document (path `""`).
 */
export function diffJsonPatch(before: unknown, after: unknown): JsonPatchOperation[] {
  const a = toJsonValue(before) ?? null;
  const b = toJsonValue(after) ?? null;
  const ops: JsonPatchOperation[] = [];
  diffValue(a, b, '', ops);
  return ops;
}

function patchError(message: string): WebhookError {
  return new WebhookError(WebhookErrorCode.usage, `cannot apply JSON Patch: ${message}`);
}

function parsePointer(path: string): string[] {
  if (path === '') return [];
  if (!path.startsWith('/')) throw patchError(`pointer ${JSON.stringify(path)} does not start with /`);
  return path.slice(1).split('/').map(unescapePointerToken);
}

function arrayIndex(token: string, length: number, forAdd: boolean): number {
  if (forAdd && token === '-') return length;
  if (!/^(0|[1-9][0-9]*)$/.test(token)) throw patchError(`${JSON.stringify(token)} is not an array index`);
  const index = Number(token);
  if (index > length || (!forAdd && index === length)) throw patchError(`index ${index} is out of bounds`);
  return index;
}

/**
 * Apply a JSON Patch of add, remove and replace operations to a copy of `document` (what the apiserver does
 * with a mutating webhook's answer). Throws a {@link WebhookError} when an operation does not apply.
 */
export function applyJsonPatch(document: unknown, patch: readonly JsonPatchOperation[]): JsonValue {
  let root = toJsonValue(document) ?? null;
  for (const operation of patch) {
    const tokens = parsePointer(operation.path);
    if (tokens.length === 0) {
      if (operation.op === 'remove') throw patchError('cannot remove the whole document');
      root = structuredClone(operation.value);
      continue;
    }
    let parent: JsonValue = root;
    for (const token of tokens.slice(0, -1)) {
      if (Array.isArray(parent)) parent = parent[arrayIndex(token, parent.length, false)]!;
      else if (isObject(parent) && Object.hasOwn(parent, token)) parent = parent[token]!;
      else throw patchError(`path ${operation.path} does not exist`);
    }
    const last = tokens.at(-1)!;
    if (Array.isArray(parent)) {
      const index = arrayIndex(last, parent.length, operation.op === 'add');
      if (operation.op === 'add') parent.splice(index, 0, structuredClone(operation.value));
      else if (operation.op === 'remove') parent.splice(index, 1);
      else parent[index] = structuredClone(operation.value);
    } else if (isObject(parent)) {
      if (operation.op !== 'add' && !Object.hasOwn(parent, last)) {
        throw patchError(`path ${operation.path} does not exist`);
      }
      if (operation.op === 'remove') delete parent[last];
      // defineProperty, so a key named __proto__ is a key and not the object's prototype.
      else
        Object.defineProperty(parent, last, {
          value: structuredClone(operation.value),
          enumerable: true,
          writable: true,
          configurable: true,
        });
    } else {
      throw patchError(`parent of ${operation.path} is not an object or array`);
    }
  }
  return root;
}
