/**
 * The one error base class for Capstan. Every area keeps its own `errors.ts` with subclasses whose
 * `code` follows `CAP_ERR_<AREA>_<WHAT>`, so callers and tests branch on `code`, never on messages.
 */
export class CapstanError extends Error {
  /** Stable, machine-readable identifier such as `CAP_ERR_RUNTIME_CONFIG_INVALID`. */
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}
