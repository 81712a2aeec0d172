// Group rules: which groups a host joins, from its name, labels, tags, services, kind or source, and the
// variables and children of each group. Rules are data (the `groups:` list of the configuration), compiled
// once, then run over every host: 10,000 hosts and a dozen rules is a few milliseconds.
import type { InventoryHost, ScriptGroup, ScriptInventory } from './inventory.ts';

/** One entry of `groups:`. With no matcher it only defines a group's `vars` and `children`. */
export interface GroupRuleSpec {
  /** The group's name; `$1`…`$9` are the capture groups of the rule's regex (`$0` the whole match). */
  name: string;
  /** The hostname starts with this. */
  namePrefix?: string;
  /** The hostname matches this regex (captures usable in `name`). */
  nameRegex?: string;
  /** The host has this label; `$1` is its value. */
  label?: string;
  /** The host has each of these labels with these values. */
  labels?: Record<string, string>;
  /** The value of label `key` matches `pattern` (captures usable in `name`). */
  labelRegex?: { key: string; pattern: string };
  /** The host has this tag. */
  tag?: string;
  /** Each tag of the host matching this regex puts it in one group (captures usable in `name`). */
  tagRegex?: string;
  /** The host runs this service (Consul). */
  service?: string;
  /** Each service matching this regex puts the host in one group (captures usable in `name`). */
  serviceRegex?: string;
  /** The host is of this kind: `host`, `container`, `node`, `pod`. */
  kind?: string;
  /** The host comes from the source of this name. */
  source?: string;
  /** Variables of the group (of each group, when `name` has captures). */
  vars?: Record<string, unknown>;
  /** Child groups of the group. */
  children?: string[];
}

/** A problem of one rule: `field` is the key of the rule it is about (for its line and column). */
export interface RuleProblem {
  field: keyof GroupRuleSpec;
  message: string;
}

/** What a capturing matcher yields: one capture list per group the host joins (`[$0, $1, ...]`). */
type Captures = string[][];

/** A rule ready to run. */
export interface CompiledRule {
  readonly spec: GroupRuleSpec;
  /** Groups of `host` under this rule (sanitized names; empty when it does not match). */
  groupsOf(host: InventoryHost): string[];
}

/** The names Ansible gives itself: a rule can give them vars, never members. */
const IMPLICIT_GROUPS = new Set(['all', 'ungrouped']);

// Ansible's INVALID_VARIABLE_NAMES is `^[\d\W]|[^\w]` on Python's Unicode classes: \w is a letter, a number or
// `_`, \d a decimal digit. The same in JavaScript needs the Unicode property escapes.
const INVALID_GROUP_CHARS = /^\p{Nd}|[^\p{L}\p{N}_]/gu;

/**
 * A group name as Ansible accepts it without warning: each character that is not a letter, a digit or `_`,
 * and a leading digit, becomes `_` (`env-prod` → `env_prod`, `1st` → `_st`). That is what Ansible itself does
 * with `TRANSFORM_INVALID_GROUP_CHARS=always`; its default only warns and keeps the name, which then cannot
 * be used in a Jinja2 expression.
 */
export function sanitizeGroupName(name: string): string {
  return name.replace(INVALID_GROUP_CHARS, '_');
}

/** {@link sanitizeGroupName}, remembered: 10,000 hosts join the same few groups over and over. */
function sanitizedName(name: string, memo: Map<string, string>): string {
  let out = memo.get(name);
  if (out === undefined) {
    out = sanitizeGroupName(name);
    memo.set(name, out);
  }
  return out;
}

/** Number of capture groups of a (valid) regex source. */
function captureCount(pattern: string): number {
  return new RegExp(`${pattern}|`).exec('')!.length - 1;
}

/** The highest `$N` used in a name template (-1 when none). */
function highestReference(template: string): number {
  let highest = -1;
  for (const m of template.matchAll(/\$(\$|\d)/g)) {
    if (m[1] !== '$') highest = Math.max(highest, Number(m[1]));
  }
  return highest;
}

/**
 * `template` compiled: a function of the captures that replaces `$0`…`$9` and turns `$$` into `$`. Split
 * once, so 10,000 hosts cost a join each, not a regex replace.
 */
function templateOf(template: string): (captures: readonly string[]) => string {
  const parts: Array<string | number> = [];
  let last = 0;
  for (const m of template.matchAll(/\$(\$|\d)/g)) {
    parts.push(template.slice(last, m.index), m[1] === '$' ? '$' : Number(m[1]));
    last = m.index + m[0].length;
  }
  parts.push(template.slice(last));
  return (captures) => {
    let out = '';
    for (const p of parts) out += typeof p === 'number' ? (captures[p] ?? '') : p;
    return out;
  };
}

function compileRegex(
  field: RuleProblem['field'],
  pattern: string,
  problems: RuleProblem[],
): RegExp | undefined {
  try {
    return new RegExp(pattern, 'u');
  } catch (err) {
    problems.push({ field, message: `not a valid regex: ${(err as Error).message}` });
    return undefined;
  }
}

/**
 * Compile one rule: regexes built, `$N` checked against the rule's captures. Returns the rule, or the
 * problems found (every one, for the configuration's report).
 */
export function compileRule(spec: GroupRuleSpec): { rule?: CompiledRule; problems: RuleProblem[] } {
  const problems: RuleProblem[] = [];
  const tests: Array<(h: InventoryHost) => boolean> = [];
  // The one matcher whose captures `$N` refers to, if any.
  let capture: { field: RuleProblem['field']; count: number; of: (h: InventoryHost) => Captures } | undefined;
  const setCapture = (field: RuleProblem['field'], count: number, of: (h: InventoryHost) => Captures) => {
    if (capture) {
      problems.push({
        field,
        message: `a rule has at most one capturing matcher (nameRegex, label, labelRegex, tagRegex, serviceRegex); this one also has ${capture.field}`,
      });
      return;
    }
    capture = { field, count, of };
  };

  if (spec.namePrefix !== undefined) {
    const prefix = spec.namePrefix;
    tests.push((h) => h.name.startsWith(prefix));
  }
  if (spec.nameRegex !== undefined) {
    const re = compileRegex('nameRegex', spec.nameRegex, problems);
    if (re) {
      setCapture('nameRegex', captureCount(spec.nameRegex), (h) => {
        const m = re.exec(h.name);
        return m ? [m.map((s) => s ?? '')] : [];
      });
    }
  }
  if (spec.label !== undefined) {
    const key = spec.label;
    setCapture('label', 1, (h) => (Object.hasOwn(h.labels, key) ? [[h.labels[key]!, h.labels[key]!]] : []));
  }
  if (spec.labels !== undefined) {
    const wanted = Object.entries(spec.labels);
    tests.push((h) => wanted.every(([k, v]) => Object.hasOwn(h.labels, k) && h.labels[k] === v));
  }
  if (spec.labelRegex !== undefined) {
    const { key, pattern } = spec.labelRegex;
    const re = compileRegex('labelRegex', pattern, problems);
    if (re) {
      setCapture('labelRegex', captureCount(pattern), (h) => {
        if (!Object.hasOwn(h.labels, key)) return [];
        const m = re.exec(h.labels[key]!);
        return m ? [m.map((s) => s ?? '')] : [];
      });
    }
  }
  if (spec.tag !== undefined) {
    const tag = spec.tag;
    tests.push((h) => h.tags.includes(tag));
  }
  if (spec.tagRegex !== undefined) {
    const re = compileRegex('tagRegex', spec.tagRegex, problems);
    if (re) setCapture('tagRegex', captureCount(spec.tagRegex), (h) => eachMatch(re, h.tags));
  }
  if (spec.service !== undefined) {
    const service = spec.service;
    tests.push((h) => h.services.includes(service));
  }
  if (spec.serviceRegex !== undefined) {
    const re = compileRegex('serviceRegex', spec.serviceRegex, problems);
    if (re) setCapture('serviceRegex', captureCount(spec.serviceRegex), (h) => eachMatch(re, h.services));
  }
  if (spec.kind !== undefined) {
    const kind = spec.kind;
    tests.push((h) => h.kind === kind);
  }
  if (spec.source !== undefined) {
    const source = spec.source;
    // A merged host names every source it came from, comma-separated.
    tests.push((h) => h.source === source || h.source.split(',').includes(source));
  }

  const highest = highestReference(spec.name);
  const hasMatcher = tests.length > 0 || capture !== undefined;
  if (highest >= 0 && !capture) {
    problems.push({
      field: 'name',
      message: `uses $${highest} but the rule has no capturing matcher (nameRegex, label, labelRegex, tagRegex, serviceRegex)`,
    });
  } else if (capture && highest > capture.count) {
    problems.push({
      field: 'name',
      message: `uses $${highest} but ${capture.field} has ${capture.count} capture group${capture.count === 1 ? '' : 's'}`,
    });
  }
  const fixed = sanitizeGroupName(spec.name);
  if (hasMatcher && highest < 0 && IMPLICIT_GROUPS.has(fixed)) {
    problems.push({
      field: 'name',
      message: `${fixed} is Ansible's own group: every host is in all already; give it vars with a rule that has no matcher`,
    });
  }
  if (problems.length > 0) return { problems };

  const chosen = capture;
  const names = new Map<string, string>();
  const expand = templateOf(spec.name);
  const groupsOf = (host: InventoryHost): string[] => {
    if (!hasMatcher) return [];
    for (const t of tests) if (!t(host)) return [];
    if (!chosen) return [fixed];
    const out: string[] = [];
    for (const captures of chosen.of(host)) {
      const name = sanitizedName(expand(captures), names);
      // A capture that was empty can leave no name at all: no group rather than a group named `_`.
      if (name !== '' && !IMPLICIT_GROUPS.has(name) && !out.includes(name)) out.push(name);
    }
    return out;
  };
  return { rule: { spec, groupsOf }, problems };
}

function eachMatch(re: RegExp, values: readonly string[]): Captures {
  const out: Captures = [];
  for (const v of values) {
    const m = re.exec(v);
    if (m) out.push(m.map((s) => s ?? ''));
  }
  return out;
}

/**
 * The script inventory of `hosts` under `rules`: each host in the groups the rules and its source give it
 * (a host in none goes to `ungrouped`, or Ansible's script plugin would drop it), each group with the vars
 * and children of every rule naming it (later rules win on a clash), and every host's variables in
 * `_meta.hostvars`. Hosts must be merged already (one per name).
 */
export function groupHosts(hosts: readonly InventoryHost[], rules: readonly CompiledRule[]): ScriptInventory {
  const groups = new Map<string, { hosts: string[]; vars?: Record<string, unknown>; children?: string[] }>();
  const groupNamed = (name: string) => {
    let g = groups.get(name);
    if (!g) {
      g = { hosts: [] };
      groups.set(name, g);
    }
    return g;
  };
  // Definitions first, so a group's vars and children exist even when no host joins it.
  const templated: CompiledRule[] = [];
  for (const rule of rules) {
    const { spec } = rule;
    if (highestReference(spec.name) >= 0) {
      templated.push(rule);
      continue;
    }
    if (spec.vars || spec.children) {
      const g = groupNamed(sanitizeGroupName(spec.name));
      if (spec.vars) g.vars = { ...g.vars, ...spec.vars };
      if (spec.children) g.children = unionNames(g.children, spec.children);
    }
  }
  // The groups each templated rule with vars or children made, to give them those afterwards.
  const made = new Map<CompiledRule, Set<string>>();
  for (const rule of templated) if (rule.spec.vars || rule.spec.children) made.set(rule, new Set());
  const names = new Map<string, string>();
  const hostvars: Record<string, Record<string, unknown>> = {};
  for (const host of hosts) {
    hostvars[host.name] = host.vars;
    const joined = new Set<string>();
    for (const g of host.groups) {
      const name = sanitizedName(g, names);
      if (name !== '' && !IMPLICIT_GROUPS.has(name)) joined.add(name);
    }
    for (const rule of rules) {
      const names = rule.groupsOf(host);
      if (names.length === 0) continue;
      const into = made.get(rule);
      for (const g of names) {
        joined.add(g);
        into?.add(g);
      }
    }
    if (joined.size === 0) joined.add('ungrouped');
    for (const name of joined) groupNamed(name).hosts.push(host.name);
  }
  for (const [rule, names] of made) {
    const { spec } = rule;
    for (const name of names) {
      const g = groupNamed(name);
      if (spec.vars) g.vars = { ...g.vars, ...spec.vars };
      if (spec.children) g.children = unionNames(g.children, spec.children);
    }
  }
  const inventory: ScriptInventory = { _meta: { hostvars } };
  for (const [name, g] of groups) {
    const out: ScriptGroup = {};
    if (g.hosts.length > 0) out.hosts = g.hosts;
    if (g.vars && Object.keys(g.vars).length > 0) out.vars = g.vars;
    if (g.children && g.children.length > 0) out.children = g.children;
    inventory[name] = out;
  }
  return inventory;
}

function unionNames(a: readonly string[] | undefined, b: readonly string[]): string[] {
  const out = [...(a ?? [])];
  for (const name of b.map(sanitizeGroupName)) if (name !== '' && !out.includes(name)) out.push(name);
  return out;
}
