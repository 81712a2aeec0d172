import type { HttpResponse } from '../runtime/index.ts';
import { KubeError, KubeErrorCode } from './errors.ts';
import { isStatus, type KubeStatus } from './objects.ts';

/** One raw apiserver request ({@link KubeClient.request}). */
export interface KubeRequest {
  /** Default `GET`. */
  method?: string;
  /** Absolute API path (`/api/v1/namespaces`); may carry a query string. */
  path: string;
  /** Query parameters; `undefined` values are skipped. */
  query?: Record<string, string | number | boolean | undefined>;
  /** A value sent as JSON (with `contentType`, default `application/json`). */
  json?: unknown;
  /** A raw body, instead of `json`. */
  body?: string | Buffer;
  contentType?: string;
  /** Default `application/json`. */
  accept?: string;
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** A long-lived answer (a watch): no time limits, no transparent retry. */
  stream?: boolean;
  /** A limit on the whole exchange, retries included (ms). Default: the transport's. */
  timeoutMs?: number;
  /** Safe to repeat after a broken connection (default by method: GET, PUT, DELETE yes; POST, PATCH no). */
  idempotent?: boolean;
}

/**
 * What a typed client needs of the API client: raw and JSON requests, the default field manager, and the
 * signal that ends watches when the client closes. {@link KubeClient} is the one implementation; the
 * interface keeps the typed clients from importing it back.
 */
export interface KubeApi {
  request(req: KubeRequest): Promise<HttpResponse>;
  json<T = unknown>(req: KubeRequest): Promise<T>;
  readonly fieldManager: string;
  readonly closedSignal: AbortSignal;
}

/** The error for a non-2xx answer: its code from the status, `reason` and message from the `Status` body. */
export function kubeErrorFromResponse(status: number, text: string, what: string): KubeError {
  let parsed: KubeStatus | undefined;
  try {
    const value: unknown = JSON.parse(text);
    if (isStatus(value)) parsed = value;
  } catch {}
  const message = parsed?.message ?? text.trim().slice(0, 300);
  return new KubeError(codeForStatus(status), `${what}: ${status} ${message}`.trim(), {
    status,
    reason: parsed?.reason ?? '',
  });
}

/** The {@link KubeErrorCode} for an HTTP status from the apiserver. */
export function codeForStatus(status: number): KubeErrorCode {
  switch (status) {
    case 400:
    case 422:
      return KubeErrorCode.invalid;
    case 401:
    case 403:
      return KubeErrorCode.forbidden;
    case 404:
      return KubeErrorCode.notFound;
    case 409:
      return KubeErrorCode.conflict;
    case 410:
      return KubeErrorCode.gone;
    case 504:
      return KubeErrorCode.timeout;
    default:
      return KubeErrorCode.api;
  }
}
