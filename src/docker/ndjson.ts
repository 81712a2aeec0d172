import { ndjson as parseNdjson } from '../runtime/index.ts';
import { DockerError, DockerErrorCode } from './errors.ts';

/** Default largest object of the daemon's NDJSON streams: 1 MiB (events and progress objects are under 4 KiB). */
export const DEFAULT_MAX_DOCKER_JSON_BYTES = 1024 * 1024;

/**
 * The runtime's NDJSON parser (see `ndjson` in `capstan/runtime`) for the daemon's streams: `/events`, pull and
 * import progress. Text that does not parse, a truncated last object too, raises `CAP_ERR_DOCKER_JSON`; an
 * object longer than `maxValueBytes` (default {@link DEFAULT_MAX_DOCKER_JSON_BYTES}) raises
 * `CAP_ERR_RUNTIME_STREAM_TOO_LARGE` rather than being buffered without limit.
 */
export function ndjson<T = unknown>(
  source: AsyncIterable<Uint8Array>,
  options: { maxValueBytes?: number } = {},
): AsyncGenerator<T> {
  return parseNdjson<T>(source, {
    maxValueBytes: options.maxValueBytes ?? DEFAULT_MAX_DOCKER_JSON_BYTES,
    badJson: (text, cause) =>
      new DockerError(DockerErrorCode.json, `bad JSON object in stream: ${text}`, { cause }),
  });
}

/** Shape of an in-band error object in a 200 stream (pull, import, push, build). */
export interface StreamErrorObject {
  error?: string;
  errorDetail?: { code?: number; message?: string };
}

/** Throw `CAP_ERR_DOCKER_STREAM` if `value` is an `{error, errorDetail}` object. */
export function throwIfStreamError(value: unknown, what: string): void {
  if (value === null || typeof value !== 'object') return;
  const v = value as StreamErrorObject;
  if (v.error === undefined && v.errorDetail === undefined) return;
  const text = v.errorDetail?.message ?? v.error ?? 'unknown error';
  throw new DockerError(DockerErrorCode.stream, `${what} failed: ${text}`, {
    daemonMessage: text,
    status: v.errorDetail?.code ?? 0,
  });
}
