import { CapstanError } from '../errors.ts';

/** Codes of the config module. */
export const ConfigErrorCode = {
  /** The environment does not satisfy a definition: every problem is listed in `issues`. */
  invalid: 'CAP_ERR_RUNTIME_CONFIG_INVALID',
  /** A definition itself is wrong (two fields on one variable, a default that does not parse...). */
  definition: 'CAP_ERR_RUNTIME_CONFIG_DEFINITION',
} as const;
/** One of {@link ConfigErrorCode}'s values. */
export type ConfigErrorCode = (typeof ConfigErrorCode)[keyof typeof ConfigErrorCode];

/** One problem with one environment variable, safe to print: secret values never appear in it. */
export interface ConfigIssue {
  /** The environment variable, e.g. `EXPORTER_LISTEN_PORT`. */
  env: string;
  /** The field of the definition it feeds, e.g. `listenPort`. */
  field: string;
  /** `missing`: required and unset (or empty); `invalid`: set to something unusable. */
  kind: 'missing' | 'invalid';
  /** What the variable should hold, e.g. `a port number (integer 1..65535)`. */
  expected: string;
  /** What was found: `unset`, the quoted value, or `[REDACTED]` for secrets (URL passwords masked). */
  found: string;
  /** One line combining the above: `EXPORTER_LISTEN_PORT: expected ..., found "abc"`. */
  message: string;
}

/**
 * Thrown by `loadConfig` (code `invalid`) with every problem found at once, so one deploy fixes them
 * all: `new ConfigError(issues)` builds the message from them. The convention's
 * `(code, message, options)` form serves {@link ConfigDefinitionError}.
 */
export class ConfigError extends CapstanError {
  declare readonly code: ConfigErrorCode;
  /** Every problem, in definition order; empty for a {@link ConfigDefinitionError}. */
  readonly issues: readonly ConfigIssue[];

  constructor(issues: readonly ConfigIssue[], options?: { cause?: unknown });
  constructor(code: ConfigErrorCode, message: string, options?: { cause?: unknown });
  constructor(
    first: readonly ConfigIssue[] | ConfigErrorCode,
    second?: string | { cause?: unknown },
    third?: { cause?: unknown },
  ) {
    if (typeof first === 'string') {
      super(first, second as string, third);
      this.issues = [];
      return;
    }
    const head =
      first.length === 1
        ? 'invalid configuration: 1 problem'
        : `invalid configuration: ${first.length} problems`;
    super(
      ConfigErrorCode.invalid,
      `${head}\n${first.map((i) => `  - ${i.message}`).join('\n')}`,
      second as { cause?: unknown } | undefined,
    );
    this.issues = first;
  }
}

/**
 * Thrown while *defining* a configuration (two fields mapped to one variable, a default that does not
 * parse, a malformed variable name): a programming error, raised at import time rather than at deploy.
 * It is a {@link ConfigError} with code `definition` and no issues (one error family per module); the
 * subclass stays so `instanceof ConfigDefinitionError` keeps working.
 */
export class ConfigDefinitionError extends ConfigError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ConfigErrorCode.definition, message, options);
  }
}
