// The apiserver's structural-schema rules (and the checks it runs beside them), applied before anything is
// sent: a CRD that would be refused fails here with every problem and its path, not one at a time from the
// server. kube-rs shipped enums the apiserver refused (kube-rs 648, 1279, 1941); this is the net for that.
import { knownFormats, type StructuralSchema } from './schema.ts';

const types = new Set(['object', 'array', 'string', 'integer', 'number', 'boolean']);
const scalarTypes = new Set(['string', 'integer', 'number', 'boolean']);

/** Keys a CRD schema may use; anything else (`$ref`, `anyOf` of types, `patternProperties`...) is refused. */
const allowedKeys = new Set([
  'type',
  'format',
  'title',
  'description',
  'nullable',
  'default',
  'example',
  'enum',
  'minimum',
  'maximum',
  'exclusiveMinimum',
  'exclusiveMaximum',
  'multipleOf',
  'minLength',
  'maxLength',
  'pattern',
  'minItems',
  'maxItems',
  'minProperties',
  'maxProperties',
  'items',
  'properties',
  'required',
  'additionalProperties',
  'externalDocs',
  'x-kubernetes-validations',
  'x-kubernetes-list-type',
  'x-kubernetes-list-map-keys',
  'x-kubernetes-map-type',
  'x-kubernetes-preserve-unknown-fields',
  'x-kubernetes-int-or-string',
  'x-kubernetes-embedded-resource',
]);

/**
 * Check an OpenAPI v3 schema against the rules the apiserver applies to a CRD version's
 * `openAPIV3Schema` (structural schema, list and map types, formats, ranges). Returns every problem, each
 * starting with its path (`where` names the root); an empty list means the apiserver accepts the shape.
 * Works on hand-written schemas too.
 */
export function checkStructural(schema: StructuralSchema, where = '<root>'): string[] {
  const problems: string[] = [];
  if (schema.type !== 'object') problems.push(`${where}: the root must have type object`);
  visit(schema, where, problems, false, true);
  return problems;
}

function visit(
  node: StructuralSchema,
  path: string,
  problems: string[],
  inMetadata: boolean,
  isRoot = false,
): void {
  const say = (what: string) => problems.push(`${path}: ${what}`);
  if (node === null || typeof node !== 'object' || Array.isArray(node)) {
    say('a schema node must be an object');
    return;
  }
  for (const key of Object.keys(node)) {
    if (!allowedKeys.has(key)) {
      say(
        key === 'anyOf' || key === 'oneOf' || key === 'allOf' || key === 'not'
          ? `${key} is not structural here (only int-or-string or value restrictions may use it); give the field one type`
          : `${key} is not allowed in a CRD schema`,
      );
    }
  }
  const intOrString = node['x-kubernetes-int-or-string'] === true;
  const preserve = node['x-kubernetes-preserve-unknown-fields'] === true;
  if (node['x-kubernetes-preserve-unknown-fields'] === false) {
    say('x-kubernetes-preserve-unknown-fields must be true or absent');
  }
  if (node.type === undefined) {
    if (!intOrString && !preserve) say('no type (every field of a structural schema needs one)');
  } else if (!types.has(node.type)) {
    say(`unknown type ${String(node.type)}`);
  }
  if (intOrString && node.type !== undefined) say('x-kubernetes-int-or-string must not have a type');
  if (node.format !== undefined && !knownFormats.has(node.format)) {
    say(`format ${node.format} is not one the apiserver knows`);
  }

  if (node.properties !== undefined && node.additionalProperties !== undefined) {
    say('properties and additionalProperties exclude each other');
  }
  if (node.additionalProperties === false)
    say('additionalProperties: false is not allowed (unknown fields are pruned anyway)');
  if ((node.properties !== undefined || node.additionalProperties !== undefined) && node.type !== 'object') {
    say('properties or additionalProperties need type object');
  }
  if (node.type === 'array' && node.items === undefined) say('an array needs items');
  if (node.items !== undefined && node.type !== 'array') say('items needs type array');

  if (node.required !== undefined) {
    for (const name of node.required) {
      if (node.properties?.[name] === undefined && !preserve)
        say(`required field ${name} is not among the properties`);
    }
  }
  if (node.enum !== undefined) {
    if (!Array.isArray(node.enum) || node.enum.length === 0) say('enum must list at least one value');
    else if (node.nullable) {
      say(
        'a nullable enum: the apiserver refuses null for it all the same (put the choice in a CEL rule, `self in [...]`, which skips null)',
      );
    } else {
      for (const v of node.enum) {
        if (v === null ? !node.nullable : !valueHasType(v, node.type)) {
          say(`enum value ${JSON.stringify(v)} is not of type ${node.type}`);
        }
      }
    }
  }
  if (node.default !== undefined) {
    if (inMetadata) say('defaults are not allowed inside metadata');
    else if (node.default === null ? !node.nullable : !valueHasType(node.default, node.type)) {
      say(`the default ${JSON.stringify(node.default)} is not of type ${node.type ?? 'any'}`);
    } else {
      // The apiserver validates defaults against the schema and refuses the CRD otherwise; zod does not
      // (`z.int().min(5).default(1)` parses), so this is where such a default is caught.
      for (const why of valueProblems(node.default, node, '')) {
        say(`the default ${JSON.stringify(node.default)} is invalid: ${why}`);
      }
    }
  }
  range(node.minimum, node.maximum, 'minimum', 'maximum', say);
  range(node.minLength, node.maxLength, 'minLength', 'maxLength', say);
  range(node.minItems, node.maxItems, 'minItems', 'maxItems', say);
  range(node.minProperties, node.maxProperties, 'minProperties', 'maxProperties', say);
  if (node.pattern !== undefined && /\(\?<?[=!]/.test(node.pattern)) {
    say(`pattern ${node.pattern} uses lookaround, which the apiserver's RE2 engine lacks`);
  }

  const listType = node['x-kubernetes-list-type'];
  const mapKeys = node['x-kubernetes-list-map-keys'];
  if (listType !== undefined) {
    if (node.type !== 'array') say('x-kubernetes-list-type needs type array');
    else if (listType === 'set' && node.items?.type !== undefined && !scalarTypes.has(node.items.type)) {
      say('x-kubernetes-list-type set needs scalar items (use map for objects)');
    } else if (listType === 'map') {
      const items = node.items;
      if (items?.type !== 'object') say('x-kubernetes-list-type map needs object items');
      if (!mapKeys || mapKeys.length === 0)
        say('x-kubernetes-list-type map needs x-kubernetes-list-map-keys');
      for (const key of mapKeys ?? []) {
        const field = items?.properties?.[key];
        if (field === undefined) say(`list map key ${key} is not a field of the items`);
        else {
          if (field.type === undefined || !scalarTypes.has(field.type))
            say(`list map key ${key} must be a scalar`);
          if (!items?.required?.includes(key) && field.default === undefined) {
            say(`list map key ${key} must be required or have a default`);
          }
        }
      }
    } else if (listType !== 'atomic' && listType !== 'set') {
      say(`x-kubernetes-list-type ${String(listType)} is not atomic, set or map`);
    }
  }
  if (mapKeys !== undefined && listType !== 'map')
    say('x-kubernetes-list-map-keys needs x-kubernetes-list-type map');
  if (mapKeys !== undefined && new Set(mapKeys).size !== mapKeys.length)
    say('x-kubernetes-list-map-keys repeats a key');
  if (node['x-kubernetes-map-type'] !== undefined && node.type !== 'object')
    say('x-kubernetes-map-type needs type object');
  if (node['x-kubernetes-embedded-resource'] === true) {
    if (node.type !== 'object') say('x-kubernetes-embedded-resource needs type object');
    if (node.properties === undefined && !preserve) {
      say('x-kubernetes-embedded-resource needs properties or x-kubernetes-preserve-unknown-fields');
    }
  }
  for (const [i, rule] of (node['x-kubernetes-validations'] ?? []).entries()) {
    if (typeof rule?.rule !== 'string' || rule.rule.trim() === '')
      say(`x-kubernetes-validations[${i}] has no rule`);
    if (rule?.message !== undefined && /[\r\n]/.test(rule.message)) {
      say(`x-kubernetes-validations[${i}].message must be one line`);
    }
  }

  const childInMetadata = inMetadata;
  if (node.properties) {
    for (const [name, child] of Object.entries(node.properties)) {
      visit(child, `${path}.${name}`, problems, childInMetadata || (isRoot && name === 'metadata'));
    }
  }
  if (node.additionalProperties !== undefined && typeof node.additionalProperties === 'object') {
    visit(node.additionalProperties, `${path}.*`, problems, childInMetadata);
  }
  if (node.items !== undefined) visit(node.items, `${path}[]`, problems, childInMetadata);
}

function range(
  min: number | undefined,
  max: number | undefined,
  minName: string,
  maxName: string,
  say: (what: string) => void,
): void {
  if (min !== undefined && max !== undefined && min > max)
    say(`${minName} ${min} is above ${maxName} ${max}`);
}

function valueHasType(value: unknown, type: StructuralSchema['type']): boolean {
  switch (type) {
    case undefined:
      return true;
    case 'string':
      return typeof value === 'string';
    case 'boolean':
      return typeof value === 'boolean';
    case 'integer':
      return typeof value === 'number' && Number.isInteger(value);
    case 'number':
      return typeof value === 'number';
    case 'array':
      return Array.isArray(value);
    case 'object':
      return typeof value === 'object' && value !== null && !Array.isArray(value);
  }
}

/** Why `value` fails `node` (types, enum, bounds, lengths, pattern, required fields), as far as plain data can say. */
function valueProblems(value: unknown, node: StructuralSchema, at: string): string[] {
  const where = at === '' ? '' : `${at}: `;
  if (value === null) return node.nullable || node.type === undefined ? [] : [`${where}null is not allowed`];
  if (!valueHasType(value, node.type)) return [`${where}not of type ${node.type}`];
  const out: string[] = [];
  if (node.enum && !node.enum.some((e) => JSON.stringify(e) === JSON.stringify(value))) {
    out.push(`${where}not one of ${node.enum.map((e) => JSON.stringify(e)).join(', ')}`);
  }
  if (typeof value === 'number') {
    if (
      node.minimum !== undefined &&
      (node.exclusiveMinimum ? value <= node.minimum : value < node.minimum)
    ) {
      out.push(`${where}below the minimum ${node.minimum}`);
    }
    if (
      node.maximum !== undefined &&
      (node.exclusiveMaximum ? value >= node.maximum : value > node.maximum)
    ) {
      out.push(`${where}above the maximum ${node.maximum}`);
    }
  }
  if (typeof value === 'string') {
    const length = [...value].length;
    if (node.minLength !== undefined && length < node.minLength)
      out.push(`${where}shorter than ${node.minLength}`);
    if (node.maxLength !== undefined && length > node.maxLength)
      out.push(`${where}longer than ${node.maxLength}`);
    if (node.pattern !== undefined) {
      try {
        if (
          !new RegExp(
            node.pattern.replace(/^\(\?i\)/, ''),
            node.pattern.startsWith('(?i)') ? 'iu' : 'u',
          ).test(value)
        ) {
          out.push(`${where}does not match ${node.pattern}`);
        }
      } catch {
        // A pattern JavaScript cannot compile: the apiserver's RE2 judges it.
      }
    }
  }
  if (Array.isArray(value)) {
    if (node.minItems !== undefined && value.length < node.minItems)
      out.push(`${where}fewer than ${node.minItems} items`);
    if (node.maxItems !== undefined && value.length > node.maxItems)
      out.push(`${where}more than ${node.maxItems} items`);
    if (node.items) {
      for (const [i, v] of value.entries()) out.push(...valueProblems(v, node.items, `${at}[${i}]`));
    }
  } else if (typeof value === 'object' && value !== null) {
    const object = value as Record<string, unknown>;
    for (const name of node.required ?? []) {
      if (!(name in object) && node.properties?.[name]?.default === undefined) {
        out.push(`${where}missing the required field ${name}`);
      }
    }
    for (const [name, v] of Object.entries(object)) {
      const child =
        node.properties?.[name] ??
        (typeof node.additionalProperties === 'object' ? node.additionalProperties : undefined);
      if (child) out.push(...valueProblems(v, child, at === '' ? name : `${at}.${name}`));
    }
  }
  return out;
}
