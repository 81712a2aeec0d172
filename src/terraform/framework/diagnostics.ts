// Diagnostics: what a provider tells Terraform went wrong (or may), each with an optional attribute path
// so Terraform points at the line of configuration.
import type { ValuePath } from '../protocol/cty.ts';

/** One diagnostic. */
export interface Diagnostic {
  readonly severity: 'error' | 'warning';
  readonly summary: string;
  readonly detail: string;
  /** Attribute path (`['rule', 0, 'port']`); absent for the resource as a whole. */
  readonly path?: ValuePath;
}

/** Diagnostics collected while handling one call. */
export class Diagnostics {
  readonly items: Diagnostic[] = [];

  /** Add an error; the operation fails. */
  error(summary: string, detail = '', path?: ValuePath): void {
    this.items.push({ severity: 'error', summary, detail, ...(path ? { path } : {}) });
  }
  /** Add a warning; the operation goes on. */
  warn(summary: string, detail = '', path?: ValuePath): void {
    this.items.push({ severity: 'warning', summary, detail, ...(path ? { path } : {}) });
  }
  /** True when an error was added. */
  get hasErrors(): boolean {
    return this.items.some((d) => d.severity === 'error');
  }
}

/**
 * Thrown from a handler to fail with a diagnostic pointing at an attribute (any other error becomes an
 * error diagnostic without a path).
 */
export class DiagnosticError extends Error {
  readonly summary: string;
  readonly detail: string;
  readonly path: ValuePath | undefined;

  constructor(summary: string, detail = '', path?: ValuePath) {
    super(detail ? `${summary}: ${detail}` : summary);
    this.name = 'DiagnosticError';
    this.summary = summary;
    this.detail = detail;
    this.path = path;
  }
}

/** The tfplugin6 `AttributePath` of a path. */
export function attributePathMessage(path: ValuePath): { steps: Record<string, unknown>[] } {
  return {
    steps: path.map((step) =>
      typeof step === 'number' ? { element_key_int: step } : { attribute_name: step },
    ),
  };
}

/** The tfplugin6 `Diagnostic` messages of some diagnostics. */
export function diagnosticMessages(items: readonly Diagnostic[]): Record<string, unknown>[] {
  return items.map((d) => ({
    severity: d.severity === 'error' ? 'ERROR' : 'WARNING',
    summary: d.summary,
    detail: d.detail,
    ...(d.path && d.path.length > 0 ? { attribute: attributePathMessage(d.path) } : {}),
  }));
}
