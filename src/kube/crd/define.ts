// A custom resource defined once in TypeScript: zod schemas for spec and status plus the names and
// versions a CRD needs. Defining records plain data and checks nothing, so a module that exports a
// half-finished definition still imports; `crdManifest` checks everything and reports every problem.
import type { z } from 'zod';
import { KubeError, KubeErrorCode } from '../errors.ts';
import type { ObjectMeta } from '../objects.ts';
import { apiVersionOf, type ResourceType } from '../resource-type.ts';

/** A column `kubectl get` prints (`additionalPrinterColumns`). */
export interface PrinterColumn {
  /** The header, e.g. `Replicas`. */
  readonly name: string;
  readonly type: 'integer' | 'number' | 'string' | 'boolean' | 'date';
  /** A simple JSONPath into the object, e.g. `.spec.replicas` or `.metadata.creationTimestamp`. */
  readonly jsonPath: string;
  readonly description?: string;
  /** An OpenAPI format for the value, e.g. `int32`, `date-time`. */
  readonly format?: string;
  /** 0 (default) shows in `kubectl get`; higher only with `-o wide`. */
  readonly priority?: number;
}

/**
 * The scale subresource: `/scale` (kubectl scale, HorizontalPodAutoscaler) reads and writes these paths of
 * the object as an autoscaling/v1 Scale.
 */
export interface ScaleSubresource {
  /** Where the desired replicas live, under `.spec` (an integer field), e.g. `.spec.replicas`. */
  readonly specReplicasPath: string;
  /** Where the observed replicas live, under `.status` (an integer field), e.g. `.status.replicas`. */
  readonly statusReplicasPath: string;
  /** A label selector string (under `.spec` or `.status`) an HPA needs to find the pods, e.g. `.status.selector`. */
  readonly labelSelectorPath?: string;
}

/** One served version of a custom resource. */
export interface CustomResourceVersionInput<
  Spec extends z.ZodType = z.ZodType,
  Status extends z.ZodType | undefined = z.ZodType | undefined,
> {
  /** The spec schema: what users write. */
  readonly spec: Spec;
  /** The status schema: what the controller writes. Given, the status subresource is on unless `statusSubresource: false`. */
  readonly status?: Status;
  /** Whether the apiserver serves this version (default true). */
  readonly served?: boolean;
  /** Deprecated: `true`, or the warning clients see on every request to this version. */
  readonly deprecated?: boolean | string;
  readonly printerColumns?: readonly PrinterColumn[];
  readonly scale?: ScaleSubresource;
  /** The `/status` subresource (default: on when there is a status schema). */
  readonly statusSubresource?: boolean;
  /** JSONPaths usable as field selectors (`kubectl get --field-selector spec.tier=web`), at most 8. */
  readonly selectableFields?: readonly string[];
  /** Description of the whole object, shown by `kubectl explain`. */
  readonly description?: string;
}

/** Versions by name (`v1alpha1`, `v1`...), in the order they are listed in the CRD. */
export type CustomResourceVersionsInput = Record<string, CustomResourceVersionInput>;

/** Everything a custom resource needs, as data (what {@link defineCustomResource} takes and the builder records). */
export interface CustomResourceInput<
  V extends CustomResourceVersionsInput = CustomResourceVersionsInput,
  S extends keyof V & string = keyof V & string,
> {
  /** The API group, a domain with at least one dot: `example.capstan.dev`. */
  readonly group: string;
  /** PascalCase kind: `Website`. */
  readonly kind: string;
  /** Lower-case plural in URLs; default: the kind in lower case, pluralised in English (`websites`). */
  readonly plural?: string;
  /** Default: the kind in lower case. */
  readonly singular?: string;
  /** Default: `<Kind>List`. */
  readonly listKind?: string;
  /** Default `Namespaced`. */
  readonly scope?: 'Namespaced' | 'Cluster';
  readonly shortNames?: readonly string[];
  /** Groups for `kubectl get <category>`, e.g. `all`. */
  readonly categories?: readonly string[];
  readonly versions: V;
  /** The one version etcd stores objects in; the other versions are converted to and from it. */
  readonly storage: S;
  /** Only `None` today: versions differ in apiVersion only, so their schemas must accept the same objects. */
  readonly conversion?: 'None';
  /** Labels and annotations for the CRD object itself. */
  readonly labels?: Readonly<Record<string, string>>;
  readonly annotations?: Readonly<Record<string, string>>;
}

/** A custom object as the apiserver returns it: defaults applied, so spec and status are zod's output types. */
export interface CustomObject<Spec, Status = never> {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  spec: Spec;
  status?: Status;
}

/** The object type of one version: spec and status inferred from its zod schemas. */
export type ObjectOfVersion<Ver extends CustomResourceVersionInput> = CustomObject<
  z.output<Ver['spec']>,
  Ver['status'] extends z.ZodType ? z.output<Ver['status']> : never
>;

/** One version as recorded, with its defaults filled in. */
export interface CustomResourceVersionData {
  readonly name: string;
  readonly spec: z.ZodType;
  readonly status: z.ZodType | undefined;
  readonly served: boolean;
  readonly storage: boolean;
  readonly deprecated: boolean;
  readonly deprecationWarning: string | undefined;
  readonly printerColumns: readonly PrinterColumn[];
  readonly scale: ScaleSubresource | undefined;
  readonly statusSubresource: boolean;
  readonly selectableFields: readonly string[];
  readonly description: string | undefined;
}

/** A custom resource as recorded: plain data, every default filled in, nothing checked yet. */
export interface CustomResourceData {
  readonly group: string;
  readonly kind: string;
  readonly plural: string;
  readonly singular: string;
  readonly listKind: string;
  readonly scope: 'Namespaced' | 'Cluster';
  readonly shortNames: readonly string[];
  readonly categories: readonly string[];
  readonly versions: readonly CustomResourceVersionData[];
  readonly conversion: 'None';
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
}

/** Marks a custom resource across copies of Capstan (a module may resolve `capstan/kube` to another copy than the CLI). */
const brand = Symbol.for('capstan.kube.customResource');

/**
 * A custom resource: the {@link ResourceType} of its storage version (so the kube client reads and writes
 * it typed), the recorded {@link CustomResourceData}, and typed access to its other versions.
 */
export interface CustomResource<
  V extends CustomResourceVersionsInput = CustomResourceVersionsInput,
  S extends keyof V & string = keyof V & string,
> extends ResourceType<ObjectOfVersion<V[S]>> {
  /** What was defined, as plain data; {@link crdManifest} turns it into the CRD. */
  readonly definition: CustomResourceData;
  /** The resource type of another version, e.g. to read objects as `v1beta1` while `v1` is stored. */
  forVersion<K extends keyof V & string>(name: K): ResourceType<ObjectOfVersion<V[K]>>;
  /**
   * A new object of the storage version, for `create` or `apply`: `apiVersion` and `kind` filled in, and
   * `spec` written as users write it (defaulted fields may be left out) and parsed by its zod schema, so
   * the defaults the apiserver would apply are there and a bad spec fails here, not at the apiserver.
   * Throws {@link KubeError} `CAP_ERR_KUBE_INVALID` whose `problems` list every issue.
   */
  newObject(metadata: ObjectMeta, spec: z.input<V[S]['spec']>): ObjectOfVersion<V[S]>;
}

/**
 * The English plural of a lower-case kind, as kubebuilder guesses it (`website` → `websites`, `policy` →
 * `policies`, `ingress` → `ingresses`). Irregular ones need `plural`.
 */
export function pluralOf(singular: string): string {
  if (/(s|x|z|ch|sh)$/.test(singular)) return `${singular}es`;
  if (/[^aeiou]y$/.test(singular)) return `${singular.slice(0, -1)}ies`;
  return `${singular}s`;
}

/**
 * Define a custom resource. Only records: nothing is checked until the CRD is generated
 * ({@link crdManifest}), which reports every problem at once.
 *
 * ```ts
 * export const Website = defineCustomResource({
 *   group: 'example.capstan.dev',
 *   kind: 'Website',
 *   shortNames: ['web'],
 *   versions: { v1: { spec: WebsiteSpec, status: WebsiteStatus } },
 *   storage: 'v1',
 * });
 * ```
 */
export function defineCustomResource<V extends CustomResourceVersionsInput, S extends keyof V & string>(
  input: CustomResourceInput<V, S>,
): CustomResource<V, S> {
  const singular = input.singular ?? input.kind.toLowerCase();
  const plural = input.plural ?? pluralOf(singular);
  const versions: CustomResourceVersionData[] = Object.entries(input.versions).map(([name, v]) => ({
    name,
    spec: v.spec,
    status: v.status,
    served: v.served ?? true,
    storage: name === input.storage,
    deprecated: v.deprecated !== undefined && v.deprecated !== false,
    deprecationWarning: typeof v.deprecated === 'string' ? v.deprecated : undefined,
    printerColumns: [...(v.printerColumns ?? [])],
    scale: v.scale,
    statusSubresource: v.statusSubresource ?? v.status !== undefined,
    selectableFields: [...(v.selectableFields ?? [])],
    description: v.description,
  }));
  const definition: CustomResourceData = {
    group: input.group,
    kind: input.kind,
    plural,
    singular,
    listKind: input.listKind ?? `${input.kind}List`,
    scope: input.scope ?? 'Namespaced',
    shortNames: [...(input.shortNames ?? [])],
    categories: [...(input.categories ?? [])],
    versions,
    conversion: input.conversion ?? 'None',
    labels: { ...input.labels },
    annotations: { ...input.annotations },
  };
  const typeFor = (version: string) => ({
    group: definition.group,
    version,
    kind: definition.kind,
    plural: definition.plural,
    namespaced: definition.scope === 'Namespaced',
  });
  const resource = {
    ...typeFor(input.storage),
    definition,
    forVersion(name: string) {
      if (!(name in input.versions)) {
        throw new KubeError(KubeErrorCode.crd, `${definition.kind} has no version ${name}`, {
          problems: [`no version ${name}`],
        });
      }
      return Object.freeze(typeFor(name));
    },
    newObject(metadata: ObjectMeta, spec: unknown) {
      const storage = versions.find((v) => v.storage);
      const parsed = storage ? storage.spec.safeParse(spec) : undefined;
      if (!parsed?.success) {
        const problems = parsed
          ? parsed.error.issues.map((i) => `${['spec', ...i.path.map(String)].join('.')}: ${i.message}`)
          : [`no storage version ${input.storage}`];
        throw new KubeError(
          KubeErrorCode.invalid,
          `${definition.kind} ${metadata.name ?? ''}: ${problems.join('; ')}`,
          { problems },
        );
      }
      return {
        apiVersion: apiVersionOf(typeFor(input.storage)),
        kind: definition.kind,
        metadata,
        spec: parsed.data,
      };
    },
  };
  // Not enumerable: a spread copy is a plain object, not a definition the CLI would pick up.
  Object.defineProperty(resource, brand, { value: true });
  return Object.freeze(resource) as unknown as CustomResource<V, S>;
}

/** Whether `value` is a {@link CustomResource} (made by any copy of Capstan). */
export function isCustomResource(value: unknown): value is CustomResource {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[brand] === true;
}

/**
 * The custom resources a module exports, by export name (what `capstan crd generate` looks for). Sorted by
 * name so the output does not depend on export order.
 */
export function exportedCustomResources(mod: Record<string, unknown>): Array<[string, CustomResource]> {
  return Object.entries(mod)
    .filter((entry): entry is [string, CustomResource] => isCustomResource(entry[1]))
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * The fluent form of {@link defineCustomResource}: each call records one fact and `storedAs` ends the
 * chain. It records plain data ({@link CustomResourceBuilder.input}), so both forms give the same CRD.
 *
 * ```ts
 * export const Website = customResource('Website')
 *   .inGroup('example.capstan.dev')
 *   .withShortNames('web')
 *   .version('v1', { spec: WebsiteSpec, status: WebsiteStatus })
 *   .storedAs('v1');
 * ```
 */
export function customResource(
  kind: string,
): CustomResourceBuilder<Record<never, CustomResourceVersionInput>> {
  return new CustomResourceBuilder({ group: '', kind, versions: {} });
}

type Draft = Omit<CustomResourceInput, 'storage' | 'versions'> & { versions: CustomResourceVersionsInput };

/** Built by {@link customResource}; every method returns a new builder (the chain can be forked safely). */
export class CustomResourceBuilder<V extends CustomResourceVersionsInput> {
  readonly #draft: Draft;

  constructor(draft: Draft) {
    this.#draft = draft;
  }

  /** What has been recorded so far. */
  get input(): Readonly<Draft> {
    return this.#draft;
  }

  #with(change: Partial<Draft>): CustomResourceBuilder<V> {
    return new CustomResourceBuilder<V>({ ...this.#draft, ...change });
  }

  /** The API group (a domain with a dot). */
  inGroup(group: string): CustomResourceBuilder<V> {
    return this.#with({ group });
  }

  /** Objects live in a namespace (the default). */
  namespaced(): CustomResourceBuilder<V> {
    return this.#with({ scope: 'Namespaced' });
  }

  /** Objects live outside namespaces, like nodes. */
  clusterScoped(): CustomResourceBuilder<V> {
    return this.#with({ scope: 'Cluster' });
  }

  /** The plural and singular names, when the English guess is wrong. */
  named(plural: string, singular?: string): CustomResourceBuilder<V> {
    return this.#with({ plural, ...(singular !== undefined ? { singular } : {}) });
  }

  /** Short names for kubectl (`kubectl get web`); calls add up. */
  withShortNames(...shortNames: string[]): CustomResourceBuilder<V> {
    return this.#with({ shortNames: [...(this.#draft.shortNames ?? []), ...shortNames] });
  }

  /** Categories (`kubectl get all` lists every kind in `all`); calls add up. */
  inCategories(...categories: string[]): CustomResourceBuilder<V> {
    return this.#with({ categories: [...(this.#draft.categories ?? []), ...categories] });
  }

  /** Labels of the CRD object itself. */
  withLabels(labels: Record<string, string>): CustomResourceBuilder<V> {
    return this.#with({ labels: { ...this.#draft.labels, ...labels } });
  }

  /** Annotations of the CRD object itself. */
  withAnnotations(annotations: Record<string, string>): CustomResourceBuilder<V> {
    return this.#with({ annotations: { ...this.#draft.annotations, ...annotations } });
  }

  /** Add a version; list them oldest first. */
  version<N extends string, Ver extends CustomResourceVersionInput>(
    name: N,
    version: Ver,
  ): CustomResourceBuilder<V & Record<N, Ver>> {
    return new CustomResourceBuilder<V & Record<N, Ver>>({
      ...this.#draft,
      versions: { ...this.#draft.versions, [name]: version },
    });
  }

  /** Name the storage version and finish: the result is the {@link CustomResource}. */
  storedAs<S extends keyof V & string>(storage: S): CustomResource<V, S> {
    return defineCustomResource<V, S>({ ...this.#draft, versions: this.#draft.versions as V, storage });
  }
}
