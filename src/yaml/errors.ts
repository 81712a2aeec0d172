import { CapstanError } from '../runtime/index.ts';

/** Codes of the yaml area; tests and callers branch on these. */
export const YamlErrorCode = {
  /** The text is not well-formed YAML (or has a duplicate key); `problems` lists every error with its line and column. */
  syntax: 'CAP_ERR_YAML_SYNTAX',
  /** Well-formed YAML that does not match the schema: unknown fields, wrong types, missing fields; `problems` lists each. */
  invalid: 'CAP_ERR_YAML_INVALID',
  /** A path that cannot be read: bad syntax (`a..b`, `x[`), or an index on a map. */
  path: 'CAP_ERR_YAML_PATH',
  /** The path names nothing in the document (get), or the document asked for does not exist. */
  notFound: 'CAP_ERR_YAML_NOT_FOUND',
  /** An edit that cannot be made in place: through an alias, a key under a scalar, a value that would not read back. */
  edit: 'CAP_ERR_YAML_EDIT',
  /** Formatting would change the data or drop a comment, so nothing is written. */
  format: 'CAP_ERR_YAML_FORMAT',
} as const;
/** One of {@link YamlErrorCode}'s values. */
export type YamlErrorCode = (typeof YamlErrorCode)[keyof typeof YamlErrorCode];

/** One thing wrong in a YAML file, where it is. */
export interface YamlProblem {
  /** The file as the caller named it (`<input>` when none was given). */
  readonly file: string;
  /** 1-based line and column of the offending key or value. */
  readonly line: number;
  readonly column: number;
  /** 0-based index of the document in a multi-document stream. */
  readonly document: number;
  /** The dotted path of the field (`spec.template.spec.containers[0].image`), '' for the document itself. */
  readonly path: string;
  /** What kind of problem: YAML syntax, a duplicate key, a field the schema does not know, or a schema check. */
  readonly kind: 'syntax' | 'duplicate-key' | 'unknown-field' | 'schema';
  /** The reason, without the location (`unknown field "replica" (did you mean "replicas"?)`). */
  readonly message: string;
}

/** `file:line:column: path: message`, as compilers print it. */
export function formatProblem(p: YamlProblem): string {
  return `${p.file}:${p.line}:${p.column}: ${p.path === '' ? '' : `${p.path}: `}${p.message}`;
}

/** Error raised by the yaml area; `problems` holds every problem found when there are several. */
export class YamlError extends CapstanError {
  declare readonly code: YamlErrorCode;
  /** Each problem, in file order (syntax and invalid errors); else empty. */
  readonly problems: readonly YamlProblem[];

  constructor(
    code: YamlErrorCode,
    message: string,
    options?: { cause?: unknown; problems?: readonly YamlProblem[] },
  ) {
    super(code, message, options);
    this.problems = options?.problems ?? [];
  }
}
