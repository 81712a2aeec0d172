import { CapstanError } from '../runtime/index.ts';

/** Codes of the docker area; tests and callers branch on these. */
export const DockerErrorCode = {
  /** 404: no such container, image, exec... */
  notFound: 'CAP_ERR_DOCKER_NOT_FOUND',
  /** 409: name in use, container running, ... */
  conflict: 'CAP_ERR_DOCKER_CONFLICT',
  /** 400: bad parameter. */
  badRequest: 'CAP_ERR_DOCKER_BAD_REQUEST',
  /** 500 and other statuses the daemon answers with. */
  api: 'CAP_ERR_DOCKER_API',
  /** The daemon could not be reached (socket missing, refused, reset before a response). */
  connect: 'CAP_ERR_DOCKER_CONNECT',
  /** An `{error, errorDetail}` object inside a 200 stream (pull, import, build). */
  stream: 'CAP_ERR_DOCKER_STREAM',
  /** A multiplexed stream ended in the middle of a frame, or carried an unknown stream type. */
  demux: 'CAP_ERR_DOCKER_DEMUX',
  /** A streamed JSON object could not be parsed. */
  json: 'CAP_ERR_DOCKER_JSON',
  /** DOCKER_HOST / TLS settings that cannot be used. */
  config: 'CAP_ERR_DOCKER_CONFIG',
  /** The daemon's TLS certificate failed verification (unknown CA, expired, wrong name): not retried. */
  tls: 'CAP_ERR_DOCKER_TLS',
} as const;
/** One of {@link DockerErrorCode}'s values. */
export type DockerErrorCode = (typeof DockerErrorCode)[keyof typeof DockerErrorCode];

/**
 * Error raised by the Docker client. `status` is the daemon's HTTP status when there was one, and
 * `daemonMessage` its own `message` text, so callers can branch on `code` and still show the daemon's words.
 */
export class DockerError extends CapstanError {
  declare readonly code: DockerErrorCode;
  /** HTTP status from the daemon (404, 409, 500...), or 0 when no response came (connection, stream). */
  readonly status: number;
  /** The daemon's `message` (or stream `error`) text, verbatim. */
  readonly daemonMessage: string;

  constructor(
    code: DockerErrorCode,
    message: string,
    options?: { cause?: unknown; status?: number; daemonMessage?: string },
  ) {
    super(code, message, options);
    this.status = options?.status ?? 0;
    this.daemonMessage = options?.daemonMessage ?? '';
  }
}

/** Map a daemon HTTP status to its {@link DockerErrorCode}. */
export function codeForStatus(status: number): DockerErrorCode {
  if (status === 404) return DockerErrorCode.notFound;
  if (status === 409) return DockerErrorCode.conflict;
  if (status === 400) return DockerErrorCode.badRequest;
  return DockerErrorCode.api;
}

/**
 * An error no retry can fix (bad request, unusable settings, a daemon certificate that does not verify):
 * the reconnecting streams give up on it instead of backing off.
 */
export function isPermanentError(err: unknown): boolean {
  return (
    err instanceof DockerError &&
    (err.code === DockerErrorCode.badRequest ||
      err.code === DockerErrorCode.config ||
      err.code === DockerErrorCode.tls)
  );
}
