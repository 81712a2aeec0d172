// defineProvider(...).resource(...).dataSource(...): a provider as plain recorded data. Nothing runs here;
// the plugin server (serveProvider) turns calls from Terraform into calls of these handlers, and tests read
// `provider.resources`.

import { TerraformError, TerraformErrorCode } from '../errors.ts';
import type { PluginLogger } from '../protocol/plugin-log.ts';
import type { Diagnostics } from './diagnostics.ts';
import type { AnyField, Fields, ModelOf } from './schema.ts';

/** What every handler is given. */
export interface HandlerContext<Client> {
  /** What the provider's `configure` returned (an API client). */
  readonly client: Client;
  /** Add errors and warnings here (or throw a DiagnosticError). */
  readonly diagnostics: Diagnostics;
  /** Aborted when Terraform asks the provider to stop (Ctrl-C). */
  readonly signal: AbortSignal;
  /** hclog lines on stderr, shown by `TF_LOG=debug`. */
  readonly log: PluginLogger;
}

/** Values a handler returns: any subset of the model; what it leaves out keeps its planned or prior value. */
export type Returned<S extends Fields> = Partial<ModelOf<S>>;

/** The handlers and schema of a managed resource. */
export interface ResourceDefinition<S extends Fields, Client> {
  /** Markdown description (docs, language server). */
  readonly description?: string;
  /** Schema version: raise it when stored state must be rewritten, and add an `upgrade` step from the old one. */
  readonly version?: number;
  readonly schema: S;
  /**
   * Create the remote object from `plan` (unknown values, i.e. computed ones, are null) and return what the
   * API assigned (ids, computed attributes).
   */
  create(
    ctx: HandlerContext<Client> & { readonly plan: ModelOf<S>; readonly config: ModelOf<S> },
  ): Promise<Returned<S>>;
  /**
   * Read the remote truth for `state` and return it: whatever differs from the configuration shows as drift
   * in the next plan. Return null when the object is gone (a 404): Terraform drops it from state and plans
   * to create it again.
   */
  read(ctx: HandlerContext<Client> & { readonly state: ModelOf<S> }): Promise<Returned<S> | null>;
  /** Change the remote object in place. Without it, every change replaces the resource. */
  update?(
    ctx: HandlerContext<Client> & {
      readonly plan: ModelOf<S>;
      readonly state: ModelOf<S>;
      readonly config: ModelOf<S>;
    },
  ): Promise<Returned<S>>;
  /** Delete the remote object. A 404 should count as done. */
  delete(ctx: HandlerContext<Client> & { readonly state: ModelOf<S> }): Promise<void>;
  /**
   * `tofu import` / `import` blocks: the state to read from `id` (then `read` fills it). Default
   * `{ id }`, which needs an `id` attribute.
   */
  import?(ctx: HandlerContext<Client> & { readonly id: string }): Returned<S> | Promise<Returned<S>>;
  /**
   * State upgraders: `upgrade[n]` turns state stored at version n (plain JSON) into version n + 1. Terraform
   * hands over old state before anything else reads it.
   */
  readonly upgrade?: Readonly<Record<number, (state: Record<string, unknown>) => Record<string, unknown>>>;
  /** Checks across attributes, after each attribute's own validators (values may be unknown: `isUnknown`). */
  validate?(ctx: { readonly config: ModelOf<S>; readonly diagnostics: Diagnostics }): void;
}

/** The handlers and schema of a data source. */
export interface DataSourceDefinition<S extends Fields, Client> {
  readonly description?: string;
  readonly schema: S;
  /** Read the data for `config`; return the computed attributes. */
  read(ctx: HandlerContext<Client> & { readonly config: ModelOf<S> }): Promise<Returned<S>>;
  /** Checks across attributes. */
  validate?(ctx: { readonly config: ModelOf<S>; readonly diagnostics: Diagnostics }): void;
}

/** What `configure` is given: the provider configuration, environment fallbacks applied. */
export interface ConfigureContext<C extends Fields> {
  readonly config: ModelOf<C>;
  readonly diagnostics: Diagnostics;
  /** Terraform's (or OpenTofu's) version. */
  readonly terraformVersion: string;
  readonly log: PluginLogger;
}

/** Options of {@link defineProvider}. */
export interface ProviderOptions<C extends Fields, Client> {
  /** The provider's version (logged, and used by packaging). */
  readonly version?: string;
  /** Markdown description. */
  readonly description?: string;
  /** The `provider "<name>" {}` block's schema; `.env()` gives fallbacks. */
  readonly config?: C;
  /** Build what handlers share (an API client) from the configuration. */
  readonly configure?: (ctx: ConfigureContext<C>) => Client | Promise<Client>;
}

/** Any resource definition (handlers erased), as recorded. */
export type AnyResource = ResourceDefinition<Fields, unknown>;
/** Any data source definition, as recorded. */
export type AnyDataSource = DataSourceDefinition<Fields, unknown>;

/** Marks a provider across copies of Capstan. */
const brand = Symbol.for('capstan.terraform.provider');

const NAME = /^[a-z][a-z0-9_]*$/;

/** A provider definition: the recorded data and the chain that adds to it. */
export class Provider<C extends Fields = Fields, Client = unknown> {
  readonly [brand] = true;
  /** Resources by type name without the provider prefix (`team` for `capstanplatform_team`). */
  readonly resources = new Map<string, AnyResource>();
  /** Data sources by type name without the prefix. */
  readonly dataSources = new Map<string, AnyDataSource>();

  /** The provider's name: `capstanplatform` in `terraform-provider-capstanplatform`. */
  readonly name: string;
  /** What {@link defineProvider} was given. */
  readonly options: ProviderOptions<C, Client>;

  constructor(name: string, options: ProviderOptions<C, Client>) {
    this.name = name;
    this.options = options;
    if (!NAME.test(name)) {
      throw new TerraformError(TerraformErrorCode.definition, `provider name "${name}" must match ${NAME}`);
    }
  }

  /** The provider configuration's schema. */
  get configSchema(): Fields {
    return this.options.config ?? {};
  }

  /** Add a managed resource `<provider>_<name>`. */
  resource<S extends Fields>(name: string, definition: ResourceDefinition<S, Client>): this {
    this.#add(this.resources, name, definition as unknown as AnyResource, definition.schema);
    if (
      definition.version !== undefined &&
      (!Number.isInteger(definition.version) || definition.version < 0)
    ) {
      throw new TerraformError(TerraformErrorCode.definition, `${name}: version must be a whole number >= 0`);
    }
    for (let v = 0; v < (definition.version ?? 0); v++) {
      if (definition.upgrade && !definition.upgrade[v]) {
        throw new TerraformError(
          TerraformErrorCode.definition,
          `${name}: upgrade has no step from version ${v} (schema version ${definition.version})`,
        );
      }
    }
    return this;
  }

  /** Add a data source `<provider>_<name>`. */
  dataSource<S extends Fields>(name: string, definition: DataSourceDefinition<S, Client>): this {
    this.#add(this.dataSources, name, definition as unknown as AnyDataSource, definition.schema);
    return this;
  }

  /** `<provider>_<name>`. */
  typeName(name: string): string {
    return `${this.name}_${name}`;
  }

  #add<T>(into: Map<string, T>, name: string, definition: T, schema: Fields): void {
    if (!NAME.test(name)) {
      throw new TerraformError(TerraformErrorCode.definition, `type name "${name}" must match ${NAME}`);
    }
    if (into.has(name)) {
      throw new TerraformError(TerraformErrorCode.definition, `${this.typeName(name)} is defined twice`);
    }
    checkFields(this.typeName(name), schema);
    into.set(name, definition);
  }
}

function checkFields(where: string, fields: Fields): void {
  for (const [name, field] of Object.entries(fields) as [string, AnyField][]) {
    if (!NAME.test(name)) {
      throw new TerraformError(
        TerraformErrorCode.definition,
        `${where}: attribute name "${name}" must match ${NAME}`,
      );
    }
    const spec = field.spec;
    if (spec.kind === 'attribute' && !spec.required && !spec.optional && !spec.computed) {
      throw new TerraformError(
        TerraformErrorCode.definition,
        `${where}.${name}: an attribute must be required(), optional() or computed()`,
      );
    }
  }
}

/**
 * Define a provider. Chain `.resource(name, {...})` and `.dataSource(name, {...})`, export it, and serve it
 * from the executable's entry with `serveProvider(provider)`.
 *
 * ```ts
 * export const provider = defineProvider('capstanplatform', {
 *   config: { endpoint: attr.string().required().env('PLATFORM_ENDPOINT') },
 *   configure: ({ config }) => new PlatformClient(config.endpoint),
 * }).resource('team', { schema: {...}, create, read, update, delete: remove });
 * ```
 */
export function defineProvider<C extends Fields = Fields, Client = undefined>(
  name: string,
  options: ProviderOptions<C, Client> = {},
): Provider<C, Client> {
  if (options.config) checkFields(name, options.config);
  return new Provider<C, Client>(name, options);
}

/** True when `value` is a provider definition (from any copy of Capstan). */
export function isProvider(value: unknown): value is Provider {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[brand] === true;
}
