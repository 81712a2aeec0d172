import { CapstanError } from '../errors.ts';

/** Codes of the service module (`createService`). */
export const ServiceErrorCode = {
  /** `createService` got unusable options (no name...). */
  invalid: 'CAP_ERR_RUNTIME_SERVICE_INVALID',
  /** The client went away before its response finished: the reason a request's `signal` carries. */
  clientGone: 'CAP_ERR_RUNTIME_SERVICE_CLIENT_GONE',
} as const;
/** One of {@link ServiceErrorCode}'s values. */
export type ServiceErrorCode = (typeof ServiceErrorCode)[keyof typeof ServiceErrorCode];

/** An error of a service made by `createService`. */
export class ServiceError extends CapstanError {
  declare readonly code: ServiceErrorCode;

  constructor(code: ServiceErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}
