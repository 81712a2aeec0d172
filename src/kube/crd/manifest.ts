// From a recorded custom resource to the CustomResourceDefinition object (and its YAML): names and versions
// checked, schemas converted and checked structurally, every problem of every resource in one error.
import { stringify } from 'yaml';
import { KubeError, KubeErrorCode } from '../errors.ts';
import type { CustomResource, CustomResourceData, CustomResourceVersionData } from './define.ts';
import { type StructuralSchema, zodToStructural } from './schema.ts';
import { checkStructural } from './structural.ts';

/**
 * A CustomResourceDefinition (apiextensions.k8s.io/v1) as Capstan writes it. A type alias, not an
 * interface, so it passes where any plain Kubernetes object is taken.
 */
export type CustomResourceDefinitionManifest = {
  apiVersion: 'apiextensions.k8s.io/v1';
  kind: 'CustomResourceDefinition';
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: {
    group: string;
    names: {
      kind: string;
      listKind: string;
      plural: string;
      singular: string;
      shortNames?: string[];
      categories?: string[];
    };
    scope: 'Namespaced' | 'Cluster';
    versions: CustomResourceDefinitionVersion[];
    conversion: { strategy: 'None' };
  };
};

/** One entry of a CRD's `spec.versions`. */
export interface CustomResourceDefinitionVersion {
  name: string;
  served: boolean;
  storage: boolean;
  deprecated?: boolean;
  deprecationWarning?: string;
  schema: { openAPIV3Schema: StructuralSchema };
  subresources?: {
    status?: Record<string, never>;
    scale?: { specReplicasPath: string; statusReplicasPath: string; labelSelectorPath?: string };
  };
  additionalPrinterColumns?: Array<{
    name: string;
    type: string;
    jsonPath: string;
    description?: string;
    format?: string;
    priority?: number;
  }>;
  selectableFields?: Array<{ jsonPath: string }>;
}

const dns1123Label = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const dns1035Label = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const dns1123Subdomain = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const printerTypes = new Set(['integer', 'number', 'string', 'boolean', 'date']);

/** The CRD's name: `<plural>.<group>`. */
export function crdName(resource: CustomResource | CustomResourceData): string {
  const d = 'definition' in resource ? resource.definition : resource;
  return `${d.plural}.${d.group}`;
}

/**
 * The CustomResourceDefinition for `resource`. Throws a {@link KubeError} (`CAP_ERR_KUBE_CRD`) whose
 * `problems` list everything the apiserver would refuse (names, versions, non-structural schemas, printer
 * columns and scale paths that name no field), each with where it is.
 */
export function crdManifest(resource: CustomResource): CustomResourceDefinitionManifest {
  return crdManifests([resource])[0]!;
}

/** {@link crdManifest} for several resources; one error lists the problems of all of them. */
export function crdManifests(resources: readonly CustomResource[]): CustomResourceDefinitionManifest[] {
  const problems: string[] = [];
  const manifests = resources.map((r) => {
    const { manifest, problems: own } = buildManifest(r.definition);
    problems.push(...own.map((p) => `${crdName(r)}: ${p}`));
    return manifest;
  });
  const names = manifests.map((m) => m.metadata.name);
  for (const [i, name] of names.entries()) {
    if (names.indexOf(name) !== i) problems.push(`${name}: defined more than once`);
  }
  if (problems.length > 0) {
    const head = `${problems.length} problem${problems.length === 1 ? '' : 's'} in the custom resource definitions`;
    throw new KubeError(KubeErrorCode.crd, `${head}:\n${problems.map((p) => `  - ${p}`).join('\n')}`, {
      problems,
    });
  }
  return manifests;
}

/** The CRDs as YAML, one document each (`---` between them), ready for `kubectl apply -f`. */
export function crdYaml(resources: CustomResource | readonly CustomResource[]): string {
  const list = Array.isArray(resources) ? resources : [resources as CustomResource];
  // lineWidth 0: no folding, so long patterns and CEL rules stay on one line, as written.
  return crdManifests(list)
    .map((m) => stringify(m, { lineWidth: 0 }))
    .join('---\n');
}

function buildManifest(d: CustomResourceData): {
  manifest: CustomResourceDefinitionManifest;
  problems: string[];
} {
  const problems: string[] = [];
  if (!d.group.includes('.') || !dns1123Subdomain.test(d.group)) {
    problems.push(
      `group ${JSON.stringify(d.group)} must be a lower-case domain with at least one dot (example.com)`,
    );
  }
  if (!/^[A-Z][A-Za-z0-9]*$/.test(d.kind))
    problems.push(`kind ${JSON.stringify(d.kind)} must be PascalCase (Website)`);
  else if (!/^[A-Z][A-Za-z0-9]*$/.test(d.listKind))
    problems.push(`listKind ${JSON.stringify(d.listKind)} must be PascalCase`);
  for (const [what, value] of [
    ['plural', d.plural],
    ['singular', d.singular],
    ...d.shortNames.map((s) => ['short name', s] as const),
    ...d.categories.map((c) => ['category', c] as const),
  ] as const) {
    if (!dns1123Label.test(value))
      problems.push(`${what} ${JSON.stringify(value)} must be a lower-case DNS label`);
  }
  if (d.plural === d.singular && d.plural !== '') problems.push(`plural and singular are both ${d.plural}`);
  if (d.versions.length === 0) problems.push('no versions');
  const storage = d.versions.filter((v) => v.storage);
  if (d.versions.length > 0 && storage.length !== 1) {
    problems.push(`exactly one version must be the storage version (found ${storage.length})`);
  }
  if (d.versions.length > 0 && !d.versions.some((v) => v.served)) problems.push('no version is served');

  const versions = d.versions.map((v) => {
    const { version, problems: own } = buildVersion(v);
    problems.push(...own.map((p) => `version ${v.name}: ${p}`));
    return version;
  });
  const names = d.versions.map((v) => v.name);
  for (const [i, name] of names.entries()) {
    if (!dns1035Label.test(name))
      problems.push(`version name ${JSON.stringify(name)} must be a DNS label (v1, v1beta1)`);
    if (names.indexOf(name) !== i) problems.push(`version ${name} is listed twice`);
  }

  const manifest: CustomResourceDefinitionManifest = {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {
      name: crdName(d),
      ...(Object.keys(d.labels).length > 0 ? { labels: { ...d.labels } } : {}),
      ...(Object.keys(d.annotations).length > 0 ? { annotations: { ...d.annotations } } : {}),
    },
    spec: {
      group: d.group,
      names: {
        kind: d.kind,
        listKind: d.listKind,
        plural: d.plural,
        singular: d.singular,
        ...(d.shortNames.length > 0 ? { shortNames: [...d.shortNames] } : {}),
        ...(d.categories.length > 0 ? { categories: [...d.categories] } : {}),
      },
      scope: d.scope,
      versions,
      conversion: { strategy: d.conversion },
    },
  };
  return { manifest, problems };
}

function buildVersion(v: CustomResourceVersionData): {
  version: CustomResourceDefinitionVersion;
  problems: string[];
} {
  const problems: string[] = [];
  const spec = zodToStructural(v.spec, 'spec');
  problems.push(...spec.problems);
  const properties: Record<string, StructuralSchema> = {
    apiVersion: {
      type: 'string',
      description: 'The versioned schema of this representation of an object (group/version).',
    },
    kind: { type: 'string', description: 'The REST resource this object represents.' },
    metadata: { type: 'object' },
    spec: spec.schema,
  };
  if (v.status !== undefined) {
    const status = zodToStructural(v.status, 'status');
    problems.push(...status.problems);
    properties['status'] = status.schema;
  }
  // The spec is required unless its schema lets it be left out (optional or defaulted as a whole).
  const specOptional = ['optional', 'default', 'prefault'].includes(
    (v.spec._zod.def as unknown as { type: string }).type,
  );
  const root: StructuralSchema = {
    type: 'object',
    ...(v.description !== undefined ? { description: v.description } : {}),
    properties,
    ...(specOptional ? {} : { required: ['spec'] }),
  };
  // The converter has reported what it could not convert (leaving an untyped node there): don't report each
  // of those again as a missing type.
  const converted = [...problems];
  for (const p of checkStructural(root, '<root>')) {
    const shown = p.replace(/^<root>\./, '');
    const where = shown.slice(0, shown.indexOf(': '));
    if (!converted.some((c) => c.startsWith(`${where}: `))) problems.push(shown);
  }

  if (v.scale) {
    const s = v.scale;
    checkPath(root, s.specReplicasPath, '.spec.', ['integer'], 'scale specReplicasPath', problems);
    checkPath(root, s.statusReplicasPath, '.status.', ['integer'], 'scale statusReplicasPath', problems);
    if (s.labelSelectorPath !== undefined) {
      checkPath(
        root,
        s.labelSelectorPath,
        ['.spec.', '.status.'],
        ['string'],
        'scale labelSelectorPath',
        problems,
      );
    }
  }
  const columnNames = new Set<string>();
  for (const c of v.printerColumns) {
    const what = `printer column ${JSON.stringify(c.name)}`;
    if (c.name.trim() === '') problems.push('a printer column has no name');
    if (columnNames.has(c.name)) problems.push(`${what} is listed twice`);
    columnNames.add(c.name);
    if (!printerTypes.has(c.type))
      problems.push(`${what}: type ${c.type} is not integer, number, string, boolean or date`);
    checkPath(root, c.jsonPath, '.', undefined, what, problems);
  }
  if (v.selectableFields.length > 8)
    problems.push(`at most 8 selectable fields (got ${v.selectableFields.length})`);
  for (const f of v.selectableFields) {
    checkPath(
      root,
      f,
      ['.spec.', '.status.', '.metadata.'],
      ['string', 'integer', 'boolean'],
      `selectable field ${f}`,
      problems,
    );
  }
  if (v.statusSubresource && v.status === undefined)
    problems.push('a status subresource needs a status schema');

  const subresources: NonNullable<CustomResourceDefinitionVersion['subresources']> = {};
  if (v.statusSubresource) subresources.status = {};
  if (v.scale) {
    subresources.scale = {
      specReplicasPath: v.scale.specReplicasPath,
      statusReplicasPath: v.scale.statusReplicasPath,
      ...(v.scale.labelSelectorPath !== undefined ? { labelSelectorPath: v.scale.labelSelectorPath } : {}),
    };
  }
  const version: CustomResourceDefinitionVersion = {
    name: v.name,
    served: v.served,
    storage: v.storage,
    ...(v.deprecated ? { deprecated: true } : {}),
    ...(v.deprecationWarning !== undefined ? { deprecationWarning: v.deprecationWarning } : {}),
    schema: { openAPIV3Schema: root },
    ...(Object.keys(subresources).length > 0 ? { subresources } : {}),
    ...(v.printerColumns.length > 0
      ? {
          additionalPrinterColumns: v.printerColumns.map((c) => ({
            name: c.name,
            type: c.type,
            jsonPath: c.jsonPath,
            ...(c.description !== undefined ? { description: c.description } : {}),
            ...(c.format !== undefined ? { format: c.format } : {}),
            ...(c.priority !== undefined ? { priority: c.priority } : {}),
          })),
        }
      : {}),
    ...(v.selectableFields.length > 0
      ? { selectableFields: v.selectableFields.map((jsonPath) => ({ jsonPath })) }
      : {}),
  };
  return { version, problems };
}

/**
 * Check that a simple JSONPath (`.spec.replicas`) names a field of the schema, under one of `prefixes`, of
 * one of `types`. Paths with brackets or filters are left to the apiserver; a walk that reaches a node
 * keeping unknown fields, or `metadata` (whose schema the apiserver supplies), stops there satisfied.
 */
function checkPath(
  root: StructuralSchema,
  path: string,
  prefixes: string | string[],
  types: string[] | undefined,
  what: string,
  problems: string[],
): void {
  const allowed = Array.isArray(prefixes) ? prefixes : [prefixes];
  if (!allowed.some((p) => path.startsWith(p))) {
    problems.push(`${what}: ${path} must start with ${allowed.join(' or ')}`);
    return;
  }
  if (/[[\]@*?()]/.test(path)) return;
  let node: StructuralSchema | undefined = root;
  const segments = path.slice(1).split('.');
  for (const [i, segment] of segments.entries()) {
    if (i === 0 && segment === 'metadata') return;
    if (node['x-kubernetes-preserve-unknown-fields'] === true && node.properties?.[segment] === undefined)
      return;
    const next: StructuralSchema | boolean | undefined =
      node.properties?.[segment] ??
      (typeof node.additionalProperties === 'object' ? node.additionalProperties : undefined);
    if (next === undefined || typeof next === 'boolean') {
      problems.push(`${what}: ${path} names no field of the schema`);
      return;
    }
    node = next;
  }
  if (types !== undefined && !(node.type !== undefined && types.includes(node.type))) {
    problems.push(`${what}: ${path} must be ${types.join(' or ')}, not ${node.type ?? 'untyped'}`);
  }
}
