// runtime/stream: resumable streams and the small pieces they are made of (usable alone).
export { Backoff, type BackoffOptions, backoffDelay, type Jitter } from './backoff.ts';
export { StreamError, StreamErrorCode } from './errors.ts';
export { MergeSet, mergeAsync } from './merge.ts';
export { DEFAULT_MAX_NDJSON_BYTES, type NdjsonOptions, ndjson } from './ndjson.ts';
export {
  type Connection,
  type ConnectionEnd,
  type ResumableOptions,
  resumable,
  type StreamNotice,
  unbatch,
} from './resumable.ts';
export { OverlapDedupe, type OverlapDedupeOptions, type ResumeTracker, resumeFromLast } from './resume.ts';
export { type RetryInfo, type RetryOptions, retry } from './retry.ts';
