// What `capstan config doc|check` does with a module, minus the printing: find the definitions it exports
// and check them together against one environment.
import { type ConfigDefinition, checkConfig, isConfigDefinition } from './config.ts';
import type { ConfigIssue } from './errors.ts';

/** The config definitions among a module's exports, as `[exportName, definition]` in export order. */
export function exportedConfigDefinitions(mod: Record<string, unknown>): [string, ConfigDefinition][] {
  return Object.entries(mod).filter((e): e is [string, ConfigDefinition] => isConfigDefinition(e[1]));
}

/** What {@link checkConfigs} found. */
export interface ConfigsCheck {
  /** Every problem once, in definition order. */
  issues: ConfigIssue[];
  /** How many variables the definitions read, counted per definition. */
  variables: number;
}

/**
 * Check several definitions against one environment. Two definitions may share a variable (`PORT`):
 * a problem with it is reported once.
 */
export function checkConfigs(
  defs: readonly ConfigDefinition[],
  envVars: Record<string, string | undefined>,
): ConfigsCheck {
  const issues: ConfigIssue[] = [];
  const seen = new Set<string>();
  let variables = 0;
  for (const def of defs) {
    for (const issue of checkConfig(def, envVars).issues) {
      if (!seen.has(issue.message)) issues.push(issue);
      seen.add(issue.message);
    }
    variables += def.entries.length;
  }
  return { issues, variables };
}
