import { CapstanError } from '../runtime/index.ts';

/** Codes of the helm area; tests and callers branch on these. */
export const HelmErrorCode = {
  /** A plugin definition or call that cannot work as asked: a bad plugin name, a reserved command name, missing arguments. */
  usage: 'CAP_ERR_HELM_USAGE',
  /** A `helm` command run by Capstan (`template`, `install`...) failed or could not start; the message carries helm's stderr. */
  helmFailed: 'CAP_ERR_HELM_HELM_FAILED',
  /** A chart that cannot be read: a `.tgz` without `Chart.yaml`, a `Chart.yaml` without name or version, rendered output that is not YAML. */
  badChart: 'CAP_ERR_HELM_BAD_CHART',
  /** `helm capstan lint` found manifests the cluster rejects (each listed with its field path and reason). */
  lintFailed: 'CAP_ERR_HELM_LINT_FAILED',
  /** No secrets key: neither `CAPSTAN_HELM_SECRETS_KEY`, `CAPSTAN_HELM_SECRETS_KEY_FILE` nor `--key-file`, or a key that is not 32 bytes. */
  secretsNoKey: 'CAP_ERR_HELM_SECRETS_NO_KEY',
  /** The file was encrypted with another key (its key id differs from the key's). */
  secretsWrongKey: 'CAP_ERR_HELM_SECRETS_WRONG_KEY',
  /** An encrypted file or value that does not authenticate or parse: tampered, truncated, values moved between keys, or not an encrypted file. */
  secretsCorrupt: 'CAP_ERR_HELM_SECRETS_CORRUPT',
  /** `encrypt` on a file that is already encrypted (encrypting twice would hide the plaintext behind two keys). */
  secretsAlreadyEncrypted: 'CAP_ERR_HELM_SECRETS_ALREADY_ENCRYPTED',
  /** `edit` cannot keep the plaintext off disk (no memory-backed folder) or the editor failed. */
  secretsEdit: 'CAP_ERR_HELM_SECRETS_EDIT',
  /** An `s3://bucket/key` URL that is malformed (no bucket, no key). */
  s3BadUrl: 'CAP_ERR_HELM_S3_BAD_URL',
  /** The S3 endpoint refused the credentials or the signature (403, InvalidAccessKeyId, SignatureDoesNotMatch). */
  s3AccessDenied: 'CAP_ERR_HELM_S3_ACCESS_DENIED',
  /** No such bucket or object. */
  s3NotFound: 'CAP_ERR_HELM_S3_NOT_FOUND',
  /** Any other S3 failure: endpoint unreachable, deadline passed, a server error, index.yaml changed under us too many times. */
  s3Failed: 'CAP_ERR_HELM_S3_FAILED',
  /** A chart repository index.yaml that is not one (no apiVersion, entries not a map). */
  badIndex: 'CAP_ERR_HELM_BAD_INDEX',
} as const;
/** One of {@link HelmErrorCode}'s values. */
export type HelmErrorCode = (typeof HelmErrorCode)[keyof typeof HelmErrorCode];

/** Error raised by the helm area. `problems` lists each thing wrong when there are several (lint findings). */
export class HelmError extends CapstanError {
  declare readonly code: HelmErrorCode;
  /** Each thing wrong, when there are several; else empty. */
  readonly problems: readonly string[];
  constructor(
    code: HelmErrorCode,
    message: string,
    options?: { cause?: unknown; problems?: readonly string[] },
  ) {
    super(code, message, options);
    this.problems = options?.problems ?? [];
  }
}
