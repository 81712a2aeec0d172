import { CapstanError } from '../runtime/index.ts';

/** Codes of the ansible area; tests and callers branch on these. */
export const AnsibleErrorCode = {
  /** The inventory configuration (or a static hosts file) cannot be used; `problems` lists each one with its line and column. */
  config: 'CAP_ERR_ANSIBLE_CONFIG',
  /** An inventory source could not be read (daemon, agent or apiserver down, error answer); the message names the source. */
  source: 'CAP_ERR_ANSIBLE_SOURCE',
  /** An inventory source did not answer within its timeout; the message names the source. */
  timeout: 'CAP_ERR_ANSIBLE_TIMEOUT',
  /** The inventory program was called the wrong way (neither --list nor --host, an unknown option). */
  usage: 'CAP_ERR_ANSIBLE_USAGE',
} as const;
/** One of {@link AnsibleErrorCode}'s values. */
export type AnsibleErrorCode = (typeof AnsibleErrorCode)[keyof typeof AnsibleErrorCode];

/** Error raised by the ansible area. `problems` lists each thing wrong when there are several. */
export class AnsibleError extends CapstanError {
  declare readonly code: AnsibleErrorCode;
  /** Each thing wrong (a configuration's problems, each failed source); else empty. */
  readonly problems: readonly string[];

  constructor(
    code: AnsibleErrorCode,
    message: string,
    options?: { cause?: unknown; problems?: readonly string[] },
  ) {
    super(code, message, options);
    this.problems = options?.problems ?? [];
  }
}
