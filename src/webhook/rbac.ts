// Least-privilege RBAC of a webhook running in the cluster: what the injector and the certificates do on
// its behalf, named object by object. List and watch are authorized by name too, because both go through
// a `metadata.name` field selector (the apiserver reads the name from it for authorization).
import type {
  ClusterRole,
  ClusterRoleBinding,
  ExtraRule,
  PolicyRule,
  RbacObject,
  Role,
  RoleBinding,
  ServiceAccount,
} from '../kube/index.ts';
import type { WebhookConfiguration } from './ca-injection.ts';
import { WebhookError, WebhookErrorCode } from './errors.ts';

/** Where the webhook's certificates come from, for its rules. */
export interface WebhookCertificateAccess {
  /** The Secret's namespace (the webhook's own). */
  readonly namespace: string;
  /** The Secret's name. */
  readonly secret: string;
  /**
   * `issue`: Capstan's CA kept in the Secret (read, watched, updated); `follow`: cert-manager's Secret
   * (read and watched only).
   */
  readonly mode: 'issue' | 'follow';
  /** `issue` only: the webhook creates the Secret itself (else the manifests create it empty). Default false. */
  readonly createSecret?: boolean;
}

/** Options of {@link webhookRules}. */
export interface WebhookRbacOptions {
  /** The configurations it keeps injected with the CA bundle. */
  readonly configurations: readonly WebhookConfiguration[];
  /** As {@link InjectCaBundleOptions.apply}: `full` also creates the configurations. Default `caBundle`. */
  readonly apply?: 'caBundle' | 'full';
  /** Its certificates' Secret; none when the certificate comes from files or memory. */
  readonly certificates?: WebhookCertificateAccess;
  /** What the handlers read or write on their own (a ConfigMap of policy, a lookup of the namespace). */
  readonly rules?: readonly ExtraRule[];
}

/** A webhook's rules, by where they are granted. */
export interface WebhookRules {
  /** A ClusterRole: the configurations are cluster-scoped. */
  readonly cluster: readonly PolicyRule[];
  /** A Role per namespace: the certificate Secret, namespaced extra rules. */
  readonly namespaced: ReadonlyArray<{ readonly namespace: string; readonly rules: readonly PolicyRule[] }>;
}

const PLURAL = {
  MutatingWebhookConfiguration: 'mutatingwebhookconfigurations',
  ValidatingWebhookConfiguration: 'validatingwebhookconfigurations',
} as const;

/**
 * The least-privilege rules of a webhook in the cluster:
 *
 * - each configuration kind: `get`, `list`, `watch`, `patch` on its names only (the injector reads,
 *   watches for drift and applies the caBundle); with `apply: 'full'` also `create`, which RBAC cannot
 *   restrict by name (server-side apply of a missing object is a create);
 * - the certificate Secret, by name: `get`, `list`, `watch`, and `update` when Capstan issues; `create` in
 *   its namespace only with `createSecret`;
 * - the `rules` given, as written.
 */
export function webhookRules(options: WebhookRbacOptions): WebhookRules {
  const cluster: PolicyRule[] = [];
  const byNamespace = new Map<string, PolicyRule[]>();
  const add = (namespace: string | undefined, rule: PolicyRule) => {
    if (namespace === undefined) cluster.push(rule);
    else byNamespace.set(namespace, [...(byNamespace.get(namespace) ?? []), rule]);
  };
  for (const kind of ['MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration'] as const) {
    const names = options.configurations
      .filter((c) => c.kind === kind)
      .map((c) => c.metadata?.name)
      .filter((n): n is string => typeof n === 'string' && n !== '');
    if (names.length === 0) continue;
    const base = { apiGroups: ['admissionregistration.k8s.io'], resources: [PLURAL[kind]] };
    add(undefined, {
      ...base,
      verbs: ['get', 'list', 'watch', 'patch'],
      resourceNames: [...new Set(names)].sort(),
    });
    if (options.apply === 'full') add(undefined, { ...base, verbs: ['create'] });
  }
  const certs = options.certificates;
  if (certs) {
    if (!certs.namespace || !certs.secret) {
      throw new WebhookError(WebhookErrorCode.usage, 'certificates need the Secret namespace and name');
    }
    const verbs = certs.mode === 'issue' ? ['get', 'list', 'watch', 'update'] : ['get', 'list', 'watch'];
    add(certs.namespace, { apiGroups: [''], resources: ['secrets'], verbs, resourceNames: [certs.secret] });
    if (certs.mode === 'issue' && certs.createSecret) {
      add(certs.namespace, { apiGroups: [''], resources: ['secrets'], verbs: ['create'] });
    }
  }
  for (const { namespace, ...rule } of options.rules ?? []) add(namespace, rule);
  return {
    cluster,
    namespaced: [...byNamespace]
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([namespace, rules]) => ({ namespace, rules })),
  };
}

/** A copy with mutable arrays, as the client's model types want them. */
function mutableRule(rule: PolicyRule) {
  return {
    apiGroups: [...rule.apiGroups],
    resources: [...rule.resources],
    verbs: [...rule.verbs],
    ...(rule.resourceNames ? { resourceNames: [...rule.resourceNames] } : {}),
  };
}

/**
 * The ServiceAccount `name` in `namespace` that the webhook runs as, and the ClusterRole, Roles and bindings
 * granting it {@link webhookRules}, all named `name` (the ClusterRole `<name>-webhook`, as cluster-wide
 * names are shared with everything else in the cluster).
 */
export function webhookRbacManifests(
  name: string,
  namespace: string,
  options: WebhookRbacOptions,
  labels: Record<string, string> = {},
): RbacObject[] {
  const rules = webhookRules(options);
  const subject = { kind: 'ServiceAccount', name, namespace };
  const out: RbacObject[] = [
    {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name, namespace, labels: { ...labels } },
    } as ServiceAccount,
  ];
  if (rules.cluster.length > 0) {
    const clusterName = `${name}-webhook`;
    out.push(
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRole',
        metadata: { name: clusterName, labels: { ...labels } },
        rules: rules.cluster.map(mutableRule),
      } as ClusterRole,
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRoleBinding',
        metadata: { name: clusterName, labels: { ...labels } },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: clusterName },
        subjects: [subject],
      } as ClusterRoleBinding,
    );
  }
  for (const { namespace: ns, rules: list } of rules.namespaced) {
    out.push(
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'Role',
        metadata: { name, namespace: ns, labels: { ...labels } },
        rules: list.map(mutableRule),
      } as Role,
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'RoleBinding',
        metadata: { name, namespace: ns, labels: { ...labels } },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name },
        subjects: [subject],
      } as RoleBinding,
    );
  }
  return out;
}
