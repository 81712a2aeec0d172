// A static hosts file as a source: YAML (or JSON, parsed by JSON.parse: ten times faster for a big file),
// checked as strictly as the configuration, every problem with its line and column.
//
//   hosts:
//     db-1:
//       vars: { ansible_host: 10.0.0.5 }
//       labels: { env: prod }
//       tags: [primary]
//       groups: [backup]
//     web-1:              # a host with nothing more
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import type { StaticSourceConfig } from './config.ts';
import { ansibleError } from './fail.ts';
import type { SourceHost } from './inventory.ts';
import type { CollectOptions, InventorySource } from './source.ts';
import { at, byPosition, issueProblems, offsetOf, parseLocatedYaml } from './yaml-problems.ts';

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
  let data: unknown;
  if (file.endsWith('.json')) {
    try {
      data = JSON.parse(text);
    } catch (err) {
      throw await hostsError(file, [`${file}: not JSON: ${(err as Error).message}`]);
    }
  } else {
    // The parser's own duplicate-key check is quadratic in the size of a mapping; hosts are checked below.
    const parsed = parseLocatedYaml(text, file, { uniqueKeys: false });
    if (parsed.problems.length > 0) throw await hostsError(file, parsed.problems);
    const duplicates = duplicateHosts(parsed.located);
    if (duplicates.length > 0) throw await hostsError(file, duplicates);
    data = parsed.value ?? {};
  }
  if (isHostsFile(data)) return toHosts(data);
  const checked = fileSchema.safeParse(data);
  if (checked.success) return toHosts(checked.data);
  // Positions come from the YAML parser; a JSON file is YAML too, parsed again only on this failing path.
  const { located } = parseLocatedYaml(text, file, { uniqueKeys: false });
  throw await hostsError(
    file,
    byPosition(issueProblems(checked.error.issues, located, fileSchema, data), file),
  );
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

/** `hosts:` keys that appear twice, each at its second place. */
function duplicateHosts(located: ReturnType<typeof parseLocatedYaml>['located']): string[] {
  const hosts = located.doc.get('hosts', true);
  if (!hosts || typeof hosts !== 'object' || !('items' in hosts) || !Array.isArray(hosts.items)) return [];
  const seen = new Set<string>();
  const out: string[] = [];
  for (const item of hosts.items as Array<{ key?: { value?: unknown; range?: [number] } }>) {
    const key = String(item.key?.value);
    if (seen.has(key)) {
      out.push(
        at(located, item.key?.range?.[0] ?? offsetOf(located, ['hosts']), `hosts.${key}: listed twice`),
      );
    }
    seen.add(key);
  }
  return out;
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
