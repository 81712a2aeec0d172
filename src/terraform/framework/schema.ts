// Schemas of providers, resources and data sources: `attr.string().required().describe('...')` records a
// plain AttributeSpec; the builders only record, and each step returns a new builder, so one definition
// can be reused in several schemas. The TypeScript model of a schema follows from it (ModelOf).
import { type CtyType, type CtyValue, typeToJson } from '../protocol/cty.ts';

/** A check of one attribute's value, given when it is known and not null: a message when it is wrong. */
export type Validator<T> = (value: T) => string | undefined | readonly string[];

/** How a nested attribute or block holds its objects. */
export type NestingMode = 'single' | 'list' | 'set' | 'map';

/** What an attribute builder records. */
export interface AttributeSpec {
  readonly kind: 'attribute';
  /** The value's cty type. */
  readonly type: CtyType;
  /** For nested attributes (`attr.object`, `attr.listOf(attr.object)`...): the nesting and the inner schema. */
  readonly nested?: { readonly mode: NestingMode; readonly fields: Readonly<Record<string, FieldSpec>> };
  readonly required: boolean;
  readonly optional: boolean;
  readonly computed: boolean;
  readonly sensitive: boolean;
  readonly description?: string;
  readonly deprecated?: string;
  readonly validators: readonly Validator<never>[];
  /** The value planned when the configuration leaves the attribute out (makes it optional and computed). */
  readonly default?: CtyValue;
  /** Keep the prior state's value in a plan instead of "(known after apply)" (ids, creation times). */
  readonly useStateForUnknown: boolean;
  /** A change of this attribute replaces the resource. */
  readonly requiresReplace: boolean;
  /** Provider configuration only: environment variables read, in order, when the configuration leaves it out. */
  readonly env: readonly string[];
}

/** What a block builder records (`block.list({...})`): configuration written as nested HCL blocks. */
export interface BlockSpec {
  readonly kind: 'block';
  readonly mode: NestingMode;
  readonly fields: Readonly<Record<string, FieldSpec>>;
  readonly description?: string;
  readonly minItems: number;
  readonly maxItems: number;
}

/** An attribute or a block. */
export type FieldSpec = AttributeSpec | BlockSpec;

/** A schema: fields by name. */
export type Fields = Readonly<Record<string, AnyField>>;

/** Any attribute or block builder. */
export type AnyField = Attribute<unknown, boolean> | Block<unknown>;

declare const modelType: unique symbol;

/**
 * An attribute being defined. `T` is its value in the model; `Nullable` whether the model may hold null
 * (anything not `required()`).
 */
export class Attribute<T, Nullable extends boolean = true> {
  declare readonly [modelType]: { value: T; nullable: Nullable };
  /** The recorded definition. */
  readonly spec: AttributeSpec;

  constructor(spec: AttributeSpec) {
    this.spec = spec;
  }

  private with<N extends boolean = Nullable>(patch: Partial<AttributeSpec>): Attribute<T, N> {
    return new Attribute<T, N>({ ...this.spec, ...patch });
  }

  /** The configuration must set it. */
  required(): Attribute<T, false> {
    return this.with<false>({ required: true, optional: false });
  }
  /** The configuration may set it. */
  optional(): Attribute<T, true> {
    return this.with<true>({ optional: true, required: false });
  }
  /** The provider sets it (with `optional()`: the configuration may, too). */
  computed(): Attribute<T, true> {
    return this.with<true>({ computed: true, required: false });
  }
  /** Hidden in plans and output (still in state). */
  sensitive(): Attribute<T, Nullable> {
    return this.with({ sensitive: true });
  }
  /** Markdown description: shown by the language server and in generated docs. */
  describe(description: string): Attribute<T, Nullable> {
    return this.with({ description });
  }
  /** Deprecated, with a message telling what to use instead. */
  deprecate(message: string): Attribute<T, Nullable> {
    return this.with({ deprecated: message });
  }
  /** Add checks, run on `validate` and `plan` when the value is known and not null. */
  validate(...validators: Validator<T>[]): Attribute<T, Nullable> {
    return this.with({ validators: [...this.spec.validators, ...(validators as Validator<never>[])] });
  }
  /** The value planned when the configuration leaves it out; the attribute becomes optional and computed. */
  default(value: T): Attribute<T, false> {
    return this.with<false>({ default: value as CtyValue, optional: true, required: false, computed: true });
  }
  /** In a plan, keep the prior value instead of "(known after apply)": for values that never change (ids). */
  useStateForUnknown(): Attribute<T, Nullable> {
    return this.with({ useStateForUnknown: true });
  }
  /** Changing it destroys and recreates the resource. */
  requiresReplace(): Attribute<T, Nullable> {
    return this.with({ requiresReplace: true });
  }
  /** Provider configuration: fall back to these environment variables (first set wins). */
  env(...names: string[]): Attribute<T, Nullable> {
    return this.with({ env: [...this.spec.env, ...names] });
  }
}

/** A block being defined; `T` is its model (an object, or an array/record of them). */
export class Block<T> {
  declare readonly [modelType]: { value: T; nullable: false };
  /** The recorded definition. */
  readonly spec: BlockSpec;

  constructor(spec: BlockSpec) {
    this.spec = spec;
  }
  /** Markdown description. */
  describe(description: string): Block<T> {
    return new Block<T>({ ...this.spec, description });
  }
  /** At least `min` and at most `max` blocks (list and set blocks). */
  items(min: number, max = 0): Block<T> {
    return new Block<T>({ ...this.spec, minItems: min, maxItems: max });
  }
}

/** The TypeScript value of a field. */
export type ValueOf<F> =
  F extends Attribute<infer T, infer N>
    ? N extends true
      ? T | null
      : T
    : F extends Block<infer T>
      ? T
      : never;

/** The model of a schema: what handlers read and return. */
export type ModelOf<S extends Fields> = { [K in keyof S]: ValueOf<S[K]> };

function attribute<T>(type: CtyType, nested?: AttributeSpec['nested']): Attribute<T, true> {
  return new Attribute<T, true>({
    kind: 'attribute',
    type,
    ...(nested ? { nested } : {}),
    required: false,
    optional: false,
    computed: false,
    sensitive: false,
    validators: [],
    useStateForUnknown: false,
    requiresReplace: false,
    env: [],
  });
}

/** The cty type of an object whose fields are `fields`. */
export function objectType(fields: Readonly<Record<string, FieldSpec>>): CtyType {
  return { object: Object.fromEntries(Object.entries(fields).map(([k, f]) => [k, fieldType(f)])) };
}

/** The cty type of one field. */
export function fieldType(field: FieldSpec): CtyType {
  if (field.kind === 'attribute') return field.type;
  const object = objectType(field.fields);
  return nestedType(field.mode, object);
}

function nestedType(mode: NestingMode, object: CtyType): CtyType {
  switch (mode) {
    case 'single':
      return object;
    case 'list':
      return { list: object };
    case 'set':
      return { set: object };
    case 'map':
      return { map: object };
  }
}

function specsOf(fields: Fields): Record<string, FieldSpec> {
  return Object.fromEntries(Object.entries(fields).map(([k, f]) => [k, f.spec]));
}

type ElementOf<A> = A extends Attribute<infer T, boolean> ? T : never;

/** A nested object's element builder, for `attr.listOf(attr.object({...}))`. */
export interface NestedObject<S extends Fields> {
  readonly fields: S;
}

/** Attribute builders. */
export const attr = {
  /** A string. */
  string: (): Attribute<string> => attribute<string>('string'),
  /** A number (float64 here; Terraform's numbers are arbitrary precision). */
  number: (): Attribute<number> => attribute<number>('number'),
  /** A whole number: a number checked to be an integer. */
  int: (): Attribute<number> =>
    attribute<number>('number').validate((v) =>
      Number.isInteger(v) ? undefined : `must be a whole number, got ${v}`,
    ),
  /** true or false. */
  bool: (): Attribute<boolean> => attribute<boolean>('bool'),
  /** Any type, chosen by the configuration (values keep their type). */
  dynamic: (): Attribute<CtyValue> => attribute<CtyValue>('dynamic'),
  /** A list of `element` (its builder gives the type only). */
  list: <E extends Attribute<unknown, boolean>>(element: E): Attribute<ElementOf<E>[]> =>
    attribute<ElementOf<E>[]>({ list: element.spec.type }),
  /** A set of `element`. */
  set: <E extends Attribute<unknown, boolean>>(element: E): Attribute<ElementOf<E>[]> =>
    attribute<ElementOf<E>[]>({ set: element.spec.type }),
  /** A map of string to `element`. */
  map: <E extends Attribute<unknown, boolean>>(element: E): Attribute<Record<string, ElementOf<E>>> =>
    attribute<Record<string, ElementOf<E>>>({ map: element.spec.type }),
  /** A nested object attribute (`x = { a = 1 }`) whose attributes have their own flags and validators. */
  object: <S extends Fields>(fields: S): Attribute<ModelOf<S>> => {
    const specs = specsOf(fields);
    return attribute<ModelOf<S>>(objectType(specs), { mode: 'single', fields: specs });
  },
  /** A list of nested objects (`x = [{ a = 1 }]`). */
  listOf: <S extends Fields>(fields: S): Attribute<ModelOf<S>[]> => {
    const specs = specsOf(fields);
    return attribute<ModelOf<S>[]>({ list: objectType(specs) }, { mode: 'list', fields: specs });
  },
  /** A set of nested objects. */
  setOf: <S extends Fields>(fields: S): Attribute<ModelOf<S>[]> => {
    const specs = specsOf(fields);
    return attribute<ModelOf<S>[]>({ set: objectType(specs) }, { mode: 'set', fields: specs });
  },
  /** A map of nested objects. */
  mapOf: <S extends Fields>(fields: S): Attribute<Record<string, ModelOf<S>>> => {
    const specs = specsOf(fields);
    return attribute<Record<string, ModelOf<S>>>({ map: objectType(specs) }, { mode: 'map', fields: specs });
  },
};

/** Block builders: configuration written as nested HCL blocks (`rule { ... }`). */
export const block = {
  /** At most one block; null when absent. */
  single: <S extends Fields>(fields: S): Block<ModelOf<S> | null> =>
    new Block({ kind: 'block', mode: 'single', fields: specsOf(fields), minItems: 0, maxItems: 0 }),
  /** Any number of blocks, in order. */
  list: <S extends Fields>(fields: S): Block<ModelOf<S>[]> =>
    new Block({ kind: 'block', mode: 'list', fields: specsOf(fields), minItems: 0, maxItems: 0 }),
  /** Any number of blocks, unordered and distinct. */
  set: <S extends Fields>(fields: S): Block<ModelOf<S>[]> =>
    new Block({ kind: 'block', mode: 'set', fields: specsOf(fields), minItems: 0, maxItems: 0 }),
};

// ---- the protocol's Schema message ----

const NESTING: Record<NestingMode, string> = { single: 'SINGLE', list: 'LIST', set: 'SET', map: 'MAP' };

function attributeMessage(name: string, a: AttributeSpec): Record<string, unknown> {
  return {
    name,
    type: a.nested ? Buffer.alloc(0) : Buffer.from(JSON.stringify(typeToJson(a.type))),
    ...(a.nested
      ? {
          nested_type: {
            attributes: Object.entries(a.nested.fields)
              .filter((e): e is [string, AttributeSpec] => e[1].kind === 'attribute')
              .map(([n, f]) => attributeMessage(n, f)),
            nesting: NESTING[a.nested.mode],
          },
        }
      : {}),
    description: a.description ?? '',
    description_kind: 'MARKDOWN',
    // A value only the environment may give is optional to Terraform; the provider checks it at configure.
    required: a.required && a.env.length === 0,
    optional: a.optional || (a.required && a.env.length > 0),
    computed: a.computed,
    sensitive: a.sensitive,
    deprecated: a.deprecated !== undefined,
    deprecation_message: a.deprecated ?? '',
  };
}

/** The tfplugin6 `Schema.Block` message of some fields. */
export function blockMessage(
  fields: Readonly<Record<string, FieldSpec>>,
  description = '',
): Record<string, unknown> {
  const entries = Object.entries(fields);
  return {
    version: 0,
    attributes: entries
      .filter((e): e is [string, AttributeSpec] => e[1].kind === 'attribute')
      .map(([n, a]) => attributeMessage(n, a)),
    block_types: entries
      .filter((e): e is [string, BlockSpec] => e[1].kind === 'block')
      .map(([n, b]) => ({
        type_name: n,
        block: blockMessage(b.fields, b.description),
        nesting: NESTING[b.mode],
        min_items: b.minItems,
        max_items: b.mode === 'single' ? 1 : b.maxItems,
      })),
    description,
    description_kind: 'MARKDOWN',
    deprecated: false,
  };
}

/** The specs of a schema's builders. */
export function fieldSpecs(fields: Fields): Record<string, FieldSpec> {
  return specsOf(fields);
}
