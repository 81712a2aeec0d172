// Runs one decoded admission request through the bindings of a served path: picks the bindings that match,
// runs them in order under a deadline, and turns their verdicts (or their failure) into the response.
import type { Logger } from '../runtime/index.ts';
import type { Binding, HandlerSet, ResolvedWebhookOptions, Verdict } from './definition.ts';
import { WebhookError, WebhookErrorCode } from './errors.ts';
import { diffJsonPatch, type JsonPatchOperation, toJsonValue } from './json-patch.ts';
import type { AdmissionReviewRequest, AdmissionReviewResponse, JsonObject } from './review.ts';

/** How a request ended, for logs and metrics. */

/**
 * The apiserver's `StatusReason` for a denial's code, as controller-runtime's `Denied` sets it: kubectl prints
 * it (`Error from server (Forbidden): ...`) and clients branch on it.
 */
const STATUS_REASONS: Readonly<Record<number, string>> = {
  400: 'BadRequest',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'NotFound',
  405: 'MethodNotAllowed',
  409: 'Conflict',
  410: 'Gone',
  422: 'Invalid',
  429: 'TooManyRequests',
  500: 'InternalError',
  503: 'ServiceUnavailable',
  504: 'Timeout',
};

export type AdmissionOutcome = 'allowed' | 'patched' | 'denied' | 'failed-open' | 'failed-closed';

/** The response to send and what happened. */
export interface AdmissionResult {
  response: AdmissionReviewResponse;
  outcome: AdmissionOutcome;
  /** The JSON Patch of a mutation (also base64 in `response.patch`). */
  patch?: JsonPatchOperation[];
  /** Why a handler failed, when it did (`CAP_ERR_WEBHOOK_HANDLER` or `CAP_ERR_WEBHOOK_TIMEOUT`). */
  failure?: WebhookError;
  /** How many bindings matched the request. */
  matched: number;
}

/** What {@link admit} needs besides the request. */
export interface AdmitOptions {
  options: ResolvedWebhookOptions;
  /** The handlers' `req.log`; a function is called on first use (a child logger per request is not free). */
  log: Logger | (() => Logger);
  /** Time the handlers have, in ms; past it the failure policy answers. */
  deadlineMs: number;
  /** Aborted when the client goes away or the server stops; handlers see it through `req.signal`. */
  signal?: AbortSignal;
}

const MAX_MESSAGE = 1024;

function clip(text: string): string {
  return text.length <= MAX_MESSAGE ? text : `${text.slice(0, MAX_MESSAGE)}…`;
}

function labelsOf(object: JsonObject | undefined): Record<string, unknown> {
  const metadata = object?.['metadata'];
  if (typeof metadata !== 'object' || metadata === null) return {};
  const labels = (metadata as Record<string, unknown>)['labels'];
  return typeof labels === 'object' && labels !== null ? (labels as Record<string, unknown>) : {};
}

/** Whether `binding` is about this request: same resource and subresource, operation, and its filters. */
export function bindingMatches(binding: Binding, request: AdmissionReviewRequest): boolean {
  const r = binding.resource;
  if (
    r.group !== request.resource.group ||
    r.version !== request.resource.version ||
    r.plural !== request.resource.resource ||
    binding.subresource !== request.subResource ||
    !binding.operations.includes(request.operation)
  ) {
    return false;
  }
  if (binding.namespaces.length > 0 && !binding.namespaces.includes(request.namespace ?? '')) return false;
  const labelEntries = Object.entries(binding.labels);
  if (labelEntries.length > 0) {
    // DELETE carries the object in oldObject; the others are judged by the object as it will be.
    const labels = labelsOf(request.operation === 'DELETE' ? request.oldObject : request.object);
    for (const [key, value] of labelEntries) {
      if (!Object.hasOwn(labels, key)) return false;
      if (value !== undefined && labels[key] !== value) return false;
    }
  }
  return true;
}

function isVerdict(value: unknown): value is Verdict {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return v['allowed'] === true || (v['allowed'] === false && typeof v['message'] === 'string');
}

const ALLOW: Verdict = Object.freeze({ allowed: true });

interface Collected {
  warnings: string[];
  audit: Record<string, string>;
}

/**
 * What a handler is given (`AdmissionContext`). A class: an object literal with a getter and four closures
 * per binding and review, all sharing the review's scope, made V8 promote every review to the old
 * generation (2 MB between scavenges at 200 reviews/s, 10-15 ms scavenges).
 */
class HandlerContext {
  readonly uid: string;
  readonly operation: AdmissionReviewRequest['operation'];
  readonly kind: AdmissionReviewRequest['kind'];
  readonly resource: AdmissionReviewRequest['resource'];
  readonly subResource: string | undefined;
  readonly name: string | undefined;
  readonly namespace: string | undefined;
  readonly userInfo: AdmissionReviewRequest['userInfo'];
  readonly dryRun: boolean;
  readonly options: JsonObject | undefined;
  readonly object: JsonObject | undefined;
  readonly oldObject: JsonObject | undefined;
  readonly request: AdmissionReviewRequest;
  readonly signal: AbortSignal;
  readonly #log: () => Logger;
  readonly #collected: Collected;

  constructor(
    request: AdmissionReviewRequest,
    object: JsonObject | undefined,
    signal: AbortSignal,
    log: () => Logger,
    collected: Collected,
  ) {
    this.uid = request.uid;
    this.operation = request.operation;
    this.kind = request.kind;
    this.resource = request.resource;
    this.subResource = request.subResource;
    this.name = request.name;
    this.namespace = request.namespace;
    this.userInfo = request.userInfo;
    this.dryRun = request.dryRun === true;
    this.options = request.options;
    this.object = object;
    this.oldObject = request.oldObject;
    this.request = request;
    this.signal = signal;
    this.#log = log;
    this.#collected = collected;
  }

  get log(): Logger {
    return this.#log();
  }

  allow(): Verdict {
    return ALLOW;
  }

  deny(message: string, code = 403): Verdict {
    const status = Number.isInteger(code) && code >= 400 && code <= 599 ? code : 403;
    const reason = STATUS_REASONS[status];
    return Object.freeze({
      allowed: false,
      code: status,
      message: clip(String(message)),
      ...(reason !== undefined ? { reason } : {}),
    });
  }

  // Fields, not methods: they keep working detached (`const { warn } = req`), as handlers may use them.
  readonly warn = (message: string): void => {
    this.#collected.warnings.push(clip(String(message)));
  };

  readonly annotateAudit = (key: string, value: string): void => {
    this.#collected.audit[String(key)] = String(value);
  };
}

/** Run the handlers one after another; the first deny ends the run. */
async function runBindings(
  set: HandlerSet,
  bindings: readonly Binding[],
  request: AdmissionReviewRequest,
  signal: AbortSignal,
  log: () => Logger,
  collected: Collected,
): Promise<{ verdict: Verdict; object: JsonObject | undefined }> {
  // Mutating handlers share one copy, so a later one sees what an earlier one changed.
  const object =
    set.type === 'mutating' && request.object !== undefined
      ? (toJsonValue(request.object) as JsonObject)
      : request.object;
  for (const binding of bindings) {
    const ctx = new HandlerContext(request, object, signal, log, collected);
    const result = await binding.handler(ctx);
    // Past the deadline (the race has answered already) or the client gone: the rest would be wasted.
    if (signal.aborted) throw signal.reason;
    if (set.type === 'validating' && !isVerdict(result)) {
      throw new WebhookError(
        WebhookErrorCode.handler,
        'validate handler returned no verdict (return req.allow() or req.deny(message))',
      );
    }
    if (set.type === 'mutating' && result !== undefined && !isVerdict(result)) {
      throw new WebhookError(
        WebhookErrorCode.handler,
        'mutate handler returned something other than nothing or a verdict (change req.object in place)',
      );
    }
    if (isVerdict(result) && !result.allowed) return { verdict: result, object };
  }
  return { verdict: ALLOW, object };
}

/**
 * Answer `request` with the bindings of `set`. Never throws: a handler that throws, returns no verdict or
 * overruns `deadlineMs` is answered by the failure policy (`Fail`: denied with code 500; `Ignore`: allowed,
 * unchanged, with a warning) and reported in `failure`.
 */
export async function admit(
  set: HandlerSet,
  request: AdmissionReviewRequest,
  { options, log, deadlineMs, signal }: AdmitOptions,
): Promise<AdmissionResult> {
  const bindings = set.bindings.filter((b) => bindingMatches(b, request));
  const base = { uid: request.uid };
  if (bindings.length === 0) return { response: { ...base, allowed: true }, outcome: 'allowed', matched: 0 };

  const collected: Collected = { warnings: [], audit: {} };
  let logger: Logger | undefined;
  const lazyLog = () => {
    logger ??= typeof log === 'function' ? log() : log;
    return logger;
  };
  // One controller aborted by the deadline or by the caller's signal (a listener, removed below), not
  // AbortSignal.any, which links every review's signals through WeakRefs and a FinalizationRegistry.
  const deadline = new AbortController();
  const handlerSignal = deadline.signal;
  const onCallerAbort = () => deadline.abort(signal!.reason);
  if (signal?.aborted) deadline.abort(signal.reason);
  else signal?.addEventListener('abort', onCallerAbort, { once: true });
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const err = new WebhookError(
        WebhookErrorCode.timeout,
        `handler did not answer within ${deadlineMs} ms`,
      );
      deadline.abort(err);
      reject(err);
    }, deadlineMs);
  });
  let run: { verdict: Verdict; object: JsonObject | undefined };
  let patch: JsonPatchOperation[] = [];
  try {
    run = await Promise.race([
      runBindings(set, bindings, request, handlerSignal, lazyLog, collected),
      timedOut,
    ]);
    // Inside the try: a handler may leave what JSON cannot carry (a cycle, a BigInt) in the object.
    if (run.verdict.allowed && set.type === 'mutating' && request.object !== undefined) {
      patch = diffJsonPatch(request.object, run.object);
    }
  } catch (err) {
    const failure =
      err instanceof WebhookError &&
      (err.code === WebhookErrorCode.timeout || err.code === WebhookErrorCode.handler)
        ? err
        : new WebhookError(
            WebhookErrorCode.handler,
            `handler failed: ${err instanceof Error ? err.message : String(err)}`,
            { cause: err },
          );
    return failed(set, request, options, failure, collected, bindings.length);
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', onCallerAbort);
  }
  const extras = {
    ...(collected.warnings.length > 0 && { warnings: collected.warnings }),
    ...(Object.keys(collected.audit).length > 0 && { auditAnnotations: collected.audit }),
  };
  if (!run.verdict.allowed) {
    const { code, message, reason } = run.verdict;
    return {
      response: { ...base, allowed: false, status: { code, message, ...(reason && { reason }) }, ...extras },
      outcome: 'denied',
      matched: bindings.length,
    };
  }
  if (patch.length > 0) {
    return {
      response: {
        ...base,
        allowed: true,
        patchType: 'JSONPatch',
        patch: Buffer.from(JSON.stringify(patch)).toString('base64'),
        ...extras,
      },
      outcome: 'patched',
      patch,
      matched: bindings.length,
    };
  }
  return { response: { ...base, allowed: true, ...extras }, outcome: 'allowed', matched: bindings.length };
}

function failed(
  set: HandlerSet,
  request: AdmissionReviewRequest,
  options: ResolvedWebhookOptions,
  failure: WebhookError,
  collected: Collected,
  matched: number,
): AdmissionResult {
  const what = `webhook ${set.webhookName}: ${failure.message}`;
  if (options.failurePolicy === 'Ignore') {
    return {
      response: {
        uid: request.uid,
        allowed: true,
        warnings: [...collected.warnings, clip(`${what}; allowed unchanged by failurePolicy Ignore`)],
      },
      outcome: 'failed-open',
      failure,
      matched,
    };
  }
  return {
    response: {
      uid: request.uid,
      allowed: false,
      status: {
        code: 500,
        message: clip(`${what}; denied by failurePolicy Fail`),
        reason: failure.code === WebhookErrorCode.timeout ? 'Timeout' : 'InternalError',
      },
      ...(collected.warnings.length > 0 && { warnings: collected.warnings }),
    },
    outcome: 'failed-closed',
    failure,
    matched,
  };
}
