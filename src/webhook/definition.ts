// The fluent API that records admission bindings: `webhook.when(Pod).isCreated().inNamespace('apps')
// .validate(fn)`. The chain only records plain data (a Binding); the server runs it later, and tests read
// `webhook.bindings`. Each step offers only what may come next: a DELETE cannot be mutated.
import type { V1LabelSelector } from '@kubernetes/client-node';
import type { ResourceType } from '../kube/index.ts';
import type { Logger } from '../runtime/index.ts';
import { WebhookError, WebhookErrorCode } from './errors.ts';
import type {
  AdmissionReviewRequest,
  GroupVersionKind,
  GroupVersionResource,
  JsonObject,
  Operation,
  UserInfo,
} from './review.ts';

/** What the apiserver does when the webhook fails or cannot be reached; also what a throwing handler answers. */
export type FailurePolicy = 'Fail' | 'Ignore';
/** Whether handlers touch anything outside the object (they must not, or must skip it on dry runs). */
export type SideEffects = 'None' | 'NoneOnDryRun';
/** Validating or mutating. */
export type WebhookType = 'validating' | 'mutating';

/** The answer of a handler: allow, or deny with a code and a message. Made by `req.allow()` / `req.deny()`. */
export type Verdict =
  | { readonly allowed: true }
  | { readonly allowed: false; readonly code: number; readonly message: string; readonly reason?: string };

/** `object` and `oldObject` as each operation has them. */
export type ObjectsOf<T, Op extends Operation> = Op extends 'CREATE'
  ? { readonly object: T; readonly oldObject: undefined }
  : Op extends 'UPDATE'
    ? { readonly object: T; readonly oldObject: T }
    : Op extends 'DELETE'
      ? // The object being deleted; absent only from very old apiservers.
        { readonly object: undefined; readonly oldObject: T | undefined }
      : // CONNECT: `object` is the connect options (e.g. PodExecOptions), not the object itself.
        { readonly object: JsonObject | undefined; readonly oldObject: undefined };

/** What every handler is given: the request, decoded and typed, and the means to answer. */
export type AdmissionContext<T, Op extends Operation> = ObjectsOf<T, Op> & {
  readonly uid: string;
  readonly operation: Op;
  readonly kind: GroupVersionKind;
  readonly resource: GroupVersionResource;
  readonly subResource: string | undefined;
  readonly name: string | undefined;
  readonly namespace: string | undefined;
  readonly userInfo: UserInfo;
  /** True when nothing will be persisted: skip side effects. */
  readonly dryRun: boolean;
  /** Options of the operation (CreateOptions, UpdateOptions, DeleteOptions), when sent. */
  readonly options: JsonObject | undefined;
  /** The raw request, as decoded. */
  readonly request: AdmissionReviewRequest;
  /** Aborted at the handler's deadline (the apiserver's timeout minus a margin) or when the client goes away. */
  readonly signal: AbortSignal;
  /** The server's logger with this request's uid, kind and operation. */
  readonly log: Logger;
  /** Let the request through. */
  allow(): Verdict;
  /** Refuse the request: the client sees `message`; `code` defaults to 403 (Forbidden). */
  deny(message: string, code?: number): Verdict;
  /** Add a warning the client (kubectl) shows, allowed or not. */
  warn(message: string): void;
  /** Add an audit annotation (`key` is prefixed by the apiserver with the webhook's name). */
  annotateAudit(key: string, value: string): void;
};

/**
 * What a mutating handler is given: as {@link AdmissionContext}, but `object` is a deep copy the handler
 * changes in place; the JSON Patch sent back is the difference from the original.
 */
export type MutationContext<T, Op extends 'CREATE' | 'UPDATE'> = AdmissionContext<T, Op>;

/** A validating handler: must say allow or deny. */
export type ValidateHandler<T, Op extends Operation> = (
  req: AdmissionContext<T, Op>,
) => Verdict | Promise<Verdict>;
/** A mutating handler: changes `req.object`; may deny by returning `req.deny(...)`. */
export type MutateHandler<T, Op extends 'CREATE' | 'UPDATE'> = (
  req: MutationContext<T, Op>,
  // biome-ignore lint/suspicious/noConfusingVoidType: a handler that changes the object returns nothing.
) => void | Verdict | Promise<void | Verdict>;

/** One recorded `when(...)...validate|mutate(...)` chain: plain data the server runs. */
export interface Binding {
  readonly type: WebhookType;
  readonly resource: ResourceType<unknown>;
  readonly operations: readonly Operation[];
  /** `pods/exec` style subresource the binding is about, or undefined for the object itself. */
  readonly subresource: string | undefined;
  /** Only objects in one of these namespaces (empty: any). */
  readonly namespaces: readonly string[];
  /** Only objects whose labels match: each key present, and equal to the value when one is given. */
  readonly labels: Readonly<Record<string, string | undefined>>;
  // biome-ignore lint/suspicious/noExplicitAny: the handler's request type is erased once recorded.
  readonly handler: (req: any) => unknown;
}

/** Options of {@link defineWebhook}; each is the default for every webhook of the definition. */
export interface WebhookOptions {
  /**
   * Names the Validating/MutatingWebhookConfiguration objects and, with {@link domain}, each webhook in them.
   * A DNS-1123 label: lower case letters, digits and '-'.
   */
  name: string;
  /** Suffix of the webhooks' names, which Kubernetes wants fully qualified; default `capstan.dev`. */
  domain?: string;
  /** Default `Fail`: a broken or unreachable webhook blocks requests rather than letting unchecked ones in. */
  failurePolicy?: FailurePolicy;
  /** 1 to 30; default 10, the apiserver's default. Handlers get this minus {@link deadlineMarginMs}. */
  timeoutSeconds?: number;
  /** Time kept back from the apiserver's timeout to answer by the failure policy before it gives up; default 1000. */
  deadlineMarginMs?: number;
  /** Default `None`. */
  sideEffects?: SideEffects;
  /** Only objects in namespaces matching this (in the emitted configuration; e.g. leave out kube-system). */
  namespaceSelector?: V1LabelSelector;
  /** Only objects whose labels match this (in the emitted configuration). */
  objectSelector?: V1LabelSelector;
  /** Default `Equivalent`: requests to other versions of the same resource are converted and sent too. */
  matchPolicy?: 'Exact' | 'Equivalent';
  /** Mutating webhooks only: call again when a later mutation changed the object. Default `Never`. */
  reinvocationPolicy?: 'Never' | 'IfNeeded';
}

/** A {@link WebhookOptions} with each default filled in. */
export type ResolvedWebhookOptions = Required<Omit<WebhookOptions, 'namespaceSelector' | 'objectSelector'>> &
  Pick<WebhookOptions, 'namespaceSelector' | 'objectSelector'>;

/** The bindings of one served path: one kind, validating or mutating (like controller-runtime's paths). */
export interface HandlerSet {
  /** `/validate-<group with dots as dashes>-<version>-<kind lower case>`, `/mutate-...`: `/mutate--v1-pod`. */
  readonly path: string;
  readonly type: WebhookType;
  readonly resource: ResourceType<unknown>;
  /** The webhook's name in the configuration: `validate-core-v1-pod.<name>.<domain>`. */
  readonly webhookName: string;
  readonly bindings: readonly Binding[];
}

const webhookBrand = Symbol.for('capstan.webhook');

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const QUALIFIED_KEY =
  /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;

/** The served path of a kind's validating or mutating handlers, as controller-runtime names them. */
export function webhookPath(type: WebhookType, resource: GroupVersionKind): string {
  const prefix = type === 'validating' ? 'validate' : 'mutate';
  return `/${prefix}-${resource.group.replaceAll('.', '-')}-${resource.version}-${resource.kind.toLowerCase()}`;
}

/** Filters and the final action of a `when(...)` chain; the operations chosen limit what may follow. */
export type BindingBuilder<T, Op extends Operation> = {
  /** Only objects in one of these namespaces (repeatable; cluster-scoped objects never match). */
  inNamespace(...namespaces: string[]): BindingBuilder<T, Op>;
  /** Only objects carrying this label (with this value, when one is given). Repeatable: all must match. */
  withLabel(key: string, value?: string): BindingBuilder<T, Op>;
  /** Answer with `handler`'s verdict. */
  validate(handler: ValidateHandler<T, Op>): Binding;
} & ([Op] extends ['CREATE' | 'UPDATE'] ? MutateStep<T, Op> : unknown);

/** Offered only after CREATE and UPDATE: there is no object to change on DELETE or CONNECT. */
export interface MutateStep<T, Op extends 'CREATE' | 'UPDATE'> {
  /** Change the object: the patch sent back is what `handler` changed. */
  mutate(handler: MutateHandler<T, Op>): Binding;
}

/** The operation step of a `when(kind)` chain. */
export interface WhenKind<T> {
  isCreated(): BindingBuilder<T, 'CREATE'>;
  isUpdated(): BindingBuilder<T, 'UPDATE'>;
  isCreatedOrUpdated(): BindingBuilder<T, 'CREATE' | 'UPDATE'>;
  isDeleted(): BindingBuilder<T, 'DELETE'>;
  /** A CONNECT to a subresource (`exec`, `attach`, `portforward`, `proxy`): validate only. */
  isConnected(subresource: string): BindingBuilder<T, 'CONNECT'>;
}

interface Draft {
  resource: ResourceType<unknown>;
  operations: Operation[];
  subresource: string | undefined;
  namespaces: string[];
  labels: Record<string, string | undefined>;
}

/**
 * A set of admission handlers and the options they are served and registered with. Build it with
 * {@link defineWebhook}, add handlers with {@link when}, serve it with `createWebhookServer`, and emit its
 * configurations with `webhookConfigurations` (or `capstan webhook manifests`).
 */
export class Webhook {
  /** Marks webhooks made by any copy of Capstan (the CLI's and the user module's may differ). */
  readonly [webhookBrand] = true;
  readonly options: ResolvedWebhookOptions;
  readonly #bindings: Binding[] = [];

  constructor(options: WebhookOptions) {
    this.options = resolveOptions(options);
  }

  /** Every recorded binding, in the order it was added. */
  get bindings(): readonly Binding[] {
    return [...this.#bindings];
  }

  /** Start a binding for objects of `type` (a kind of `capstan/kube`, e.g. `Pod`, or a custom resource). */
  when<T>(type: ResourceType<T>): WhenKind<T> {
    if (!type || typeof type.kind !== 'string' || !type.kind || !type.version || !type.plural) {
      throw new WebhookError(
        WebhookErrorCode.usage,
        'when() needs a resource type (group, version, kind, plural)',
      );
    }
    const start = (operations: Operation[], subresource?: string) =>
      this.#builder<T, never>({
        resource: type as ResourceType<unknown>,
        operations,
        subresource,
        namespaces: [],
        labels: {},
      });
    return {
      isCreated: () => start(['CREATE']),
      isUpdated: () => start(['UPDATE']),
      isCreatedOrUpdated: () => start(['CREATE', 'UPDATE']),
      isDeleted: () => start(['DELETE']),
      isConnected: (subresource: string) => {
        if (!subresource || !DNS_LABEL.test(subresource)) {
          throw new WebhookError(
            WebhookErrorCode.usage,
            `isConnected needs a subresource such as 'exec', not ${JSON.stringify(subresource)}`,
          );
        }
        return start(['CONNECT'], subresource);
      },
    } as WhenKind<T>;
  }

  /** The served paths: one per kind and type, in the order their first binding was added. */
  handlerSets(): HandlerSet[] {
    const sets = new Map<
      string,
      { type: WebhookType; resource: ResourceType<unknown>; bindings: Binding[] }
    >();
    for (const binding of this.#bindings) {
      const path = webhookPath(binding.type, binding.resource);
      const set = sets.get(path);
      if (set) set.bindings.push(binding);
      else sets.set(path, { type: binding.type, resource: binding.resource, bindings: [binding] });
    }
    return [...sets].map(([path, set]) => ({
      path,
      type: set.type,
      resource: set.resource,
      webhookName: `${path.slice(1).replace('--', '-core-')}.${this.options.name}.${this.options.domain}`,
      bindings: set.bindings,
    }));
  }

  #builder<T, Op extends Operation>(draft: Draft): BindingBuilder<T, Op> {
    const record = (type: WebhookType, handler: unknown): Binding => {
      if (typeof handler !== 'function') {
        throw new WebhookError(
          WebhookErrorCode.usage,
          `${type === 'validating' ? 'validate' : 'mutate'}() needs a function`,
        );
      }
      if (type === 'mutating' && draft.operations.some((op) => op === 'DELETE' || op === 'CONNECT')) {
        throw new WebhookError(WebhookErrorCode.usage, 'only CREATE and UPDATE can be mutated');
      }
      const binding: Binding = Object.freeze({
        type,
        resource: draft.resource,
        operations: Object.freeze([...draft.operations]),
        subresource: draft.subresource,
        namespaces: Object.freeze([...draft.namespaces]),
        labels: Object.freeze({ ...draft.labels }),
        handler: handler as Binding['handler'],
      });
      this.#bindings.push(binding);
      return binding;
    };
    const builder = {
      inNamespace: (...namespaces: string[]) => {
        const bad = namespaces.filter((ns) => typeof ns !== 'string' || !DNS_LABEL.test(ns));
        if (namespaces.length === 0 || bad.length > 0) {
          throw new WebhookError(
            WebhookErrorCode.usage,
            `inNamespace needs namespace names (DNS-1123 labels), not ${JSON.stringify(namespaces)}`,
          );
        }
        if (!draft.resource.namespaced) {
          throw new WebhookError(
            WebhookErrorCode.usage,
            `inNamespace on ${draft.resource.kind}, which is cluster-scoped: it would never match`,
          );
        }
        draft.namespaces.push(...namespaces);
        return builder;
      },
      withLabel: (key: string, value?: string) => {
        if (typeof key !== 'string' || !QUALIFIED_KEY.test(key)) {
          throw new WebhookError(
            WebhookErrorCode.usage,
            `withLabel needs a label key, not ${JSON.stringify(key)}`,
          );
        }
        draft.labels[key] = value;
        return builder;
      },
      validate: (handler: unknown) => record('validating', handler),
      mutate: (handler: unknown) => record('mutating', handler),
    };
    return builder as unknown as BindingBuilder<T, Op>;
  }
}

function resolveOptions(options: WebhookOptions): ResolvedWebhookOptions {
  const problems: string[] = [];
  const name = options?.name;
  if (typeof name !== 'string' || !DNS_LABEL.test(name) || name.length > 63) {
    problems.push(`name must be a DNS-1123 label (lower case, digits, '-'), not ${JSON.stringify(name)}`);
  }
  const domain = options?.domain ?? 'capstan.dev';
  if (!DNS_SUBDOMAIN.test(domain) || !domain.includes('.')) {
    problems.push(`domain must be a DNS subdomain with a dot, not ${JSON.stringify(domain)}`);
  }
  const timeoutSeconds = options?.timeoutSeconds ?? 10;
  if (!Number.isInteger(timeoutSeconds) || timeoutSeconds < 1 || timeoutSeconds > 30) {
    problems.push(
      `timeoutSeconds must be an integer from 1 to 30 (the apiserver's range), not ${timeoutSeconds}`,
    );
  }
  const deadlineMarginMs = options?.deadlineMarginMs ?? 1000;
  if (
    !Number.isFinite(deadlineMarginMs) ||
    deadlineMarginMs < 0 ||
    deadlineMarginMs >= timeoutSeconds * 1000
  ) {
    problems.push(`deadlineMarginMs must be from 0 to below timeoutSeconds, not ${deadlineMarginMs}`);
  }
  const failurePolicy = options?.failurePolicy ?? 'Fail';
  if (failurePolicy !== 'Fail' && failurePolicy !== 'Ignore') {
    problems.push(`failurePolicy must be Fail or Ignore, not ${JSON.stringify(failurePolicy)}`);
  }
  const sideEffects = options?.sideEffects ?? 'None';
  if (sideEffects !== 'None' && sideEffects !== 'NoneOnDryRun') {
    problems.push(`sideEffects must be None or NoneOnDryRun, not ${JSON.stringify(sideEffects)}`);
  }
  const matchPolicy = options?.matchPolicy ?? 'Equivalent';
  if (matchPolicy !== 'Exact' && matchPolicy !== 'Equivalent') {
    problems.push(`matchPolicy must be Exact or Equivalent, not ${JSON.stringify(matchPolicy)}`);
  }
  const reinvocationPolicy = options?.reinvocationPolicy ?? 'Never';
  if (reinvocationPolicy !== 'Never' && reinvocationPolicy !== 'IfNeeded') {
    problems.push(`reinvocationPolicy must be Never or IfNeeded, not ${JSON.stringify(reinvocationPolicy)}`);
  }
  if (problems.length > 0) {
    throw new WebhookError(WebhookErrorCode.usage, `invalid webhook definition: ${problems.join('; ')}`, {
      problems,
    });
  }
  return Object.freeze({
    name,
    domain,
    failurePolicy,
    timeoutSeconds,
    deadlineMarginMs,
    sideEffects,
    matchPolicy,
    reinvocationPolicy,
    ...(options.namespaceSelector && { namespaceSelector: options.namespaceSelector }),
    ...(options.objectSelector && { objectSelector: options.objectSelector }),
  });
}

/**
 * Define a webhook: admission handlers for kinds and operations, and how they are registered.
 *
 * ```ts
 * export const webhook = defineWebhook({ name: 'pod-policy', failurePolicy: 'Fail' });
 * webhook.when(Pod).isCreated().validate((req) =>
 *   req.object.spec?.hostNetwork ? req.deny('no host network') : req.allow());
 * webhook.when(Pod).isCreated().withLabel('sidecar', 'true').mutate((req) => {
 *   req.object.spec?.containers.push({ name: 'proxy', image: 'proxy:1' });
 * });
 * ```
 */
export function defineWebhook(options: WebhookOptions): Webhook {
  return new Webhook(options);
}

/** Whether `value` is a {@link Webhook} (made by any copy of Capstan). */
export function isWebhook(value: unknown): value is Webhook {
  return (
    typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[webhookBrand] === true
  );
}

/** The webhooks a module exports (for `capstan webhook manifests`), by export name, sorted by name. */
export function exportedWebhooks(mod: Record<string, unknown>): Array<[string, Webhook]> {
  return Object.entries(mod)
    .filter((entry): entry is [string, Webhook] => isWebhook(entry[1]))
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}
