// A static hosts file as a source: YAML (or JSON, parsed by JSON.parse: a hundred times faster for a big
// file), checked as strictly as the configuration, every problem with its line and column.
//
//   hosts:
//     db-1:
//       vars: { ansible_host: 10.0.0.5 }
//       labels: { env: prod }
//       tags: [primary]
//       groups: [backup]
//     web-1:              # a host with nothing more
import { readFile } from 'node:fs/promises';
import { isMap, isScalar, parseDocument } from 'yaml';
import { z } from 'zod';
import type { StaticSourceConfig } from './config.ts';
import { ansibleError } from './fail.ts';
import type { SourceHost } from './inventory.ts';
import type { CollectOptions, InventorySource } from './source.ts';

const hostSchema = z
  .strictObject({
    vars: z.record(z.string(), z.unknown()).optional(),
    labels: z.record(z.string(), z.string()).optional(),
    tags: z.array(z.string()).optional(),
    groups: z.array(z.string().min(1)).optional(),
  })
  .nullable();

const fileSchema = z.strictObject({ hosts: z.record(z.string().min(1), hostSchema).optional() });

/** The hosts of a static file's text (YAML, or JSON when `file` ends in `.json`). Problems reject with `CAP_ERR_ANSIBLE_CONFIG`. */
export async function parseHostsFile(text: string, file: string): Promise<SourceHost[]> {
  const data = fastParse(text, file);
  if (data !== undefined && isHostsFile(data)) return toHosts(data);
  // Something is wrong (or unusual: YAML merge keys): capstan/yaml decides, and locates every problem. It
  // loads the runtime (see fail.ts), and its duplicate-key check is the parser's quadratic one: only here.
  const { checkYaml, formatProblem } = await import('../yaml/index.ts');
  const { values, problems } = checkYaml(text, fileSchema, { file });
  if (problems.length > 0) throw await hostsError(file, problems.map(formatProblem));
  if (values.length > 1)
    throw await hostsError(file, [`${file}: one YAML document expected, found ${values.length}`]);
  return toHosts(values[0] ?? {});
}

/**
 * The file's data when it parses cleanly with no host listed twice; undefined otherwise. JSON by
 * JSON.parse; YAML without the parser's duplicate-key check, which compares every key of a mapping with every
 * other (3 s for 10,000 hosts), and with a linear one on `hosts` instead.
 */
function fastParse(text: string, file: string): unknown {
  if (file.endsWith('.json')) {
    try {
      return JSON.parse(text);
    } catch {
      return undefined;
    }
  }
  const doc = parseDocument(text, { uniqueKeys: false, prettyErrors: false });
  if (doc.errors.length > 0) return undefined;
  const hosts = doc.get('hosts', true);
  if (isMap(hosts)) {
    const seen = new Set<unknown>();
    for (const item of hosts.items) {
      const key = isScalar(item.key) ? item.key.value : item.key;
      if (seen.has(key)) return undefined;
      seen.add(key);
    }
  }
  return doc.toJS({ maxAliasCount: 1000 }) ?? {};
}

/** The parsed file as a list of hosts. */
function toHosts(data: HostsFile): SourceHost[] {
  const hosts: SourceHost[] = [];
  for (const [name, h] of Object.entries(data.hosts ?? {})) {
    hosts.push({
      name,
      kind: 'host',
      vars: h?.vars ?? {},
      labels: h?.labels ?? {},
      tags: h?.tags ?? [],
      groups: h?.groups ?? [],
    });
  }
  return hosts;
}

type HostsFile = z.output<typeof fileSchema>;

const HOST_KEYS = new Set(['vars', 'labels', 'tags', 'groups']);

function isRecord(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function isStringList(value: unknown, nonEmpty: boolean): boolean {
  if (!Array.isArray(value)) return false;
  for (const v of value) if (typeof v !== 'string' || (nonEmpty && v === '')) return false;
  return true;
}

/**
 * The answer `fileSchema` gives, by hand: zod takes about 10 µs a host, a tenth of a second for 10,000,
 * in a program Ansible runs before every play. When this says no, zod runs anyway for its messages; the
 * tests hold the two to the same answers.
 */
export function isHostsFile(data: unknown): data is HostsFile {
  if (!isRecord(data)) return false;
  for (const key in data) if (key !== 'hosts') return false;
  const hosts = data['hosts'];
  if (hosts === undefined) return true;
  if (!isRecord(hosts)) return false;
  for (const name in hosts) {
    if (name === '') return false;
    const host = hosts[name];
    if (host === null) continue;
    if (!isRecord(host)) return false;
    for (const key in host) if (!HOST_KEYS.has(key)) return false;
    const { vars, labels, tags, groups } = host;
    if (vars !== undefined && !isRecord(vars)) return false;
    if (labels !== undefined) {
      if (!isRecord(labels)) return false;
      for (const k in labels) if (typeof labels[k] !== 'string') return false;
    }
    if (tags !== undefined && !isStringList(tags, false)) return false;
    if (groups !== undefined && !isStringList(groups, true)) return false;
  }
  return true;
}

async function hostsError(file: string, problems: string[]) {
  const head = problems.length === 1 ? '1 problem' : `${problems.length} problems`;
  return ansibleError(
    'config',
    `invalid hosts file ${file}: ${head}\n${problems.map((p) => `  - ${p}`).join('\n')}`,
    { problems },
  );
}

/** A static hosts file as an {@link InventorySource}, read again on every collect. */
export function staticSource(config: Pick<StaticSourceConfig, 'name' | 'file'>): InventorySource {
  return {
    name: config.name,
    description: `file ${config.file}`,
    async collect(_options: CollectOptions): Promise<SourceHost[]> {
      return parseHostsFile(await readFile(config.file, 'utf8'), config.file);
    },
  };
}
