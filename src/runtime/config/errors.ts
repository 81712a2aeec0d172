import { CapstanError } from '../errors.ts';

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

/** Thrown by `loadConfig` with every problem found at once, so one deploy fixes them all. */
export class ConfigError extends CapstanError {
  /** Every problem, in definition order. */
  readonly issues: readonly ConfigIssue[];

  constructor(issues: readonly ConfigIssue[], options?: { cause?: unknown }) {
    const head =
      issues.length === 1
        ? 'invalid configuration: 1 problem'
        : `invalid configuration: ${issues.length} problems`;
    super('CAP_ERR_RUNTIME_CONFIG', `${head}\n${issues.map((i) => `  - ${i.message}`).join('\n')}`, options);
    this.issues = issues;
  }
}

/**
 * Thrown while *defining* a configuration (two fields mapped to one variable, a default that does not
 * parse, a malformed variable name): a programming error, raised at import time rather than at deploy.
 */
export class ConfigDefinitionError extends CapstanError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('CAP_ERR_RUNTIME_CONFIG_DEFINITION', message, options);
  }
}
