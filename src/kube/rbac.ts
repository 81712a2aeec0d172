// Least-privilege RBAC from what the controllers recorded: each rule is something the runtime does on the
// controller's behalf (controller-gen needs a marker per rule; here the builder's data is the source). What a
// reconciler does on its own through `ctx.client` cannot be seen, so the operator declares it (`rules`).
import type { ClusterRole, ClusterRoleBinding, Role, RoleBinding, ServiceAccount } from './builtin.ts';
import type { CustomResource } from './crd/define.ts';
import { isCustomResource } from './crd/define.ts';
import type { Operator, PolicyRule } from './operator.ts';
import type { ResourceType } from './resource-type.ts';

/** The rules an operator needs, by where they are granted. */
export interface OperatorRules {
  /** Granted cluster-wide (a ClusterRole): controllers watching all namespaces, cluster-scoped kinds. */
  readonly cluster: readonly PolicyRule[];
  /** Granted in one namespace each (a Role there): controllers scoped with `inNamespace`. */
  readonly namespaced: ReadonlyArray<{ readonly namespace: string; readonly rules: readonly PolicyRule[] }>;
  /** Leader election's Lease, in the operator's namespace (empty without leader election). */
  readonly leaderElection: readonly PolicyRule[];
}

/** Verbs in the order kubectl and controller-gen print them; others follow alphabetically. */
const VERB_ORDER = ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete', 'deletecollection'];

function sortVerbs(verbs: Iterable<string>): string[] {
  const rank = (v: string) => {
    const i = VERB_ORDER.indexOf(v);
    return i === -1 ? VERB_ORDER.length : i;
  };
  return [...new Set(verbs)].sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0));
}

/** Verbs per (namespace or '' for cluster-wide, group, resource). */
class Grants {
  readonly #byScope = new Map<string, Map<string, Set<string>>>();
  /** Rules kept as written (they name objects, so they cannot merge with others). */
  readonly #named = new Map<string, PolicyRule[]>();

  add(scope: string, group: string, resource: string, verbs: readonly string[]): void {
    const resources = this.#byScope.get(scope) ?? new Map<string, Set<string>>();
    this.#byScope.set(scope, resources);
    const key = `${group}\u0000${resource}`;
    const set = resources.get(key) ?? new Set<string>();
    resources.set(key, set);
    for (const v of verbs) set.add(v);
  }

  addRule(scope: string, rule: PolicyRule): void {
    if (rule.resourceNames && rule.resourceNames.length > 0) {
      const list = this.#named.get(scope) ?? [];
      list.push({
        apiGroups: [...rule.apiGroups],
        resources: [...rule.resources],
        verbs: sortVerbs(rule.verbs),
        resourceNames: [...rule.resourceNames],
      });
      this.#named.set(scope, list);
      return;
    }
    for (const group of rule.apiGroups) {
      for (const resource of rule.resources) this.add(scope, group, resource, rule.verbs);
    }
  }

  scopes(): string[] {
    return [...new Set([...this.#byScope.keys(), ...this.#named.keys()])].sort();
  }

  /** The rules of a scope: resources of one group with the same verbs share a rule, as controller-gen prints them. */
  rules(scope: string): PolicyRule[] {
    const merged = new Map<string, { group: string; verbs: string[]; resources: string[] }>();
    for (const [key, verbs] of this.#byScope.get(scope) ?? []) {
      const [group = '', resource = ''] = key.split('\u0000');
      const sorted = sortVerbs(verbs);
      const id = `${group}\u0000${sorted.join(',')}`;
      const entry = merged.get(id) ?? { group, verbs: sorted, resources: [] };
      entry.resources.push(resource);
      merged.set(id, entry);
    }
    const rules: PolicyRule[] = [...merged.values()]
      .map((e) => ({ apiGroups: [e.group], resources: e.resources.sort(), verbs: e.verbs }))
      .sort((a, b) => {
        const ka = `${a.apiGroups[0]}\u0000${a.resources[0]}`;
        const kb = `${b.apiGroups[0]}\u0000${b.resources[0]}`;
        return ka < kb ? -1 : ka > kb ? 1 : 0;
      });
    return [...rules, ...(this.#named.get(scope) ?? [])];
  }
}

/** Whether the primary kind's status is written through its `/status` subresource (a custom resource with one). */
function hasStatusSubresource(type: ResourceType): boolean {
  if (!isCustomResource(type)) return false;
  const version = (type as CustomResource).definition.versions.find((v) => v.name === type.version);
  return version?.statusSubresource ?? false;
}

/** The leader-election Lease's name: the operator's. */
export function leaseNameOf(operator: Operator): string {
  return operator.definition.name;
}

/**
 * The least-privilege rules of an operator, derived from its controllers' recorded specs:
 *
 * - primary kind (`controller(Kind)`): `list`, `watch` (the cache) and `patch` (`ctx.finalize` adds and
 *   removes its finalizer with a merge patch); `patch` on `<plural>/status` when it is a custom resource
 *   with a status subresource (`ctx.applyStatus`); `update` on `<plural>/finalizers` when it owns anything
 *   (`ctx.apply` sets `blockOwnerDeletion`, which the OwnerReferencesPermissionEnforcement admission plugin
 *   allows only to who may update the owner's finalizers);
 * - each `owns(Kind)`: `list`, `watch` (its cache), `create` and `patch` (server-side apply creates a missing
 *   child, which the apiserver authorizes as a create);
 * - each `watches(Kind, mapper)`: `list`, `watch`;
 * - `events.k8s.io` events: `create`, `patch` (`ctx.event`, and a repeat's series count), where the objects
 *   live (`default` for a cluster-scoped primary kind);
 * - with leader election, in the operator's namespace: `create` on leases, and `get`, `update` on its own
 *   Lease only;
 * - the operator's own `rules`, as written.
 *
 * A controller scoped with `inNamespace(ns)` gets its namespaced rules in a Role in `ns`; otherwise they go
 * into the ClusterRole. Cluster-scoped kinds are always cluster-wide.
 */
export function operatorRules(operator: Operator): OperatorRules {
  const grants = new Grants();
  for (const { spec } of operator.definition.controllers) {
    const scopeOf = (type: ResourceType) => (type.namespaced ? (spec.namespace ?? '') : '');
    const primary = spec.for;
    const owns = spec.watches.filter((w) => w.relation === 'owns');
    grants.add(scopeOf(primary), primary.group, primary.plural, ['list', 'watch', 'patch']);
    if (hasStatusSubresource(primary)) {
      grants.add(scopeOf(primary), primary.group, `${primary.plural}/status`, ['patch']);
    }
    if (owns.length > 0)
      grants.add(scopeOf(primary), primary.group, `${primary.plural}/finalizers`, ['update']);
    for (const watch of spec.watches) {
      if (watch.relation === 'for') continue;
      const verbs = watch.relation === 'owns' ? ['list', 'watch', 'create', 'patch'] : ['list', 'watch'];
      grants.add(scopeOf(watch.type), watch.type.group, watch.type.plural, verbs);
    }
    // The EventRecorder writes events.k8s.io/v1 Events beside the object, `default` for cluster-scoped ones.
    const eventScope = primary.namespaced ? (spec.namespace ?? '') : 'default';
    grants.add(eventScope, 'events.k8s.io', 'events', ['create', 'patch']);
  }
  for (const { namespace, ...rule } of operator.definition.rules) grants.addRule(namespace ?? '', rule);
  const scopes = grants.scopes();
  const leaderElection: PolicyRule[] = operator.definition.leaderElection
    ? [
        { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['create'] },
        {
          apiGroups: ['coordination.k8s.io'],
          resources: ['leases'],
          verbs: ['get', 'update'],
          resourceNames: [leaseNameOf(operator)],
        },
      ]
    : [];
  return {
    cluster: scopes.includes('') ? grants.rules('') : [],
    namespaced: scopes
      .filter((s) => s !== '')
      .map((namespace) => ({ namespace, rules: grants.rules(namespace) })),
    leaderElection,
  };
}

/** The RBAC objects of an operator, in the order to apply them. */
export type RbacObject = ServiceAccount | ClusterRole | ClusterRoleBinding | Role | RoleBinding;

/** A copy with mutable arrays, as the client's model types want them. */
function mutableRule(rule: PolicyRule) {
  return {
    apiGroups: [...rule.apiGroups],
    resources: [...rule.resources],
    verbs: [...rule.verbs],
    ...(rule.resourceNames ? { resourceNames: [...rule.resourceNames] } : {}),
  };
}

const LABELS = (operator: Operator) => ({
  'app.kubernetes.io/name': operator.definition.name,
  'app.kubernetes.io/managed-by': 'capstan',
});

/**
 * The ServiceAccount the operator runs as, and its roles and bindings from {@link operatorRules}: a
 * ClusterRole and ClusterRoleBinding named after the operator (when any rule is cluster-wide), a Role and
 * RoleBinding of that name in each namespace a controller is scoped to, and `<name>-leader-election` in the
 * operator's namespace.
 */
export function rbacManifests(operator: Operator): RbacObject[] {
  const { name, namespace } = operator.definition;
  const rules = operatorRules(operator);
  const labels = LABELS(operator);
  const subject = { kind: 'ServiceAccount', name, namespace };
  const out: RbacObject[] = [
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name, namespace, labels } } as ServiceAccount,
  ];
  const role = (roleName: string, ns: string, list: readonly PolicyRule[]) => {
    out.push({
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'Role',
      metadata: { name: roleName, namespace: ns, labels },
      rules: list.map(mutableRule),
    } as Role);
    out.push({
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: roleName, namespace: ns, labels },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: roleName },
      subjects: [subject],
    } as RoleBinding);
  };
  if (rules.cluster.length > 0) {
    out.push({
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: { name, labels },
      rules: rules.cluster.map(mutableRule),
    } as ClusterRole);
    out.push({
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name, labels },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name },
      subjects: [subject],
    } as ClusterRoleBinding);
  }
  for (const { namespace: ns, rules: list } of rules.namespaced) role(name, ns, list);
  if (rules.leaderElection.length > 0) role(`${name}-leader-election`, namespace, rules.leaderElection);
  return out;
}
