// Errors on the inventory's fast path. `errors.ts` extends CapstanError, so it loads the runtime's index,
// which costs about 0.2 s of CPU (undici, prom-client, pino, zod, node-forge): more than half the budget of a
// `--list` that Ansible runs before every play. The modules the inventory program loads import this instead,
// and the runtime is only loaded when something is wrong.
import type { AnsibleError, AnsibleErrorCode } from './errors.ts';

/** A key of AnsibleErrorCode (`config`, `source`...). */
export type AnsibleErrorKey = keyof typeof AnsibleErrorCode;

/** An {@link AnsibleError} of code `code` (a key of AnsibleErrorCode), with errors.ts loaded on first use. */
export async function ansibleError(
  code: AnsibleErrorKey,
  message: string,
  options?: { cause?: unknown; problems?: readonly string[] },
): Promise<AnsibleError> {
  const { AnsibleError, AnsibleErrorCode } = await import('./errors.ts');
  return new AnsibleError(AnsibleErrorCode[code], message, options);
}
