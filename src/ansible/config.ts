// The inventory configuration: a YAML file naming the sources and the group rules. Checked strictly and as a
// whole: an unknown or misspelled key is an error, and one report lists every problem with its line and
// column, so a typo in `groups:` cannot silently drop hosts from a play.
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import { ansibleError } from './fail.ts';
import { type CompiledRule, compileRule, type GroupRuleSpec } from './groups.ts';
import { at, byPosition, issueProblems, offsetOf, parseLocatedYaml } from './yaml-problems.ts';

/** How long a source may take when the configuration says nothing: 10 s. */
export const DEFAULT_SOURCE_TIMEOUT_MS = 10_000;

/** The environment variable naming the configuration file when `--config` is not given. */
export const INVENTORY_CONFIG_ENV = 'CAPSTAN_INVENTORY_CONFIG';

// The runtime has parseDuration, but its index costs more to load than the whole inventory budget (fail.ts).
const DURATION_PART = /(\d+(?:\.\d+)?)(ms|s|m|h)/gy;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };

/** `10s`, `500ms`, `1m30s` or a number of milliseconds; undefined when it is none of these. */
export function parseDurationMs(value: string | number): number | undefined {
  if (typeof value === 'number') return value;
  const text = value.trim();
  if (text === '') return undefined;
  DURATION_PART.lastIndex = 0;
  let ms = 0;
  while (DURATION_PART.lastIndex < text.length) {
    const m = DURATION_PART.exec(text);
    if (!m) return undefined;
    ms += Number(m[1]) * UNIT_MS[m[2]!]!;
  }
  return ms;
}

const duration = z.union([z.number(), z.string()]).transform((value, ctx) => {
  const ms = parseDurationMs(value);
  // A timer above 2^31-1 ms fires at once in Node: a typo must not turn a timeout off.
  if (ms === undefined || !Number.isInteger(ms) || ms <= 0 || ms > 2_147_483_647) {
    ctx.addIssue({
      code: 'custom',
      message: `expected a duration like 10s, 500ms or 1m30s, got ${JSON.stringify(value)}`,
    });
    return z.NEVER;
  }
  return ms;
});

const name = z.string().min(1);
const common = {
  /** Name in messages and `source:` rules; default the type. */
  name: name.optional(),
  /** Longest this source may take; default the top-level `timeout`. */
  timeout: duration.optional(),
  /** Every host of this source joins this group. */
  group: name.optional(),
};

const staticSchema = z.strictObject({
  type: z.literal('static'),
  ...common,
  /** YAML or JSON hosts file, relative to the configuration file. */
  file: name,
});
const dockerSchema = z.strictObject({
  type: z.literal('docker'),
  ...common,
  /** Daemon address (`unix:///var/run/docker.sock`, `tcp://host:2376`); default `DOCKER_HOST`. */
  host: name.optional(),
  /** Also stopped containers (default: running ones only). */
  all: z.boolean().optional(),
  /** Only containers with these labels: `key` or `key=value` each. */
  labels: z.array(name).optional(),
});
const consulSchema = z.strictObject({
  type: z.literal('consul'),
  ...common,
  /** Agent HTTP API; default `CONSUL_HTTP_ADDR`, else `http://127.0.0.1:8500`. */
  url: name.optional(),
  datacenter: name.optional(),
  /** ACL token; default `CONSUL_HTTP_TOKEN`. */
  token: name.optional(),
  /** File holding the ACL token (relative to the configuration file). */
  tokenFile: name.optional(),
  /** Only nodes with this node metadata. */
  nodeMeta: z.record(z.string(), z.string()).optional(),
});
const kubernetesSchema = z.strictObject({
  type: z.literal('kubernetes'),
  ...common,
  /** Kubeconfig file (relative to the configuration file); default `KUBECONFIG`, then `~/.kube/config`. */
  kubeconfig: name.optional(),
  context: name.optional(),
  /** List nodes (default true). */
  nodes: z.boolean().optional(),
  /** List running pods (default true). */
  pods: z.boolean().optional(),
  /** Pods of this namespace only (default all). */
  namespace: name.optional(),
  nodeSelector: name.optional(),
  podSelector: name.optional(),
});

const sourceSchema = z.discriminatedUnion('type', [
  staticSchema,
  dockerSchema,
  consulSchema,
  kubernetesSchema,
]);

const ruleSchema = z.strictObject({
  name,
  namePrefix: name.optional(),
  nameRegex: name.optional(),
  label: name.optional(),
  labels: z.record(z.string(), z.string()).optional(),
  labelRegex: z.strictObject({ key: name, pattern: name }).optional(),
  tag: name.optional(),
  tagRegex: name.optional(),
  service: name.optional(),
  serviceRegex: name.optional(),
  kind: name.optional(),
  source: name.optional(),
  vars: z.record(z.string(), z.unknown()).optional(),
  children: z.array(name).optional(),
});

const configSchema = z.strictObject({
  /** Longest any source may take unless it says otherwise. */
  timeout: duration.optional(),
  sources: z.array(sourceSchema).optional(),
  groups: z.array(ruleSchema).optional(),
});

type WithResolved<T> = Omit<T, 'timeout' | 'name'> & { name: string; timeoutMs: number };

/** A static hosts file source, checked; `file` is absolute. */
export type StaticSourceConfig = WithResolved<z.output<typeof staticSchema>>;
/** A Docker source, checked. */
export type DockerSourceConfig = WithResolved<z.output<typeof dockerSchema>>;
/** A Consul source, checked; `tokenFile` is absolute. */
export type ConsulSourceConfig = WithResolved<z.output<typeof consulSchema>>;
/** A Kubernetes source, checked; `kubeconfig` is absolute. */
export type KubernetesSourceConfig = WithResolved<z.output<typeof kubernetesSchema>>;
/** Any source of the configuration. */
export type SourceConfig =
  | StaticSourceConfig
  | DockerSourceConfig
  | ConsulSourceConfig
  | KubernetesSourceConfig;
/** The source types a configuration may name. */
export const SOURCE_TYPES = ['static', 'docker', 'consul', 'kubernetes'] as const;

/** A checked configuration. */
export interface InventoryConfig {
  /** The file it was read from, when there was one. */
  file?: string;
  /** Folder relative paths were resolved against. */
  dir: string;
  sources: SourceConfig[];
  rules: CompiledRule[];
}

/**
 * Check a configuration's text. Every problem (YAML syntax, duplicate keys, unknown keys with a did-you-mean,
 * wrong types, bad durations, regexes that do not compile, `$N` beyond a rule's captures, two sources of one
 * name, a `source:` rule naming none) is listed at once in a `CAP_ERR_ANSIBLE_CONFIG` error, each as
 * `file:line:col: path: what`. Relative paths resolve against `dir`.
 */
export async function parseInventoryConfig(
  text: string,
  options: { file?: string; dir?: string } = {},
): Promise<InventoryConfig> {
  const file = options.file ?? 'inventory configuration';
  const dir = options.dir ?? (options.file ? dirname(resolve(options.file)) : process.cwd());
  const parsed = parseLocatedYaml(text, file);
  if (parsed.problems.length > 0) throw await configError(file, parsed.problems);
  const { located } = parsed;
  const data = parsed.value ?? {};
  if (typeof data !== 'object' || Array.isArray(data)) {
    throw await configError(file, [
      at(located, 0, 'the file must be a mapping (sources:, groups:, timeout:)'),
    ]);
  }
  const checked = configSchema.safeParse(data);
  const problems = checked.success ? [] : issueProblems(checked.error.issues, located, configSchema, data);
  // The checks zod cannot make run on every source and rule that passed it, even when others did not, so
  // one report has every problem.
  const top = data as Record<string, unknown>;
  const timeout = configSchema.shape.timeout.safeParse(top['timeout']);
  const defaultTimeout = (timeout.success ? timeout.data : undefined) ?? DEFAULT_SOURCE_TIMEOUT_MS;
  const sources: SourceConfig[] = [];
  const names = new Map<string, number>();
  elements(top['sources']).forEach((element, i) => {
    // Names count even on a source with other problems: a rule naming it is not wrong too.
    const given = element !== null && typeof element === 'object' ? (element as Record<string, unknown>) : {};
    const rawName = typeof given['name'] === 'string' ? given['name'] : given['type'];
    if (typeof rawName === 'string') {
      const before = names.get(rawName);
      if (before !== undefined) {
        problems.push(
          at(
            located,
            offsetOf(located, ['sources', i, typeof given['name'] === 'string' ? 'name' : 'type']),
            `sources[${i}]: the name ${rawName} is taken by sources[${before}]; give each source its own name`,
          ),
        );
      }
      names.set(rawName, i);
    }
    const one = sourceSchema.safeParse(element);
    if (!one.success) return;
    const s = one.data;
    const sourceName = s.name ?? s.type;
    const { timeout: _timeout, ...rest } = s;
    const resolved = { ...rest, name: sourceName, timeoutMs: s.timeout ?? defaultTimeout } as SourceConfig;
    if (resolved.type === 'static') resolved.file = resolve(dir, resolved.file);
    if (resolved.type === 'consul' && resolved.tokenFile)
      resolved.tokenFile = resolve(dir, resolved.tokenFile);
    if (resolved.type === 'kubernetes' && resolved.kubeconfig) {
      resolved.kubeconfig = resolve(dir, resolved.kubeconfig);
    }
    sources.push(resolved);
  });

  const rules: CompiledRule[] = [];
  elements(top['groups']).forEach((element, i) => {
    const one = ruleSchema.safeParse(element);
    if (!one.success) return;
    const spec = one.data;
    const compiled = compileRule(spec as GroupRuleSpec);
    for (const p of compiled.problems) {
      problems.push(
        at(located, offsetOf(located, ['groups', i, p.field]), `groups[${i}].${p.field}: ${p.message}`),
      );
    }
    if (spec.source !== undefined && !names.has(spec.source)) {
      problems.push(
        at(
          located,
          offsetOf(located, ['groups', i, 'source']),
          `groups[${i}].source: no source is named ${spec.source} (${[...names.keys()].join(', ') || 'none configured'})`,
        ),
      );
    }
    if (compiled.rule) rules.push(compiled.rule);
  });
  if (problems.length > 0) throw await configError(file, byPosition(problems, file));
  return { ...(options.file ? { file: options.file } : {}), dir, sources, rules };
}

/**
 * Read and check the configuration file `path` (see {@link parseInventoryConfig}); a file that cannot be read
 * is a `CAP_ERR_ANSIBLE_CONFIG` error too.
 */
export async function loadInventoryConfig(path: string): Promise<InventoryConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw await ansibleError(
      'config',
      `cannot read inventory configuration ${path}: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
  return parseInventoryConfig(text, { file: path });
}

/** The elements of a list, or none when it is not one (zod reported that already). */
function elements(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

async function configError(file: string, problems: string[]) {
  const head = problems.length === 1 ? '1 problem' : `${problems.length} problems`;
  return ansibleError(
    'config',
    `invalid inventory configuration ${file}: ${head}\n${problems.map((p) => `  - ${p}`).join('\n')}`,
    { problems },
  );
}
