// AdmissionReview v1 on the wire: the strict decoder of what the apiserver sends and the shape of what we
// answer. Unknown fields are tolerated (a newer apiserver may add some); missing or mistyped ones are not.
import { z } from 'zod';
import { WebhookError, WebhookErrorCode } from './errors.ts';

/** The one API version of AdmissionReview this server speaks (v1beta1 was removed in Kubernetes 1.22). */
export const ADMISSION_REVIEW_API_VERSION = 'admission.k8s.io/v1';

/** What an admission request can be about. */
export type Operation = 'CREATE' | 'UPDATE' | 'DELETE' | 'CONNECT';
/** Every {@link Operation}, in the apiserver's order. */
export const OPERATIONS: readonly Operation[] = ['CREATE', 'UPDATE', 'DELETE', 'CONNECT'];

/** An API group, version and kind (`''` is the core group). */
export interface GroupVersionKind {
  group: string;
  version: string;
  kind: string;
}

/** An API group, version and resource (the plural in URLs). */
export interface GroupVersionResource {
  group: string;
  version: string;
  resource: string;
}

/** Who sent the request, as the apiserver authenticated them. */
export interface UserInfo {
  username?: string;
  uid?: string;
  groups?: string[];
  extra?: Record<string, string[]>;
}

/** A JSON object as the apiserver sent it (`object`, `oldObject`, `options`). */
export type JsonObject = Record<string, unknown>;

/** `request` of an AdmissionReview v1, decoded. */
export interface AdmissionReviewRequest {
  uid: string;
  kind: GroupVersionKind;
  resource: GroupVersionResource;
  subResource?: string;
  requestKind?: GroupVersionKind;
  requestResource?: GroupVersionResource;
  requestSubResource?: string;
  name?: string;
  namespace?: string;
  operation: Operation;
  userInfo: UserInfo;
  object?: JsonObject;
  oldObject?: JsonObject;
  dryRun?: boolean;
  options?: JsonObject;
}

/** `response.status` of an AdmissionReview: why a request was denied (a `metav1.Status`, in part). */
export interface AdmissionStatus {
  /** HTTP-like code the apiserver returns to the client (403 when denied by policy). */
  code?: number;
  message?: string;
  reason?: string;
}

/** `response` of an AdmissionReview v1. */
export interface AdmissionReviewResponse {
  uid: string;
  allowed: boolean;
  status?: AdmissionStatus;
  /** Base64 of a JSON Patch (RFC 6902) array; with `patchType: 'JSONPatch'`. */
  patch?: string;
  patchType?: 'JSONPatch';
  auditAnnotations?: Record<string, string>;
  warnings?: string[];
}

/** The AdmissionReview v1 we send back. */
export interface AdmissionReviewReply {
  apiVersion: typeof ADMISSION_REVIEW_API_VERSION;
  kind: 'AdmissionReview';
  response: AdmissionReviewResponse;
}

const gvk = z.object({ group: z.string(), version: z.string().min(1), kind: z.string().min(1) });
const gvr = z.object({ group: z.string(), version: z.string().min(1), resource: z.string().min(1) });
// A RawExtension: a JSON object, or null/absent (no object for this operation).
const jsonObject = z.record(z.string(), z.unknown());
const rawObject = jsonObject.nullish().transform((v) => v ?? undefined);
// One check and one issue for a whole list: z.array(z.string()) makes an issue, path and all, per bad item,
// and a 3 MiB body of bad items kept the event loop for seconds.
const isStringList = (value: unknown): value is string[] =>
  Array.isArray(value) && value.every((item) => typeof item === 'string');
const stringList = z.custom<string[]>(isStringList, { message: 'must be a list of strings' });
const stringLists = z.custom<Record<string, string[]>>(
  (value) =>
    typeof value === 'object' &&
    value !== null &&
    !Array.isArray(value) &&
    Object.values(value).every(isStringList),
  { message: 'must map names to lists of strings' },
);
const optionalString = z
  .string()
  .nullish()
  .transform((v) => (v === null || v === '' ? undefined : v));

const requestSchema = z
  .object({
    uid: z.string().min(1, 'request.uid is empty'),
    kind: gvk,
    resource: gvr,
    subResource: optionalString,
    requestKind: gvk.nullish().transform((v) => v ?? undefined),
    requestResource: gvr.nullish().transform((v) => v ?? undefined),
    requestSubResource: optionalString,
    name: optionalString,
    namespace: optionalString,
    operation: z.enum(['CREATE', 'UPDATE', 'DELETE', 'CONNECT']),
    userInfo: z.object({
      username: z.string().optional(),
      uid: z.string().optional(),
      groups: stringList.nullish().transform((v) => v ?? undefined),
      extra: stringLists.nullish().transform((v) => v ?? undefined),
    }),
    object: rawObject,
    oldObject: rawObject,
    dryRun: z
      .boolean()
      .nullish()
      .transform((v) => v ?? undefined),
    options: rawObject,
  })
  .superRefine((req, ctx) => {
    // What the apiserver always sends for these operations; without it a handler would see no object.
    if ((req.operation === 'CREATE' || req.operation === 'UPDATE') && req.object === undefined) {
      ctx.addIssue({ code: 'custom', path: ['object'], message: `${req.operation} without request.object` });
    }
    if (req.operation === 'UPDATE' && req.oldObject === undefined) {
      ctx.addIssue({ code: 'custom', path: ['oldObject'], message: 'UPDATE without request.oldObject' });
    }
  });

const reviewSchema = z.object({
  apiVersion: z.literal(ADMISSION_REVIEW_API_VERSION, {
    error: (issue) =>
      `apiVersion must be ${ADMISSION_REVIEW_API_VERSION}, not ${JSON.stringify(issue.input)}`,
  }),
  kind: z.literal('AdmissionReview', {
    error: (issue) => `kind must be AdmissionReview, not ${JSON.stringify(issue.input)}`,
  }),
  request: requestSchema,
});

/** At most this many problems are named: a body of 3 MiB can hold hundreds of thousands of bad fields. */
const MAX_PROBLEMS = 20;

function describeIssues(error: z.ZodError): string[] {
  const problems = error.issues.slice(0, MAX_PROBLEMS).map((issue) => {
    const path = issue.path.length === 0 ? '' : `${issue.path.map(String).join('.')}: `;
    return `${path}${issue.message}`.slice(0, 300);
  });
  const more = error.issues.length - MAX_PROBLEMS;
  if (more > 0) problems.push(`and ${more} more`);
  return problems;
}

// The decoder of well-formed reviews, every day's case: the same checks and the same output as
// `reviewSchema` (review.test.ts holds them to equal), written out, because zod's parse cost about 75 µs a
// review and, worse, kept what it allocated alive long enough that V8 promoted it: at 200 reviews/s the old
// generation grew 2.4 MB between scavenges and the scavenges took 10-15 ms (JSON.parse alone: 0.4 ms). It
// answers undefined for anything it does not accept as it is, and the schema then decodes it or names
// each problem.

type Json = Record<string, unknown>;

function isPlainObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function fastGroupVersion<K extends 'kind' | 'resource'>(
  value: unknown,
  last: K,
): (K extends 'kind' ? GroupVersionKind : GroupVersionResource) | undefined {
  if (!isPlainObject(value)) return undefined;
  const { group, version } = value;
  const name = value[last];
  if (typeof group !== 'string' || typeof version !== 'string' || typeof name !== 'string') return undefined;
  if (version === '' || name === '') return undefined;
  return { group, version, [last]: name } as never;
}

/** A RawExtension: a copy of the object's own keys (zod's record), `__proto__` left to the schema. */
function fastRecord(value: Json): Json | undefined {
  const copy: Json = {};
  for (const key of Object.keys(value)) {
    if (key === '__proto__') return undefined;
    copy[key] = value[key];
  }
  return copy;
}

function fastDecode(json: Json): AdmissionReviewRequest | undefined {
  if (json['apiVersion'] !== ADMISSION_REVIEW_API_VERSION || json['kind'] !== 'AdmissionReview')
    return undefined;
  const r = json['request'];
  if (!isPlainObject(r)) return undefined;
  const { uid, operation, userInfo: info } = r;
  if (typeof uid !== 'string' || uid === '') return undefined;
  if (operation !== 'CREATE' && operation !== 'UPDATE' && operation !== 'DELETE' && operation !== 'CONNECT')
    return undefined;
  const kind = fastGroupVersion(r['kind'], 'kind');
  const resource = fastGroupVersion(r['resource'], 'resource');
  if (!kind || !resource || !isPlainObject(info)) return undefined;
  // The schema's output has, in its own order, every required key and each optional key the input has.
  const out: Json = { uid, kind, resource };
  for (const key of [
    'subResource',
    'requestKind',
    'requestResource',
    'requestSubResource',
    'name',
    'namespace',
  ] as const) {
    if (!(key in r)) continue;
    const v = r[key];
    if (v === null || v === undefined) {
      out[key] = undefined;
    } else if (key === 'requestKind' || key === 'requestResource') {
      const gv = fastGroupVersion(v, key === 'requestKind' ? 'kind' : 'resource');
      if (!gv) return undefined;
      out[key] = gv;
    } else if (typeof v === 'string') {
      out[key] = v === '' ? undefined : v;
    } else {
      return undefined;
    }
  }
  out['operation'] = operation;
  const userInfo: Json = {};
  for (const key of ['username', 'uid'] as const) {
    if (!(key in info)) continue;
    const v = info[key];
    if (v !== undefined && typeof v !== 'string') return undefined;
    userInfo[key] = v;
  }
  if ('groups' in info) {
    const groups = info['groups'];
    if (groups === null || groups === undefined) userInfo['groups'] = undefined;
    else if (isStringList(groups)) userInfo['groups'] = groups;
    else return undefined;
  }
  if ('extra' in info) {
    const extra = info['extra'];
    if (extra === null || extra === undefined) userInfo['extra'] = undefined;
    else if (isPlainObject(extra) && Object.values(extra).every(isStringList)) userInfo['extra'] = extra;
    else return undefined;
  }
  out['userInfo'] = userInfo;
  for (const key of ['object', 'oldObject'] as const) {
    if (!(key in r)) continue;
    const v = r[key];
    if (v === null || v === undefined) {
      out[key] = undefined;
      continue;
    }
    if (!isPlainObject(v)) return undefined;
    const copy = fastRecord(v);
    if (!copy) return undefined;
    out[key] = copy;
  }
  if ('dryRun' in r) {
    const v = r['dryRun'];
    if (v !== null && v !== undefined && typeof v !== 'boolean') return undefined;
    out['dryRun'] = v ?? undefined;
  }
  if ('options' in r) {
    const v = r['options'];
    if (v === null || v === undefined) out['options'] = undefined;
    else {
      if (!isPlainObject(v)) return undefined;
      const copy = fastRecord(v);
      if (!copy) return undefined;
      out['options'] = copy;
    }
  }
  // The schema's refinement: what the apiserver always sends for these operations.
  if ((operation === 'CREATE' || operation === 'UPDATE') && out['object'] === undefined) return undefined;
  if (operation === 'UPDATE' && out['oldObject'] === undefined) return undefined;
  return out as unknown as AdmissionReviewRequest;
}

/** The schema's decode alone (no fast path), for the tests that hold the two to the same output. */
export function decodeWithSchema(json: unknown): AdmissionReviewRequest | undefined {
  const parsed = reviewSchema.safeParse(json);
  return parsed.success ? (parsed.data.request as AdmissionReviewRequest) : undefined;
}

/** The fast decode alone: undefined when it leaves the input to the schema. */
export function decodeFast(json: unknown): AdmissionReviewRequest | undefined {
  return isPlainObject(json) ? fastDecode(json) : undefined;
}

/**
 * Decode an AdmissionReview v1 request body. Throws a {@link WebhookError} `CAP_ERR_WEBHOOK_BAD_REQUEST`
 * whose `problems` name each field wrong: not JSON, not an object, another apiVersion or kind, no
 * `request.uid`, a CREATE without its object...
 */
export function decodeAdmissionReview(body: string | Uint8Array): AdmissionReviewRequest {
  const text = typeof body === 'string' ? body : Buffer.from(body).toString('utf8');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new WebhookError(WebhookErrorCode.badRequest, `body is not JSON: ${reason}`, {
      cause: err,
      problems: [`body is not JSON: ${reason}`],
    });
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    const problem = `body is not a JSON object but ${json === null ? 'null' : Array.isArray(json) ? 'an array' : typeof json}`;
    throw new WebhookError(WebhookErrorCode.badRequest, problem, { problems: [problem] });
  }
  const fast = fastDecode(json as Record<string, unknown>);
  if (fast) return fast;
  const parsed = reviewSchema.safeParse(json);
  if (!parsed.success) {
    const problems = describeIssues(parsed.error);
    throw new WebhookError(
      WebhookErrorCode.badRequest,
      `not an AdmissionReview ${ADMISSION_REVIEW_API_VERSION} request: ${problems.join('; ')}`,
      { problems },
    );
  }
  return parsed.data.request as AdmissionReviewRequest;
}

/** Wrap a response in the AdmissionReview envelope the apiserver expects. */
export function admissionReviewReply(response: AdmissionReviewResponse): AdmissionReviewReply {
  return { apiVersion: ADMISSION_REVIEW_API_VERSION, kind: 'AdmissionReview', response };
}
