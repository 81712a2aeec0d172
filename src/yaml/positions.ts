import { type Document, isScalar } from 'yaml';

/** Line and column (both 1-based) of offsets in one text; line starts are computed once, on first use. */
export class LineIndex {
  readonly #text: string;
  #starts: number[] | undefined;

  constructor(text: string) {
    this.#text = text;
  }

  /** The 1-based line and column of `offset` (columns count UTF-16 code units, as editors mostly do). */
  position(offset: number): { line: number; column: number } {
    if (this.#starts === undefined) {
      const starts = [0];
      for (let i = this.#text.indexOf('\n'); i >= 0; i = this.#text.indexOf('\n', i + 1)) starts.push(i + 1);
      this.#starts = starts;
    }
    const starts = this.#starts;
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid]! <= offset) lo = mid;
      else hi = mid - 1;
    }
    return { line: lo + 1, column: offset - starts[lo]! + 1 };
  }
}

/** "duplicate key "name"": yaml.v3's wording, with the key itself. */
export function duplicateKeyMessage(text: string, offset: number): string {
  const rest = text.slice(offset, offset + 200);
  const key = /^("(?:[^"\\]|\\.)*"|'(?:[^']|'')*'|[^:\r\n]*?)\s*:/.exec(rest)?.[1]?.trim();
  return key === undefined
    ? 'duplicate key'
    : `duplicate key ${key.startsWith('"') || key.startsWith("'") ? key : JSON.stringify(key)}`;
}

/** How the file's first block list under a key places its dashes. */
export function sequenceStyle(text: string): 'indented' | 'compact' {
  const m = /^( *)[^\s#-][^\r\n]*:[ \t]*(?:#[^\r\n]*)?\r?\n( *)- /m.exec(text);
  return m !== null && m[1]!.length === m[2]!.length ? 'compact' : 'indented';
}

/** A document with nothing in it (`---` followed by comments or nothing), which kubectl skips. */
export function isEmptyDocument(doc: Document): boolean {
  const c = doc.contents;
  return c === null || (isScalar(c) && c.value === null && c.range != null && c.range[0] === c.range[1]);
}
