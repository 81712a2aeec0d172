import { CapstanError } from '../runtime/index.ts';

/** Codes of the traffic area; tests and callers branch on these. */
export const TrafficErrorCode = {
  /** A call that cannot work as asked: a backend that is not an http(s) URL, a weight below 1, an unknown policy. */
  invalid: 'CAP_ERR_TRAFFIC_INVALID',
  /** A load balancer or mesh configuration (file, flags or library call) that cannot work; `problems` lists every one at once. */
  config: 'CAP_ERR_TRAFFIC_CONFIG',
  /** No backend could take the request: the set is empty, or every candidate was tried or ejected. */
  noBackend: 'CAP_ERR_TRAFFIC_NO_BACKEND',
  /** The backend could not be reached or broke the connection before a response (the client gets 502). */
  upstream: 'CAP_ERR_TRAFFIC_UPSTREAM',
  /** The backend did not answer in time (the client gets 504). */
  timeout: 'CAP_ERR_TRAFFIC_TIMEOUT',
  /** The load balancer was used after `close()`. */
  closed: 'CAP_ERR_TRAFFIC_CLOSED',
  /** A discovery source could not read its endpoints (unreachable, bad answer, bad file); the last good set stays. */
  discovery: 'CAP_ERR_TRAFFIC_DISCOVERY',
  /** The xDS control plane found neither its built Envoy descriptor set nor the @grpc/grpc-js-xds .proto files. */
  xdsProtos: 'CAP_ERR_TRAFFIC_XDS_PROTOS',
  /** An xDS client sent a request the control plane cannot serve (unknown type URL, no node); its stream ends with INVALID_ARGUMENT. */
  xdsRequest: 'CAP_ERR_TRAFFIC_XDS_REQUEST',
  /** An xDS client rejected (NACKed) a configuration; it keeps its previous one. Carries the client's error detail. */
  xdsNack: 'CAP_ERR_TRAFFIC_XDS_NACK',
} as const;
/** One of {@link TrafficErrorCode}'s values. */
export type TrafficErrorCode = (typeof TrafficErrorCode)[keyof typeof TrafficErrorCode];

/** Error raised by the traffic area. `problems` lists each thing wrong when there are several (a configuration). */
export class TrafficError extends CapstanError {
  declare readonly code: TrafficErrorCode;
  /** Each thing wrong, when there are several; else empty. */
  readonly problems: readonly string[];

  constructor(
    code: TrafficErrorCode,
    message: string,
    options?: { cause?: unknown; problems?: readonly string[] },
  ) {
    super(code, message, options);
    this.problems = options?.problems ?? [];
  }
}
