// The inventory configuration: a YAML file naming the sources and the group rules. Checked strictly and as a
// whole: an unknown or misspelled key is an error, and one report lists every problem with its line and
// column, so a typo in `groups:` cannot silently drop hosts from a play.
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ansibleError } from './fail.ts';
import { type CompiledRule, compileRule, type GroupRuleSpec } from './groups.ts';

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

const ruleSchema = z
  .strictObject({
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
  })
  .superRefine((spec, ctx) => {
    // Regexes that do not compile, `$N` beyond the captures...: at the key they are about.
    for (const p of compileRule(spec as GroupRuleSpec).problems) {
      ctx.addIssue({ code: 'custom', path: [p.field], message: p.message });
    }
  });

/** The name a source goes by: its `name`, else its type (on raw input: the check below runs on broken files too). */
function sourceNameOf(source: unknown): { name: string; key: 'name' | 'type' } | undefined {
  if (source === null || typeof source !== 'object') return undefined;
  const s = source as Record<string, unknown>;
  if (typeof s['name'] === 'string') return { name: s['name'], key: 'name' };
  if (typeof s['type'] === 'string') return { name: s['type'], key: 'type' };
  return undefined;
}

const configSchema = z
  .strictObject({
    /** Longest any source may take unless it says otherwise. */
    timeout: duration.optional(),
    sources: z.array(sourceSchema).optional(),
    groups: z.array(ruleSchema).optional(),
  })
  .superRefine(
    (config, ctx) => {
      // Across entries: one name per source, and rules naming sources that exist. Run even when other
      // parts failed (`when`), so one report has every problem; hence the care with raw values.
      const raw = config as { sources?: unknown; groups?: unknown };
      const names = new Map<string, number>();
      (Array.isArray(raw.sources) ? raw.sources : []).forEach((source, i) => {
        const named = sourceNameOf(source);
        if (!named) return;
        const before = names.get(named.name);
        if (before !== undefined) {
          ctx.addIssue({
            code: 'custom',
            path: ['sources', i, named.key],
            message: `the name ${named.name} is taken by sources[${before}]; give each source its own name`,
          });
        } else {
          names.set(named.name, i);
        }
      });
      (Array.isArray(raw.groups) ? raw.groups : []).forEach((rule, i) => {
        const source = (rule as { source?: unknown } | null)?.source;
        if (typeof source === 'string' && !names.has(source)) {
          ctx.addIssue({
            code: 'custom',
            path: ['groups', i, 'source'],
            message: `no source is named ${source} (${[...names.keys()].join(', ') || 'none configured'})`,
          });
        }
      });
    },
    { when: () => true },
  );

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
  const raw = (await fastParse(text)) ?? (await strictParse(text, file));

  const defaultTimeout = raw.timeout ?? DEFAULT_SOURCE_TIMEOUT_MS;
  const sources = (raw.sources ?? []).map((s): SourceConfig => {
    const { timeout, ...rest } = s;
    const resolved = {
      ...rest,
      name: s.name ?? s.type,
      timeoutMs: timeout ?? defaultTimeout,
    } as SourceConfig;
    if (resolved.type === 'static') resolved.file = resolve(dir, resolved.file);
    if (resolved.type === 'consul' && resolved.tokenFile)
      resolved.tokenFile = resolve(dir, resolved.tokenFile);
    if (resolved.type === 'kubernetes' && resolved.kubeconfig) {
      resolved.kubeconfig = resolve(dir, resolved.kubeconfig);
    }
    return resolved;
  });
  // Compiled before, in the schema's check; again here for the compiled form (microseconds a rule).
  const rules = (raw.groups ?? []).map((spec) => compileRule(spec as GroupRuleSpec).rule!);
  return { ...(options.file ? { file: options.file } : {}), dir, sources, rules };
}

type RawConfig = z.output<typeof configSchema>;

/**
 * The configuration when it is right, by the `yaml` parser and zod alone; undefined at the first doubt.
 * capstan/yaml would give the same answer, but it loads the runtime (see fail.ts), so it is only asked when
 * something is wrong, for its located problems.
 */
async function fastParse(text: string): Promise<RawConfig | undefined> {
  let data: unknown;
  try {
    data = parseYaml(text, { prettyErrors: false }) ?? {};
  } catch {
    return undefined;
  }
  const checked = configSchema.safeParse(data);
  return checked.success ? checked.data : undefined;
}

/** The configuration by capstan/yaml's strict decoding, or every problem, located, in a `CAP_ERR_ANSIBLE_CONFIG` error. */
async function strictParse(text: string, file: string): Promise<RawConfig> {
  const { checkYaml, formatProblem } = await import('../yaml/index.ts');
  const { values, problems } = checkYaml(text, configSchema, { file });
  if (problems.length > 0) throw await configError(file, problems.map(formatProblem));
  if (values.length > 1)
    throw await configError(file, [`${file}: one YAML document expected, found ${values.length}`]);
  return values[0] ?? {};
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

async function configError(file: string, problems: string[]) {
  const head = problems.length === 1 ? '1 problem' : `${problems.length} problems`;
  return ansibleError(
    'config',
    `invalid inventory configuration ${file}: ${head}\n${problems.map((p) => `  - ${p}`).join('\n')}`,
    { problems },
  );
}
