import { CapstanError } from '../runtime/index.ts';

/** Codes of the cloud area; tests and callers branch on these. */
export const CloudErrorCode = {
  /** A call that cannot work as asked: no bucket, a gc with no criterion, a bad duration or pattern. */
  invalid: 'CAP_ERR_CLOUD_INVALID',
  /** A cloud call (with its retries and credential look-up) ran past its deadline and was abandoned. */
  deadline: 'CAP_ERR_CLOUD_DEADLINE',
  /** The provider refused the credentials (unknown key, bad signature, expired token) or none were found. */
  auth: 'CAP_ERR_CLOUD_AUTH',
  /** The provider answered a call with an error other than an auth one (no such bucket, access denied, ...). */
  request: 'CAP_ERR_CLOUD_REQUEST',
  /** A gc run deleted only part of its plan: the message counts the keys the provider refused. */
  partialDelete: 'CAP_ERR_CLOUD_PARTIAL_DELETE',
} as const;
/** One of {@link CloudErrorCode}'s values. */
export type CloudErrorCode = (typeof CloudErrorCode)[keyof typeof CloudErrorCode];

/** Error raised by the cloud area. */
export class CloudError extends CapstanError {
  declare readonly code: CloudErrorCode;

  constructor(code: CloudErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}
