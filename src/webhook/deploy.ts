// Everything a cluster needs to run a webhook as users deploy it: its namespace, least-privilege RBAC, the
// certificate Secret (empty: the webhook fills it) or cert-manager's Certificate, a Service, a Deployment
// running `runWebhook`, a PodDisruptionBudget, and the configurations (their caBundle injected at run time).
// The Deployment follows the contract of `runWebhook` (environment, port, probes), which lives beside it.
import {
  type KubeObject,
  type Namespace,
  programWorkload,
  type Secret,
  type Service,
} from '../kube/index.ts';
import type { WebhookConfiguration } from './ca-injection.ts';
import type { Webhook } from './definition.ts';
import { WebhookError, WebhookErrorCode } from './errors.ts';
import { NAMESPACE_NAME_LABEL, webhookConfigurations } from './manifests.ts';
import { webhookRbacManifests } from './rbac.ts';

/** The port the webhook program listens on in its pod (controller-runtime's). */
export const WEBHOOK_POD_PORT = 9443;

/** The Secret holding a webhook's certificates: `<name>-webhook-tls`. */
export function webhookSecretName(name: string): string {
  return `${name}-webhook-tls`;
}

/** Options of {@link webhookDeployManifests}. */
export interface WebhookDeployOptions {
  /** The webhook program's image (its entrypoint calls `runWebhook`). */
  image: string;
  /** Where it runs. Default `<name>-system`. */
  namespace?: string;
  /** Default 2: with `failurePolicy: Fail`, one pod down must not block the cluster's writes. */
  replicas?: number;
  /** Default `IfNotPresent`. */
  imagePullPolicy?: 'Always' | 'IfNotPresent' | 'Never';
  /** Overrides the image's entrypoint. */
  command?: readonly string[];
  /**
   * `capstan` (default): the webhook issues its CA and certificate into its Secret. `cert-manager`: a
   * cert-manager Certificate writes the Secret (a self-signed Issuer unless `issuer` names one).
   */
  certificates?: 'capstan' | 'cert-manager';
  /** cert-manager only: the issuer to use instead of a self-signed one. */
  issuer?: { kind: 'Issuer' | 'ClusterIssuer'; name: string };
  /** The user id the container runs as (non-root). Default 65532. */
  runAsUser?: number;
  /** Include the Namespace object. Default true. */
  includeNamespace?: boolean;
  /** `LOG_LEVEL` of the program. */
  logLevel?: string;
  /** CPU and memory; default requests 50m / 64Mi, limit 256Mi memory. */
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** Keep the webhook's own namespace out of its configurations: its pods must start even when it is down. */
export function excludeNamespace(config: WebhookConfiguration, namespace: string): WebhookConfiguration {
  return {
    ...config,
    webhooks: (config.webhooks ?? []).map((hook) => ({
      ...hook,
      namespaceSelector: {
        ...hook.namespaceSelector,
        matchExpressions: [
          ...(hook.namespaceSelector?.matchExpressions ?? []),
          { key: NAMESPACE_NAME_LABEL, operator: 'NotIn', values: [namespace] },
        ],
      },
    })),
  } as WebhookConfiguration;
}

/**
 * The manifests of `webhook` deployed in the cluster, in the order to apply them: Namespace, ServiceAccount
 * and roles (`webhookRbacManifests`), the certificate Secret (empty) or cert-manager's Issuer and
 * Certificate, Service (443 → {@link WEBHOOK_POD_PORT}), Deployment, PodDisruptionBudget (with 2+
 * replicas), and the Validating/MutatingWebhookConfiguration pointing at the Service, without a caBundle
 * (the running webhook injects it) and never matching the webhook's own namespace.
 */
export function webhookDeployManifests(webhook: Webhook, options: WebhookDeployOptions): KubeObject[] {
  const name = webhook.options.name;
  const namespace = options.namespace ?? `${name}-system`;
  const problems: string[] = [];
  if (!options.image) problems.push('image is required');
  if (!DNS_LABEL.test(namespace))
    problems.push(`namespace must be a DNS-1123 label, not ${JSON.stringify(namespace)}`);
  const replicas = options.replicas ?? 2;
  if (!Number.isInteger(replicas) || replicas < 1)
    problems.push(`replicas must be 1 or more, not ${replicas}`);
  const mode = options.certificates ?? 'capstan';
  if (mode !== 'capstan' && mode !== 'cert-manager')
    problems.push(`certificates must be capstan or cert-manager, not ${JSON.stringify(mode)}`);
  if (options.issuer && mode !== 'cert-manager') problems.push('issuer needs certificates: cert-manager');
  if (problems.length > 0) {
    throw new WebhookError(WebhookErrorCode.usage, `cannot emit deploy manifests: ${problems.join('; ')}`, {
      problems,
    });
  }
  const labels = {
    'app.kubernetes.io/name': name,
    'app.kubernetes.io/component': 'webhook',
    'app.kubernetes.io/managed-by': 'capstan',
  };
  const selector = { 'app.kubernetes.io/name': name, 'app.kubernetes.io/component': 'webhook' };
  const secret = webhookSecretName(name);
  const configs = webhookConfigurations(webhook, { service: { name, namespace, port: 443 }, labels });
  const configurations = [configs.validating, configs.mutating]
    .filter((c): c is WebhookConfiguration => c !== undefined)
    .map((c) => excludeNamespace(c, namespace));
  const rbac = webhookRbacManifests(
    name,
    namespace,
    { configurations, certificates: { namespace, secret, mode: mode === 'capstan' ? 'issue' : 'follow' } },
    labels,
  );
  const user = options.runAsUser ?? 65532;
  const env = [
    { name: 'PORT', value: String(WEBHOOK_POD_PORT) },
    { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
    { name: 'WEBHOOK_SERVICE', value: name },
    { name: 'WEBHOOK_CERT_SECRET', value: secret },
    { name: 'WEBHOOK_CERTIFICATES', value: mode },
    ...(options.logLevel ? [{ name: 'LOG_LEVEL', value: options.logLevel }] : []),
  ];
  const certificateObjects: KubeObject[] =
    mode === 'capstan'
      ? [
          // Created empty so the webhook needs no right to create Secrets; it fills and rotates it.
          {
            apiVersion: 'v1',
            kind: 'Secret',
            type: 'Opaque',
            metadata: { name: secret, namespace, labels },
          } as Secret,
        ]
      : [
          ...(options.issuer
            ? []
            : [
                {
                  apiVersion: 'cert-manager.io/v1',
                  kind: 'Issuer',
                  metadata: { name: `${name}-selfsigned`, namespace, labels },
                  spec: { selfSigned: {} },
                } as KubeObject,
              ]),
          {
            apiVersion: 'cert-manager.io/v1',
            kind: 'Certificate',
            metadata: { name, namespace, labels },
            spec: {
              secretName: secret,
              dnsNames: [`${name}.${namespace}.svc`, `${name}.${namespace}.svc.cluster.local`],
              issuerRef: options.issuer ?? { kind: 'Issuer', name: `${name}-selfsigned` },
              privateKey: { rotationPolicy: 'Always' },
            },
          } as KubeObject,
        ];
  const service = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace, labels },
    spec: { selector, ports: [{ name: 'https', port: 443, targetPort: 'https', protocol: 'TCP' }] },
  } as Service;
  const { deployment, pdb } = programWorkload({
    name,
    namespace,
    labels,
    selector,
    replicas,
    container: 'webhook',
    image: options.image,
    ...(options.imagePullPolicy ? { imagePullPolicy: options.imagePullPolicy } : {}),
    ...(options.command ? { command: options.command } : {}),
    env,
    port: { name: 'https', number: WEBHOOK_POD_PORT, scheme: 'HTTPS' },
    runAsUser: user,
    terminationGracePeriodSeconds: 30,
    preStopSeconds: 5,
    resources: {
      requests: { cpu: '50m', memory: '64Mi', ...options.resources?.requests },
      limits: { memory: '256Mi', ...options.resources?.limits },
    },
  });
  return [
    ...(options.includeNamespace === false
      ? []
      : [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace, labels } } as Namespace]),
    ...rbac,
    ...certificateObjects,
    service,
    deployment,
    ...(replicas > 1 ? [pdb] : []),
    ...configurations,
  ];
}
