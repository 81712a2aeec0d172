// The ValidatingWebhookConfiguration and MutatingWebhookConfiguration of a webhook definition: one webhook
// per served path, its rules from the recorded bindings, its selectors from the definition and from filters
// every binding of the path shares (the server filters again, so a selector only saves the apiserver calls).

import type { V1LabelSelector, V1LabelSelectorRequirement } from '@kubernetes/client-node';
import type { MutatingWebhookConfiguration, ValidatingWebhookConfiguration } from '../kube/index.ts';
import type { Binding, HandlerSet, Webhook } from './definition.ts';
import { WebhookError, WebhookErrorCode } from './errors.ts';
import type { Operation } from './review.ts';
import { OPERATIONS } from './review.ts';

/** A Service in the cluster the apiserver calls the webhook through. */
export interface WebhookServiceRef {
  name: string;
  namespace: string;
  /** The Service's port; default 443. */
  port?: number;
}

/** Where the apiserver reaches the webhook, and the CA it trusts for it. */
export interface WebhookConfigurationOptions {
  /** Call through this Service (the usual way in a cluster). Exactly one of `service` and `url`. */
  service?: WebhookServiceRef;
  /** Call this `https://host:port` base URL (a webhook outside the cluster); each path is appended. */
  url?: string;
  /** CA certificate(s), PEM, that signed the serving certificate; written base64 as `caBundle`. */
  caBundle?: string;
  /** Labels added to both configurations' metadata. */
  labels?: Record<string, string>;
}

/** The two configuration objects of a webhook; either is absent when it has no handlers of that type. */
export interface WebhookConfigurations {
  validating?: ValidatingWebhookConfiguration;
  mutating?: MutatingWebhookConfiguration;
}

/** The label whose value is the namespace's name; the apiserver sets it on every namespace (1.21+). */
export const NAMESPACE_NAME_LABEL = 'kubernetes.io/metadata.name';

/** The value shared by every binding, or undefined when they differ. */
function shared<K>(bindings: readonly Binding[], key: (b: Binding) => K): K | undefined {
  const first = JSON.stringify(key(bindings[0]!));
  return bindings.every((b) => JSON.stringify(key(b)) === first) ? key(bindings[0]!) : undefined;
}

function mergeSelectors(
  base: V1LabelSelector | undefined,
  extra: V1LabelSelector | undefined,
): V1LabelSelector | undefined {
  if (!base && !extra) return undefined;
  const matchLabels = { ...base?.matchLabels, ...extra?.matchLabels };
  const matchExpressions: V1LabelSelectorRequirement[] = [
    ...(base?.matchExpressions ?? []),
    ...(extra?.matchExpressions ?? []),
  ];
  return {
    ...(Object.keys(matchLabels).length > 0 && { matchLabels }),
    ...(matchExpressions.length > 0 && { matchExpressions }),
  };
}

function namespaceSelectorOf(
  set: HandlerSet,
  base: V1LabelSelector | undefined,
): V1LabelSelector | undefined {
  const namespaces = shared(set.bindings, (b) => [...b.namespaces].sort());
  const extra =
    namespaces && namespaces.length > 0
      ? {
          matchExpressions: [{ key: NAMESPACE_NAME_LABEL, operator: 'In', values: [...new Set(namespaces)] }],
        }
      : undefined;
  return mergeSelectors(base, extra);
}

function objectSelectorOf(set: HandlerSet, base: V1LabelSelector | undefined): V1LabelSelector | undefined {
  const labels = shared(set.bindings, (b) => Object.entries(b.labels).sort(([a], [c]) => (a < c ? -1 : 1)));
  if (!labels || labels.length === 0) return mergeSelectors(base, undefined);
  const matchLabels: Record<string, string> = {};
  const matchExpressions: V1LabelSelectorRequirement[] = [];
  for (const [key, value] of labels) {
    if (value === undefined) matchExpressions.push({ key, operator: 'Exists' });
    else matchLabels[key] = value;
  }
  return mergeSelectors(base, {
    ...(Object.keys(matchLabels).length > 0 && { matchLabels }),
    ...(matchExpressions.length > 0 && { matchExpressions }),
  });
}

function rulesOf(set: HandlerSet) {
  // One rule per resource string (`pods`, `pods/exec`), with the operations of its bindings in a fixed order.
  const byResource = new Map<string, Set<Operation>>();
  for (const binding of set.bindings) {
    const resource = binding.subresource
      ? `${set.resource.plural}/${binding.subresource}`
      : set.resource.plural;
    const ops = byResource.get(resource) ?? new Set<Operation>();
    for (const op of binding.operations) ops.add(op);
    byResource.set(resource, ops);
  }
  return [...byResource].map(([resource, ops]) => ({
    apiGroups: [set.resource.group],
    apiVersions: [set.resource.version],
    operations: OPERATIONS.filter((op) => ops.has(op)),
    resources: [resource],
    scope: set.resource.namespaced ? 'Namespaced' : 'Cluster',
  }));
}

function clientConfigOf(set: HandlerSet, options: WebhookConfigurationOptions) {
  const caBundle =
    options.caBundle === undefined ? undefined : Buffer.from(options.caBundle, 'utf8').toString('base64');
  if (options.service) {
    return {
      service: {
        name: options.service.name,
        namespace: options.service.namespace,
        path: set.path,
        port: options.service.port ?? 443,
      },
      ...(caBundle !== undefined && { caBundle }),
    };
  }
  return {
    url: `${options.url!.replace(/\/+$/, '')}${set.path}`,
    ...(caBundle !== undefined && { caBundle }),
  };
}

function checkOptions(options: WebhookConfigurationOptions): void {
  const problems: string[] = [];
  if ((options.service === undefined) === (options.url === undefined)) {
    problems.push('give exactly one of service and url');
  }
  if (options.service) {
    const { name, namespace, port } = options.service;
    if (!name) problems.push('service.name is empty');
    if (!namespace) problems.push('service.namespace is empty');
    if (port !== undefined && (!Number.isInteger(port) || port < 1 || port > 65535)) {
      problems.push(`service.port must be from 1 to 65535, not ${port}`);
    }
  }
  if (options.url !== undefined) {
    let parsed: URL | undefined;
    try {
      parsed = new URL(options.url);
    } catch {
      problems.push(`url is not a URL: ${JSON.stringify(options.url)}`);
    }
    // The apiserver calls webhooks over HTTPS only, and refuses URLs with a query or fragment.
    if (parsed && parsed.protocol !== 'https:') problems.push(`url must be https://, not ${parsed.protocol}`);
    if (parsed && (parsed.search || parsed.hash || parsed.username)) {
      problems.push('url must have no query, fragment or user');
    }
  }
  if (options.caBundle !== undefined && !options.caBundle.includes('-----BEGIN CERTIFICATE-----')) {
    problems.push('caBundle must be PEM certificates');
  }
  if (problems.length > 0) {
    throw new WebhookError(
      WebhookErrorCode.usage,
      `cannot emit webhook configurations: ${problems.join('; ')}`,
      {
        problems,
      },
    );
  }
}

/**
 * The ValidatingWebhookConfiguration and MutatingWebhookConfiguration registering `webhook` with the
 * apiserver, named after the definition. Pure: the same input gives the same objects, so they can be
 * applied with server-side apply on every start and when the CA bundle rotates.
 */
export function webhookConfigurations(
  webhook: Webhook,
  options: WebhookConfigurationOptions,
): WebhookConfigurations {
  checkOptions(options);
  const sets = webhook.handlerSets();
  if (sets.length === 0) {
    throw new WebhookError(WebhookErrorCode.usage, `webhook ${webhook.options.name} has no handlers`);
  }
  const o = webhook.options;
  const metadata = { name: o.name, ...(options.labels && { labels: { ...options.labels } }) };
  const entry = (set: HandlerSet) => {
    const namespaceSelector = namespaceSelectorOf(set, o.namespaceSelector);
    const objectSelector = objectSelectorOf(set, o.objectSelector);
    return {
      name: set.webhookName,
      admissionReviewVersions: ['v1'],
      clientConfig: clientConfigOf(set, options),
      rules: rulesOf(set),
      failurePolicy: o.failurePolicy,
      matchPolicy: o.matchPolicy,
      sideEffects: o.sideEffects,
      timeoutSeconds: o.timeoutSeconds,
      ...(namespaceSelector && { namespaceSelector }),
      ...(objectSelector && { objectSelector }),
    };
  };
  const validating = sets.filter((s) => s.type === 'validating').map(entry);
  const mutating = sets
    .filter((s) => s.type === 'mutating')
    .map((s) => ({ ...entry(s), reinvocationPolicy: o.reinvocationPolicy }));
  const result: WebhookConfigurations = {};
  if (validating.length > 0) {
    result.validating = {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingWebhookConfiguration',
      metadata,
      webhooks: validating,
    };
  }
  if (mutating.length > 0) {
    result.mutating = {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'MutatingWebhookConfiguration',
      metadata: { ...metadata },
      webhooks: mutating,
    };
  }
  return result;
}
