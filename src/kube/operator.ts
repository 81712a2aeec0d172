// An operator module's one export: what `capstan kube rbac`, `capstan kube manifests` and `runOperator` read.
// Like a controller spec and a custom resource, defining only records plain data, so the CLI can import the
// module and derive the RBAC rules and manifests without a cluster and without running anything.
import type { ControllerDefinition } from './controller.ts';
import type { CustomResource } from './crd/define.ts';

/** One RBAC rule, as in a Role or ClusterRole. */
export interface PolicyRule {
  readonly apiGroups: readonly string[];
  readonly resources: readonly string[];
  readonly verbs: readonly string[];
  /** Restrict the rule to these object names (not possible for `create`, `list`, `watch`). */
  readonly resourceNames?: readonly string[];
}

/** A rule the reconciler needs beyond what the runtime does for it; `namespace` makes it a Role's there. */
export interface ExtraRule extends PolicyRule {
  /** Grant it in this namespace only (a Role); cluster-wide when unset (the ClusterRole). */
  readonly namespace?: string;
}

/** What {@link defineOperator} takes. */
export interface OperatorInput {
  /**
   * Lower-case DNS label naming the ServiceAccount, roles, Deployment and leader-election Lease:
   * `website-operator`.
   */
  readonly name: string;
  /** The controllers it runs (each built with `controller(Kind)...build(reconcile)`). */
  // biome-ignore lint/suspicious/noExplicitAny: definitions of different kinds; a reconciler's parameter makes `unknown` unassignable
  readonly controllers: ReadonlyArray<ControllerDefinition<any>>;
  /** The custom resources it serves: their CRDs go into `capstan kube manifests`. */
  readonly resources?: readonly CustomResource[];
  /** The namespace the operator runs in (its ServiceAccount, Deployment, Lease). Default `<name>-system`. */
  readonly namespace?: string;
  /** Elect a leader through a Lease so two or more replicas can run. Default true. */
  readonly leaderElection?: boolean;
  /**
   * What the reconcilers do on their own, beyond what the runtime derives from the controller specs (a
   * Secret they read with `ctx.client`, a child they delete, a kind they apply without `owns`).
   */
  readonly rules?: readonly ExtraRule[];
}

/** An operator as recorded: every default filled in. */
export interface OperatorData {
  readonly name: string;
  readonly namespace: string;
  readonly controllers: ReadonlyArray<ControllerDefinition<unknown>>;
  readonly resources: readonly CustomResource[];
  readonly leaderElection: boolean;
  readonly rules: readonly ExtraRule[];
}

/** An operator definition (see {@link defineOperator}). */
export interface Operator {
  readonly definition: OperatorData;
}

/** Marks an operator across copies of Capstan (the module may resolve `capstan/kube` to another copy than the CLI). */
const brand = Symbol.for('capstan.kube.operator');

/**
 * Define an operator: the convention of an operator module is to export one, named `operator`, beside the
 * custom resources it defines (which `capstan crd generate` finds in the same module).
 *
 * ```ts
 * export const operator = defineOperator({
 *   name: 'website-operator',
 *   resources: [Website],
 *   controllers: [controller(Website).owns(Deployment).build(reconcile)],
 * });
 * ```
 *
 * `capstan kube rbac src/operator.ts` prints the least-privilege roles, `capstan kube manifests` everything
 * a cluster needs, and `runOperator(operator)` is the program the Deployment runs. Records only.
 */
export function defineOperator(input: OperatorInput): Operator {
  const definition: OperatorData = {
    name: input.name,
    namespace: input.namespace ?? `${input.name}-system`,
    controllers: [...input.controllers] as Array<ControllerDefinition<unknown>>,
    resources: [...(input.resources ?? [])],
    leaderElection: input.leaderElection ?? true,
    rules: [...(input.rules ?? [])],
  };
  const operator = { definition };
  Object.defineProperty(operator, brand, { value: true });
  return Object.freeze(operator);
}

/** Whether `value` is an {@link Operator} (made by any copy of Capstan). */
export function isOperator(value: unknown): value is Operator {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[brand] === true;
}

/** The operators a module exports, by export name, sorted by name (what the CLI looks for). */
export function exportedOperators(mod: Record<string, unknown>): Array<[string, Operator]> {
  return Object.entries(mod)
    .filter((entry): entry is [string, Operator] => isOperator(entry[1]))
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}
