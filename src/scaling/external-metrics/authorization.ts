// May this user read that metric? Asked of the apiserver (delegated authorization, a SubjectAccessReview),
// the way aggregated servers on k8s.io/apiserver ask, with its answer cached for a few seconds because the
// HPA controller asks the same question every sync.
import type { KubeClient } from '../../kube/index.ts';
import type { UserInfo } from './authentication.ts';

/** What a request wants: a metric in a namespace (a resource), or a discovery path (not a resource). */
export type RequestAttributes =
  | { user: UserInfo; verb: 'list'; namespace: string; resource: string; path?: never }
  | { user: UserInfo; verb: 'get'; path: string; namespace?: never; resource?: never };

/** The decision, with the authorizer's reason when it gives one. */
export interface Decision {
  allowed: boolean;
  reason: string;
}

/** Decides whether a request may go on; rejecting means "cannot decide" (the adapter answers 500). */
export type Authorizer = (attributes: RequestAttributes, signal?: AbortSignal) => Promise<Decision>;

/** The External Metrics API group, in SubjectAccessReviews and RBAC rules. */
export const EXTERNAL_METRICS_GROUP = 'external.metrics.k8s.io';
/** The API version the adapter serves. */
export const EXTERNAL_METRICS_VERSION = 'v1beta1';

/** Options of {@link subjectAccessReviewAuthorizer}. */
export interface SubjectAccessReviewAuthorizerOptions {
  /** How long a decision is reused (allowed or denied alike, as k8s.io/apiserver's default of 10 s). Default 10 s; 0: none. */
  cacheTtlMs?: number;
  /** Bound on cached decisions. Default 1000. */
  cacheSize?: number;
}

/**
 * An {@link Authorizer} that asks the apiserver with a SubjectAccessReview: `list` on the metric as a
 * resource of `external.metrics.k8s.io` in the namespace (what RBAC's `system:controller:horizontal-pod-autoscaler`
 * grants), `get` on the non-resource path for discovery. The adapter's identity needs `create` on
 * subjectaccessreviews: the `system:auth-delegator` ClusterRole, bound by {@link externalMetricsApiManifests}.
 */
export function subjectAccessReviewAuthorizer(
  kube: KubeClient,
  options: SubjectAccessReviewAuthorizerOptions = {},
): Authorizer {
  const ttl = options.cacheTtlMs ?? 10_000;
  const size = options.cacheSize ?? 1000;
  const cache = new Map<string, { decision: Decision; until: number }>();
  return async (attributes, signal) => {
    const { user } = attributes;
    const key = JSON.stringify([
      user.name,
      user.groups,
      user.extra,
      attributes.verb,
      attributes.namespace,
      attributes.resource,
      attributes.path,
    ]);
    const hit = cache.get(key);
    if (hit && hit.until > Date.now()) return hit.decision;
    const spec = {
      user: user.name,
      groups: user.groups,
      extra: user.extra,
      ...(attributes.path !== undefined
        ? { nonResourceAttributes: { path: attributes.path, verb: attributes.verb } }
        : {
            resourceAttributes: {
              namespace: attributes.namespace,
              verb: attributes.verb,
              group: EXTERNAL_METRICS_GROUP,
              version: EXTERNAL_METRICS_VERSION,
              resource: attributes.resource,
            },
          }),
    };
    const review = await kube.json<{
      status?: { allowed?: boolean; denied?: boolean; reason?: string; evaluationError?: string };
    }>({
      method: 'POST',
      path: '/apis/authorization.k8s.io/v1/subjectaccessreviews',
      json: { apiVersion: 'authorization.k8s.io/v1', kind: 'SubjectAccessReview', spec },
      timeoutMs: 10_000,
      ...(signal ? { signal } : {}),
    });
    const status = review.status ?? {};
    const decision: Decision = {
      allowed: status.allowed === true && status.denied !== true,
      reason: status.reason || status.evaluationError || '',
    };
    if (ttl > 0) {
      if (cache.size >= size) cache.delete(cache.keys().next().value as string);
      cache.set(key, { decision, until: Date.now() + ttl });
    }
    return decision;
  };
}
