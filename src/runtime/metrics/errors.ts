import { CapstanError } from '../errors.ts';

/** Error codes raised by the metrics module; tests and callers branch on these. */
export type MetricsErrorCode =
  | 'CAP_ERR_METRICS_INVALID'
  | 'CAP_ERR_METRICS_DUPLICATE'
  | 'CAP_ERR_METRICS_COLLECT'
  | 'CAP_ERR_METRICS_COLLECT_TIMEOUT'
  | 'CAP_ERR_METRICS_CLOSED'
  | 'CAP_ERR_METRICS_ABORTED';

/** Any failure of the metrics module: bad names or samples, a failed collector, a closed registry. */
export class MetricsError extends CapstanError {
  declare readonly code: MetricsErrorCode;

  constructor(code: MetricsErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}
