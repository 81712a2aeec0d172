import { CapstanError } from '../errors.ts';

/** Codes of runtime/stream; one line of meaning each (docs/errors.md is generated from these comments). */
export const StreamErrorCode = {
  /** Options that cannot work (a negative delay, a cap of 2^31 ms or more, a factor below 1, a negative overlap). */
  invalid: 'CAP_ERR_RUNTIME_STREAM_INVALID',
  /** A value in an NDJSON stream could not be parsed (also a truncated last object). */
  json: 'CAP_ERR_RUNTIME_STREAM_JSON',
  /** A value in an NDJSON stream grew past `maxValueBytes` without ending (bounded memory on a hostile stream). */
  tooLarge: 'CAP_ERR_RUNTIME_STREAM_TOO_LARGE',
} as const;
/** One of {@link StreamErrorCode}'s values. */
export type StreamErrorCode = (typeof StreamErrorCode)[keyof typeof StreamErrorCode];

/** Raised by runtime/stream: bad options, or a byte stream that does not parse. */
export class StreamError extends CapstanError {
  declare readonly code: StreamErrorCode;
  constructor(code: StreamErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}
