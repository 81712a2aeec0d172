import { CapstanError } from '../runtime/index.ts';

/** Codes of the terraform area; tests and callers branch on these. */
export const TerraformErrorCode = {
  /** The tfplugin6 protocol definition could not be loaded (no built descriptor, and Go could not fetch the module). */
  protocolUnavailable: 'CAP_ERR_TERRAFORM_PROTOCOL_UNAVAILABLE',
  /** The process was started without `TF_PLUGIN_MAGIC_COOKIE`: not by Terraform or OpenTofu. */
  notAPlugin: 'CAP_ERR_TERRAFORM_NOT_A_PLUGIN',
  /** The host speaks no plugin protocol version this server does (`PLUGIN_PROTOCOL_VERSIONS` lacks 6). */
  protocolVersion: 'CAP_ERR_TERRAFORM_PROTOCOL_VERSION',
  /** A value does not match its cty type (encoding or decoding a DynamicValue). */
  value: 'CAP_ERR_TERRAFORM_VALUE',
  /** A JSON type constraint (schema `type` bytes, or a dynamic value's type) that is not a cty type. */
  type: 'CAP_ERR_TERRAFORM_TYPE',
  /** A provider definition that cannot be served (duplicate names, an attribute neither required, optional nor computed...). */
  definition: 'CAP_ERR_TERRAFORM_DEFINITION',
  /** The plugin server could not start (socket, TLS, bind). */
  serve: 'CAP_ERR_TERRAFORM_SERVE',
  /** A provider build or install step failed (launcher, mirror layout). */
  packaging: 'CAP_ERR_TERRAFORM_PACKAGING',
} as const;
/** One of {@link TerraformErrorCode}'s values. */
export type TerraformErrorCode = (typeof TerraformErrorCode)[keyof typeof TerraformErrorCode];

/** Error raised by the terraform area: the plugin server, the value codec and provider definitions. */
export class TerraformError extends CapstanError {
  declare readonly code: TerraformErrorCode;
}
