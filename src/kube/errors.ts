import { CapstanError } from '../runtime/index.ts';

/** Codes of the kube area; tests and callers branch on these. */
export const KubeErrorCode = {
  /** 404 from the apiserver: no such object, or no such resource type. */
  notFound: 'CAP_ERR_KUBE_NOT_FOUND',
  /** 409: the object exists already, or a resourceVersion / server-side apply conflict. */
  conflict: 'CAP_ERR_KUBE_CONFLICT',
  /** 422 (or 400): the apiserver rejected the object (schema, enum, minimum, CEL rule...). */
  invalid: 'CAP_ERR_KUBE_INVALID',
  /** 401 or 403: the credentials are refused, or RBAC does not allow the verb. */
  forbidden: 'CAP_ERR_KUBE_FORBIDDEN',
  /** 410 Gone: the resourceVersion asked for is older than etcd keeps; relist. */
  gone: 'CAP_ERR_KUBE_GONE',
  /** 5xx, 429 after retries, and other statuses the apiserver answers with. */
  api: 'CAP_ERR_KUBE_API',
  /** The apiserver could not be reached (refused, reset, timed out before a response). */
  connect: 'CAP_ERR_KUBE_CONNECT',
  /** A kubeconfig or in-cluster setting that cannot be used (missing context, unreadable file, no server). */
  config: 'CAP_ERR_KUBE_CONFIG',
  /** A custom resource definition that cannot be generated (names, versions, a non-structural schema); `problems` lists each. */
  crd: 'CAP_ERR_KUBE_CRD',
  /** No answer in time: the request's deadline passed, or a watch stream went silent past its watchdog. */
  timeout: 'CAP_ERR_KUBE_TIMEOUT',
  /** An answer that is not what the API promises (a body that is not JSON, a watch event without a type). */
  decode: 'CAP_ERR_KUBE_DECODE',
  /** A call that cannot work as asked: a namespaced object without a namespace, a queue with concurrency 0, a controller without a reconciler. */
  usage: 'CAP_ERR_KUBE_USAGE',
  /** A reconciler gave up on an object for good ({@link TerminalError}): no retry until the object changes. */
  terminal: 'CAP_ERR_KUBE_TERMINAL',
  /** This replica lost (or could not renew) its leader-election Lease; its controllers stopped. */
  leaseLost: 'CAP_ERR_KUBE_LEASE_LOST',
} as const;
/** One of {@link KubeErrorCode}'s values. */
export type KubeErrorCode = (typeof KubeErrorCode)[keyof typeof KubeErrorCode];

/**
 * Error raised by the kube area. `status` is the apiserver's HTTP status when there was one, and `reason`
 * the `reason` of its `Status` object (`AlreadyExists`, `Invalid`, `Expired`...), so callers branch on `code`
 * and still see the apiserver's own words in `message`.
 */
export class KubeError extends CapstanError {
  declare readonly code: KubeErrorCode;
  /** HTTP status from the apiserver, or 0 when no response came. */
  readonly status: number;
  /** The `reason` field of the apiserver's `Status`, or '' when there was none. */
  readonly reason: string;
  /** Each thing wrong, when there are several (a CRD definition lists all its problems at once); else empty. */
  readonly problems: readonly string[];

  constructor(
    code: KubeErrorCode,
    message: string,
    options?: { cause?: unknown; status?: number; reason?: string; problems?: readonly string[] },
  ) {
    super(code, message, options);
    this.status = options?.status ?? 0;
    this.reason = options?.reason ?? '';
    this.problems = options?.problems ?? [];
  }
}

/**
 * Thrown (or returned through the error policy) by a reconciler when retrying cannot help: a spec that can
 * never be satisfied, a reference to something that will not appear. The default error policy does not
 * retry it; the key runs again only when the object (or something it owns or watches) changes.
 */
export class TerminalError extends KubeError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(KubeErrorCode.terminal, message, options);
  }
}

/** True for a {@link TerminalError}, or a KubeError carrying its code. */
export function isTerminalError(error: unknown): boolean {
  return error instanceof KubeError && error.code === KubeErrorCode.terminal;
}
