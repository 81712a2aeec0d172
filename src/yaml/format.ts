// `capstan yaml fmt`: one indentation throughout, comments kept. This is the one place the file is
// re-serialised (the `yaml` package's Document API), so it checks its own output: the data must be equal
// and every comment still there, or nothing is written.
import { isDeepStrictEqual } from 'node:util';
import { Lexer, parseAllDocuments } from 'yaml';
import { editYaml } from './edit.ts';
import { YamlError, YamlErrorCode } from './errors.ts';
import { sequenceStyle } from './positions.ts';

/** Options of {@link formatYaml}. */
export interface FormatYamlOptions {
  /** The file's name in error messages (default `<input>`). */
  readonly file?: string;
  /** Spaces per level (default 2). */
  readonly indent?: number;
  /**
   * Where a block list's dashes go: `indented` under their key (`key:\n  - a`), `compact` at the key's
   * column (`key:\n- a`, as kubectl writes). Default: whichever the file uses first, else `indented`.
   */
  readonly sequences?: 'indented' | 'compact';
}

/** Every comment's text, in order (a Lexer token starting with `#` is a comment). */
function comments(text: string): string[] {
  return [...new Lexer().lex(text)].filter((t) => t.startsWith('#')).map((t) => t.trimEnd());
}

/**
 * `text` with every level indented by `indent` spaces and block lists placed one way, comments and key
 * order kept, line endings as the file had them. Throws {@link YamlError}: `CAP_ERR_YAML_SYNTAX` when the
 * text is not valid YAML, `CAP_ERR_YAML_FORMAT` when the output would change the data or lose a comment.
 */
export function formatYaml(text: string, options: FormatYamlOptions = {}): string {
  const file = options.file ?? '<input>';
  const editor = editYaml(text, { file }); // throws with every syntax problem located
  const compact = (options.sequences ?? sequenceStyle(text)) === 'compact';
  const docs = parseAllDocuments(text.replaceAll('\r\n', '\n'), { uniqueKeys: true, merge: true });
  let out = docs
    .map((d) => d.toString({ indent: options.indent ?? 2, indentSeq: !compact, lineWidth: 0 }))
    .join('');
  if (text.includes('\r\n')) out = out.replaceAll('\n', '\r\n');
  const reread = editYaml(out, { file });
  if (!isDeepStrictEqual(reread.values(), editor.values())) {
    throw new YamlError(YamlErrorCode.format, `${file}: formatting would change the data; left as is`);
  }
  const before = comments(text);
  const after = comments(out);
  const lost = before.filter((c) => {
    const i = after.indexOf(c);
    if (i < 0) return true;
    after.splice(i, 1);
    return false;
  });
  if (lost.length > 0) {
    throw new YamlError(
      YamlErrorCode.format,
      `${file}: formatting would drop ${lost.length} comment${lost.length === 1 ? '' : 's'} (${lost.slice(0, 3).join(' | ')}); left as is`,
    );
  }
  return out;
}
