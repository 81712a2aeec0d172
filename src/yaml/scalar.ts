// Writing one value as YAML source text in place of another: the quoting style of what it replaces is kept
// when it can carry the new value, so an edit looks like the file's author made it.
import { parseDocument, stringify } from 'yaml';
import { YamlError, YamlErrorCode } from './errors.ts';

/** The source style of a scalar being replaced (the `yaml` package's `Scalar.type`). */
export type ScalarStyle = 'PLAIN' | 'QUOTE_DOUBLE' | 'QUOTE_SINGLE' | 'BLOCK_LITERAL' | 'BLOCK_FOLDED';

/** Whether `s` can be written as a plain scalar and read back as the same string. */
function plainSafe(s: string, flow: boolean): boolean {
  if (s === '' || /[\r\n\t]/.test(s)) return false;
  if (flow && /[,[\]{}]/.test(s)) return false;
  // The package's own stringifier knows every case a plain scalar would read as something else
  // (`true`, `0`, `~`, `a: b`, `a #b`, leading indicators): it quotes those.
  return stringify(s, { lineWidth: 0 }) === `${s}\n`;
}

/**
 * A literal block scalar (`|`, `|-`, `|+`) holding `s`, its content lines indented by `indent` spaces, or
 * undefined when `s` cannot be one (a first line starting with a space would need an indentation indicator).
 */
function literalBlock(s: string, indent: number, eol: string): string | undefined {
  if (s.startsWith(' ') || s.startsWith('\t') || /[\r\u0000-\u0008\u000b-\u001f]/.test(s)) return undefined;
  const trailing = /\n*$/.exec(s)![0].length;
  const chomp = trailing === 0 ? '-' : trailing === 1 ? '' : '+';
  const body = trailing === 0 ? s : s.slice(0, -trailing);
  const pad = ' '.repeat(indent);
  const lines = body.split('\n').map((l) => (l === '' ? '' : pad + l));
  // Keep chomping writes the extra line breaks as empty lines.
  for (let i = 1; i < trailing; i++) lines.push('');
  return `|${chomp}${eol}${lines.join(eol)}`;
}

/** A multi-line string as a literal block (in block context), else plain or double-quoted. */
function blockOrQuoted(s: string, opts: { flow: boolean; indent: number; eol: string }): string {
  if (!opts.flow && s.includes('\n')) {
    const block = literalBlock(s, opts.indent, opts.eol);
    if (block !== undefined) return block;
  }
  return plainSafe(s, opts.flow) ? s : JSON.stringify(s);
}

/**
 * `value` (a scalar: string, number, boolean, null, bigint) as YAML source. `style` is the style of the
 * scalar it replaces, kept when possible: a double-quoted string stays double-quoted (JSON's escapes are
 * valid there, so JSON files stay JSON), a single-quoted one single-quoted, a plain one plain unless it
 * would read back as something else (`"0"`, `"true"`), a block scalar a literal block. `flow` is true
 * inside `[...]`/`{...}` (where `,[]{}` need quotes); `indent` is the indentation of a block scalar's lines.
 */
export function renderScalar(
  value: unknown,
  style: ScalarStyle | undefined,
  opts: { flow: boolean; indent: number; eol: string },
): string {
  if (value === null) return 'null';
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'bigint') return String(value);
  if (typeof value === 'number') {
    if (Number.isNaN(value)) return '.nan';
    if (!Number.isFinite(value)) return value > 0 ? '.inf' : '-.inf';
    return Object.is(value, -0) ? '-0' : String(value);
  }
  if (typeof value !== 'string') {
    throw new YamlError(YamlErrorCode.edit, `not a scalar: ${typeof value}`);
  }
  const s = value;
  switch (style) {
    case 'QUOTE_SINGLE':
      if (!/[\r\n\u0000-\u001f]/.test(s)) return `'${s.replaceAll("'", "''")}'`;
      return JSON.stringify(s);
    case 'QUOTE_DOUBLE':
      return JSON.stringify(s);
    case 'BLOCK_FOLDED': {
      // One line of text stays a folded block (`>-` and the line); several become a literal block, which
      // keeps every line break without working out folding.
      const body = s.replace(/\n+$/, '');
      if (
        !opts.flow &&
        !body.includes('\n') &&
        body !== '' &&
        !/^[ \t]|[\r\u0000-\u0008\u000b-\u001f]/.test(body)
      ) {
        const trailing = s.length - body.length;
        const chomp = trailing === 0 ? '-' : trailing === 1 ? '' : '+';
        return `>${chomp}${opts.eol}${' '.repeat(opts.indent)}${body}${opts.eol.repeat(Math.max(0, trailing - 1))}`;
      }
      return blockOrQuoted(s, opts);
    }
    case 'BLOCK_LITERAL':
      return blockOrQuoted(s, opts);
    default:
      return plainSafe(s, opts.flow) ? s : JSON.stringify(s);
  }
}

/** A map key as YAML source: plain when safe, else double-quoted (`jsonStyle`: always double-quoted). */
export function renderKey(key: string, jsonStyle: boolean): string {
  if (!jsonStyle && plainSafe(key, true) && !key.includes(':')) return key;
  return JSON.stringify(key);
}

/**
 * Read a value the way `capstan yaml set` takes it: as YAML (`0` is the number 0, `true` a boolean, `null`
 * null, `"0"` the string "0", `[a, b]` a list, anything else a string). Throws {@link YamlError}
 * `CAP_ERR_YAML_SYNTAX` when the text is not valid YAML.
 */
export function parseScalar(text: string): unknown {
  const doc = parseDocument(text, { uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new YamlError(
      YamlErrorCode.syntax,
      `not a YAML value: ${JSON.stringify(text)}: ${doc.errors[0]!.message}`,
    );
  }
  return doc.toJS();
}
