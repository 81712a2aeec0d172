import { CapstanError } from '../errors.ts';

/** Codes of the metrics module; tests and callers branch on these. */
export const MetricsErrorCode = {
  /** A bad metric or collector name, label set, sample, bucket list or registry option. */
  invalid: 'CAP_ERR_RUNTIME_METRICS_INVALID',
  /** A metric or collector with that name (or a clashing series name) is already registered. */
  duplicate: 'CAP_ERR_RUNTIME_METRICS_DUPLICATE',
  /** A collector's `collect` threw or rejected. */
  collect: 'CAP_ERR_RUNTIME_METRICS_COLLECT',
  /** A collector's `collect` did not settle within its timeout. */
  collectTimeout: 'CAP_ERR_RUNTIME_METRICS_COLLECT_TIMEOUT',
  /** The registry or collector was closed. */
  closed: 'CAP_ERR_RUNTIME_METRICS_CLOSED',
  /** A wait for a collection was aborted by the caller's signal. */
  aborted: 'CAP_ERR_RUNTIME_METRICS_ABORTED',
} as const;
/** One of {@link MetricsErrorCode}'s values. */
export type MetricsErrorCode = (typeof MetricsErrorCode)[keyof typeof MetricsErrorCode];

/** Any failure of the metrics module: bad names or samples, a failed collector, a closed registry. */
export class MetricsError extends CapstanError {
  declare readonly code: MetricsErrorCode;

  constructor(code: MetricsErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}
