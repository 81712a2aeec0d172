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

/**
 * The one export among `found` (`[name, value]` pairs a module's definitions were recognised by), or the one
 * named `exportName`; none or several is a usage error naming the module. `kind` names what was looked for
 * ("operator"), `example` shows how a module exports one.
 */
export function oneExport<T>(
  modulePath: string,
  found: Array<[string, T]>,
  exportName: string | undefined,
  kind: string,
  example: string,
): T {
  const named = exportName === undefined ? found : found.filter(([name]) => name === exportName);
  if (named.length === 1) return named[0]![1];
  if (named.length === 0) {
    throw new CliError(
      CliErrorCode.usage,
      exportName === undefined
        ? `${modulePath} exports no ${kind} (${example})`
        : `${modulePath} exports no ${kind} named ${exportName}`,
    );
  }
  throw new CliError(
    CliErrorCode.usage,
    `${modulePath} exports ${named.length} ${kind}s (${named.map(([n]) => n).join(', ')}): pick one with --export`,
  );
}
