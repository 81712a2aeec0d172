import { CapstanError } from '../runtime/index.ts';

/** Codes of the scaling area; tests and callers branch on these. */
export const ScalingErrorCode = {
  /** A call or command that cannot work as asked: a malformed `kind/name`, a negative or fractional replica count. */
  usage: 'CAP_ERR_SCALING_USAGE',
  /** No resource served by the apiserver matches the kind asked for (not a kind, plural, short name or `plural.group`). */
  unknownKind: 'CAP_ERR_SCALING_UNKNOWN_KIND',
  /** The resource exists but has no `scale` subresource (a ConfigMap, a CRD without `subresources.scale`). */
  notScalable: 'CAP_ERR_SCALING_NOT_SCALABLE',
  /** No object of that kind and name in the namespace. */
  notFound: 'CAP_ERR_SCALING_NOT_FOUND',
  /** A precondition failed: the replicas were not the expected count, or the scale changed between read and write. */
  conflict: 'CAP_ERR_SCALING_CONFLICT',
  /** An autoscaler configuration that cannot work; `problems` lists every one at once. */
  config: 'CAP_ERR_SCALING_CONFIG',
  /** A metric source could not be read (down, refused, an answer without a usable number). */
  source: 'CAP_ERR_SCALING_SOURCE',
  /** The External Metrics APIService did not become Available in time (the message quotes its condition). */
  apiService: 'CAP_ERR_SCALING_API_SERVICE',
  /** A label selector that does not parse or breaks the label syntax (the message says where). */
  selector: 'CAP_ERR_SCALING_SELECTOR',
} as const;
/** One of {@link ScalingErrorCode}'s values. */
export type ScalingErrorCode = (typeof ScalingErrorCode)[keyof typeof ScalingErrorCode];

/** Error raised by the scaling area. `problems` lists each thing wrong when there are several (a configuration). */
export class ScalingError extends CapstanError {
  declare readonly code: ScalingErrorCode;
  /** Each thing wrong, when there are several; else empty. */
  readonly problems: readonly string[];

  constructor(
    code: ScalingErrorCode,
    message: string,
    options?: { cause?: unknown; problems?: readonly string[] },
  ) {
    super(code, message, options);
    this.problems = options?.problems ?? [];
  }
}
