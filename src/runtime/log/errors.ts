import { CapstanError } from '../errors.ts';

/** A logger was asked for something it cannot do (unknown level or format, unusable destination). */
export class LogError extends CapstanError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('CAP_ERR_RUNTIME_LOG_OPTIONS', message, options);
  }
}
