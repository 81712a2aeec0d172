// Read and set replicas through the Scale subresource of any resource that has one: Deployments,
// StatefulSets, ReplicaSets, and custom resources whose CRD declares `subresources.scale`.
import { type KubeClient, KubeError, KubeErrorCode, type ResourceClient, type Scale } from '../kube/index.ts';
import { ScalingError, ScalingErrorCode } from './errors.ts';
import { type ResolvedResource, resolveResource } from './resolve.ts';

/** What to scale: `kind/name` as typed (`deployment/web`, `widgets.example.com/w1`), or its parts. */
export type ScaleTargetRef = string | { readonly kind: string; readonly name: string };

/** Options of {@link readScale} and {@link scaleResource}. */
export interface ScaleCallOptions {
  /** Namespace of a namespaced target. Default: the client's (its kubeconfig context's), else `default`. */
  namespace?: string;
  signal?: AbortSignal;
}

/** Options of {@link scaleResource}. */
export interface ScaleResourceOptions extends ScaleCallOptions {
  /**
   * Precondition, as `kubectl scale --current-replicas`: scale only if `spec.replicas` is this now, else
   * fail with `CAP_ERR_SCALING_CONFLICT` (also when it changes between the read and the write).
   */
  currentReplicas?: number;
  /** Ask the apiserver to validate without persisting (`dryRun=All`). */
  dryRun?: boolean;
}

/** The scale of one object as the subresource reports it. */
export interface ScaleState {
  /** `deployments.apps`, `widgets.example.com`: what was resolved. */
  readonly resource: string;
  readonly kind: string;
  readonly name: string;
  /** Undefined for a cluster-scoped resource. */
  readonly namespace: string | undefined;
  /** `spec.replicas`: what is asked for. */
  readonly specReplicas: number;
  /** `status.replicas`: what the controller observed last. */
  readonly statusReplicas: number;
  /** `status.selector`, the pods' label selector, when the resource reports one. */
  readonly selector: string | undefined;
}

/** What {@link scaleResource} did. */
export interface ScaleResult extends ScaleState {
  /** `spec.replicas` before the change. */
  readonly previousReplicas: number;
}

/** `deployment/web` → `{ kind: 'deployment', name: 'web' }`; anything else is a usage error. */
export function parseTargetRef(ref: ScaleTargetRef): { kind: string; name: string } {
  if (typeof ref !== 'string') {
    if (!ref.kind || !ref.name) {
      throw new ScalingError(ScalingErrorCode.usage, 'a scale target needs a kind and a name');
    }
    return { kind: ref.kind, name: ref.name };
  }
  const parts = ref.split('/');
  if (parts.length !== 2 || !parts[0] || !parts[1]) {
    throw new ScalingError(
      ScalingErrorCode.usage,
      `not a <kind>/<name>: "${ref}" (for example deployment/web or widgets.example.com/w1)`,
    );
  }
  return { kind: parts[0], name: parts[1] };
}

/** A replica count the apiserver would take: an integer from 0 to 2^31-1. */
export function checkReplicas(replicas: number, what = 'replicas'): number {
  if (!Number.isInteger(replicas) || replicas < 0 || replicas > 2_147_483_647) {
    throw new ScalingError(
      ScalingErrorCode.usage,
      `${what} must be a whole number from 0 up, got ${String(replicas)}`,
    );
  }
  return replicas;
}

/**
 * A target resolved and checked once, to read and write its scale many times (an autoscaler's loop). Made
 * by {@link scaleTarget}.
 */
export class ScaleTarget {
  readonly resolved: ResolvedResource;
  readonly name: string;
  readonly namespace: string | undefined;
  readonly #client: ResourceClient<unknown>;

  constructor(kube: KubeClient, resolved: ResolvedResource, name: string, namespace: string | undefined) {
    this.resolved = resolved;
    this.name = name;
    this.namespace = resolved.type.namespaced ? namespace : undefined;
    this.#client = kube.resource(resolved.type, this.namespace);
  }

  /** `deployments.apps/web in namespace shop`, for messages. */
  toString(): string {
    const ns = this.namespace === undefined ? '' : ` in namespace ${this.namespace}`;
    return `${this.resolved.resource}/${this.name}${ns}`;
  }

  #state(scale: Scale): ScaleState {
    return {
      resource: this.resolved.resource,
      kind: this.resolved.type.kind,
      name: this.name,
      namespace: this.namespace,
      specReplicas: scale.spec?.replicas ?? 0,
      statusReplicas: scale.status?.replicas ?? 0,
      selector: scale.status?.selector || undefined,
    };
  }

  /** A 404 on the object as "not found", naming what was looked for; other errors pass unchanged. */
  #explain(err: unknown): unknown {
    if (err instanceof KubeError && err.code === KubeErrorCode.notFound) {
      return new ScalingError(ScalingErrorCode.notFound, `${this} not found`, { cause: err });
    }
    if (err instanceof KubeError && err.code === KubeErrorCode.conflict) {
      return new ScalingError(ScalingErrorCode.conflict, `${this} changed while scaling it: ${err.message}`, {
        cause: err,
      });
    }
    return err;
  }

  /** The scale now (`spec.replicas`, `status.replicas`, the selector). */
  async read(options: { signal?: AbortSignal } = {}): Promise<ScaleState> {
    try {
      return this.#state(await this.#client.getScale(this.name, options));
    } catch (err) {
      throw this.#explain(err);
    }
  }

  /** Set `spec.replicas` (a merge patch of the subresource); see {@link ScaleResourceOptions}. */
  async set(replicas: number, options: Omit<ScaleResourceOptions, 'namespace'> = {}): Promise<ScaleResult> {
    checkReplicas(replicas);
    if (options.currentReplicas !== undefined) checkReplicas(options.currentReplicas, 'current replicas');
    const call = {
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.dryRun ? { dryRun: true } : {}),
    };
    try {
      const before = await this.#client.getScale(this.name, call);
      const previousReplicas = before.spec?.replicas ?? 0;
      let after: Scale;
      if (options.currentReplicas !== undefined) {
        if (previousReplicas !== options.currentReplicas) {
          throw new ScalingError(
            ScalingErrorCode.conflict,
            `${this} has ${previousReplicas} replicas, not the expected ${options.currentReplicas}`,
          );
        }
        // The resourceVersion read makes the write fail if anything changed in between.
        after = await this.#client.replaceScale(
          this.name,
          { metadata: before.metadata ?? {}, spec: { replicas } },
          call,
        );
      } else {
        after = await this.#client.scale(this.name, replicas, call);
      }
      return { ...this.#state(after), previousReplicas };
    } catch (err) {
      throw this.#explain(err);
    }
  }
}

/**
 * Resolve `ref`'s kind by discovery and check it has a scale subresource: `CAP_ERR_SCALING_UNKNOWN_KIND`
 * when nothing matches the kind, `CAP_ERR_SCALING_NOT_SCALABLE` when the resource has no `/scale`.
 */
export async function scaleTarget(
  kube: KubeClient,
  ref: ScaleTargetRef,
  options: ScaleCallOptions = {},
): Promise<ScaleTarget> {
  const { kind, name } = parseTargetRef(ref);
  const resolved = await resolveResource(kube, kind, options.signal ? { signal: options.signal } : {});
  if (!resolved.scalable) {
    throw new ScalingError(
      ScalingErrorCode.notScalable,
      `${resolved.resource} has no scale subresource: it cannot be scaled`,
    );
  }
  return new ScaleTarget(kube, resolved, name, options.namespace || kube.namespace || 'default');
}

/** The scale of `ref` now, through its Scale subresource. */
export async function readScale(
  kube: KubeClient,
  ref: ScaleTargetRef,
  options: ScaleCallOptions = {},
): Promise<ScaleState> {
  const target = await scaleTarget(kube, ref, options);
  return target.read(options.signal ? { signal: options.signal } : {});
}

/**
 * Set the replicas of `ref` (`deployment/web`, `statefulset/db`, `widgets.example.com/w1`...) through its
 * Scale subresource, as `kubectl scale` does. Errors: `CAP_ERR_SCALING_USAGE` (a bad ref or count),
 * `UNKNOWN_KIND`, `NOT_SCALABLE`, `NOT_FOUND`, `CONFLICT` (the `currentReplicas` precondition); the
 * apiserver's own refusals (RBAC, validation) come through as `KubeError`s.
 *
 * ```ts
 * const r = await scaleResource(kube, 'deployment/web', 3, { namespace: 'shop' });
 * console.log(`${r.resource}/${r.name}: ${r.previousReplicas} → ${r.specReplicas}`);
 * ```
 */
export async function scaleResource(
  kube: KubeClient,
  ref: ScaleTargetRef,
  replicas: number,
  options: ScaleResourceOptions = {},
): Promise<ScaleResult> {
  checkReplicas(replicas);
  const target = await scaleTarget(kube, ref, options);
  const { namespace: _ignored, ...rest } = options;
  return target.set(replicas, rest);
}
