import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { CliError, CliErrorCode } from './errors.ts';

/**
 * Import a module the user named on the command line (an operator, CRD or config module) and return its
 * exports. A module that cannot be imported, or throws while it loads (e.g. a definition error raised at
 * module level), is a usage error naming the path, not a crash with a stack.
 */
export async function importUserModule(modulePath: string): Promise<Record<string, unknown>> {
  try {
    return (await import(pathToFileURL(resolve(modulePath)).href)) as Record<string, unknown>;
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new CliError(CliErrorCode.usage, `cannot import ${modulePath}: ${reason}`, { cause: err });
  }
}
