// capstan/yaml: strict decoding into zod schemas (known fields, duplicate keys, every problem located),
// edits that change only the bytes they edit, and formatting that keeps comments.

export {
  type DocumentOption,
  type EditYamlOptions,
  editYaml,
  YamlEditor,
} from './edit.ts';
export { formatProblem, YamlError, YamlErrorCode, type YamlProblem } from './errors.ts';
export { type FormatYamlOptions, formatYaml } from './format.ts';
export {
  type KubeObjectSchemaOptions,
  kubeObject,
  kubeObjectSchema,
  objectMetaSchema,
  ownerReferenceSchema,
} from './kube.ts';
export { formatPath, getPath, type PathSegment, parsePath } from './path.ts';
export { parseScalar } from './scalar.ts';
export {
  checkYaml,
  parseAllStrict,
  parseStrict,
  type SchemaSelector,
  type StrictOptions,
  schemaByKind,
  toYaml,
  type YamlCheck,
} from './strict.ts';
export { didYouMean } from './suggest.ts';
