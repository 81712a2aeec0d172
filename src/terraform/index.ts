// capstan/terraform: Terraform/OpenTofu providers in TypeScript. The plugin protocol (tfplugin6 over gRPC
// with go-plugin's handshake, mutual TLS and msgpack values), a framework on top (schemas, validators,
// defaults, plan modifiers, CRUD handlers, import, state upgrades, data sources) and packaging for
// `tofu init` without a registry.

export { TerraformError, TerraformErrorCode } from './errors.ts';
export { type Diagnostic, DiagnosticError, Diagnostics } from './framework/diagnostics.ts';
export {
  type AnyDataSource,
  type AnyResource,
  type ConfigureContext,
  type DataSourceDefinition,
  defineProvider,
  type HandlerContext,
  isProvider,
  Provider,
  type ProviderOptions,
  type ResourceDefinition,
  type Returned,
} from './framework/provider.ts';
export { type ProviderServerOptions, providerServer } from './framework/rpc.ts';
export {
  type AnyField,
  Attribute,
  type AttributeSpec,
  attr,
  Block,
  type BlockSpec,
  block,
  type FieldSpec,
  type Fields,
  type ModelOf,
  type NestingMode,
  type Validator,
  type ValueOf,
} from './framework/schema.ts';
export { between, lengthBetween, matches, oneOf, sizeBetween } from './framework/validators.ts';
export {
  type InstalledProvider,
  type InstallProviderOptions,
  installProvider,
  terraformPlatform,
} from './packaging.ts';
export {
  type CtyType,
  type CtyValue,
  Dynamic,
  decodeJsonValue,
  decodeValue,
  encodeValue,
  formatPath,
  inferType,
  isUnknown,
  plainValue,
  typeFromJson,
  typeToJson,
  Unknown,
  unknown,
  type ValuePath,
  valuesEqual,
} from './protocol/cty.ts';
export {
  type LaunchedProvider,
  type LaunchProviderOptions,
  launchProvider,
} from './protocol/plugin-client.ts';
export {
  createPluginLogger,
  hclogTimestamp,
  PLUGIN_LOG_LEVELS,
  type PluginLogger,
  type PluginLoggerOptions,
  type PluginLogLevel,
} from './protocol/plugin-log.ts';
export {
  checkPluginEnvironment,
  MAGIC_COOKIE_KEY,
  MAGIC_COOKIE_VALUE,
  MAX_MESSAGE_BYTES,
  type PluginServer,
  type PluginServerOptions,
  PROTOCOL_VERSION,
  startPluginServer,
} from './protocol/plugin-server.ts';
export { loadTfplugin6, TFPLUGIN_GO_MODULE, TFPLUGIN_GO_VERSION } from './protocol/protos.ts';
export { type ServeProviderOptions, serveProvider } from './serve.ts';
