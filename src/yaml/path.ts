// Paths into a document: `spec.template.spec.containers[0].image`. A key holding dots or brackets is
// written in brackets and quotes (`metadata.annotations["example.com/team"]`) or with backslash escapes
// (`metadata.annotations.example\.com/team`).
import { YamlError, YamlErrorCode } from './errors.ts';

/** One step of a path: a map key (string) or a sequence index (number). */
export type PathSegment = string | number;

function pathError(path: string, at: number, why: string): YamlError {
  return new YamlError(YamlErrorCode.path, `bad path ${JSON.stringify(path)} at character ${at + 1}: ${why}`);
}

/**
 * Parse a dotted path into segments: `a.b[0]["c.d"]` is `['a', 'b', 0, 'c.d']`. A number in brackets is an
 * index; a key after a dot is always a string (`data.1` is the key "1"; on a sequence it is read as an
 * index). An empty path is the document root. Throws {@link YamlError} `CAP_ERR_YAML_PATH` on bad syntax.
 */
export function parsePath(path: string): PathSegment[] {
  const out: PathSegment[] = [];
  let i = 0;
  const n = path.length;
  if (n === 0) return out;
  let expectKey = true;
  while (i < n) {
    const c = path[i]!;
    if (c === '[') {
      const close = (q: string, from: number) => {
        let s = '';
        let j = from;
        while (j < n && path[j] !== q) {
          if (path[j] === '\\' && j + 1 < n) j++;
          s += path[j];
          j++;
        }
        if (j >= n) throw pathError(path, from - 1, `unterminated ${q} quote`);
        if (path[j + 1] !== ']') throw pathError(path, j + 1, 'expected ] after the quoted key');
        return { s, end: j + 2 };
      };
      if (path[i + 1] === '"' || path[i + 1] === "'") {
        const { s, end } = close(path[i + 1]!, i + 2);
        out.push(s);
        i = end;
      } else {
        const end = path.indexOf(']', i);
        if (end < 0) throw pathError(path, i, 'unterminated [');
        const inner = path.slice(i + 1, end);
        if (!/^\d+$/.test(inner))
          throw pathError(path, i, `index must be a number or a quoted key, got [${inner}]`);
        out.push(Number(inner));
        i = end + 1;
      }
      expectKey = false;
      continue;
    }
    if (c === '.') {
      if (expectKey) throw pathError(path, i, 'empty key');
      expectKey = true;
      i++;
      if (i >= n) throw pathError(path, i - 1, 'path ends with a dot');
      continue;
    }
    if (!expectKey) throw pathError(path, i, 'expected . or [ after ]');
    let key = '';
    while (i < n && path[i] !== '.' && path[i] !== '[') {
      if (path[i] === '\\') {
        if (i + 1 >= n) throw pathError(path, i, 'path ends with a backslash');
        i++;
      }
      key += path[i];
      i++;
    }
    out.push(key);
    expectKey = false;
  }
  return out;
}

const plainKey = /^[A-Za-z0-9_/$@-]+$/;

/** Format segments back into a path: the inverse of {@link parsePath}, quoting keys that need it. */
export function formatPath(segments: readonly PathSegment[]): string {
  let out = '';
  for (const s of segments) {
    if (typeof s === 'number') out += `[${s}]`;
    else if (plainKey.test(s)) out += out === '' ? s : `.${s}`;
    else out += `[${JSON.stringify(s)}]`;
  }
  return out;
}

/**
 * The value at `path` in a plain value (parsed YAML or JSON), or `undefined` when a step is missing.
 * `path` is a string ({@link parsePath}) or segments.
 */
export function getPath(value: unknown, path: string | readonly PathSegment[]): unknown {
  const segments = typeof path === 'string' ? parsePath(path) : path;
  let cur: unknown = value;
  for (const s of segments) {
    if (Array.isArray(cur)) {
      const index = typeof s === 'number' ? s : /^\d+$/.test(s) ? Number(s) : Number.NaN;
      if (!(index < cur.length)) return undefined;
      cur = cur[index];
    } else if (cur !== null && typeof cur === 'object') {
      const key = String(s);
      if (!Object.hasOwn(cur, key)) return undefined;
      cur = (cur as Record<string, unknown>)[key];
    } else {
      return undefined;
    }
  }
  return cur;
}
