// `npm run lint:deps`: the import boundaries of docs/architecture.md, checked on the package in the current
// directory (the repository, or a fixture tree in test/boundaries.test.ts).
//
// dependency-cruiser checks the file-level rules of .dependency-cruiser.mjs. Two rules it cannot express are
// added here, reported in its own format so one list covers everything:
// - no-folder-cycle: cycles between sibling folders (two areas, or two modules of an area), which need no
//   file-level cycle to exist (config/config.ts → log/redact.ts while log/logger.ts → config/config.ts).
// - exports-no-internal: package.json `exports` must not publish anything under an internal/ folder.
// - no-path-into-other-area: a file path written in code (`new URL('../other/x.ts', import.meta.url)`, to
//   spawn or read it) is a dependency the import graph cannot see; it obeys the area rules all the same.
// Exit code 1 when anything is broken, 2 when the check itself could not run.

import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path/posix';
import { fileURLToPath } from 'node:url';
import { cruise, getAvailableTranspilers, type ICruiseResult, type IViolation } from 'dependency-cruiser';
import extractDepcruiseOptions from 'dependency-cruiser/config-utl/extract-depcruise-options';

/** Folders cruised, when present: the areas, and the examples users copy. */
const roots = ['src', 'examples'];

/** Test code (`*.test.ts`, `testdata/`) may use other areas in ways product code may not (see the config). */
const isTestCode = (path: string): boolean => /\.test\.ts$|(^|\/)testdata\//.test(path);

/** The rules added here, explained like the config's own rules. */
const extraRules = {
  'no-folder-cycle':
    'No cycles between sibling folders (two areas, or two modules of one area), tests aside: each folder is a layer, and a cycle makes two layers one.',
  'exports-no-internal': 'package.json exports publish no path under an internal/ folder.',
  'no-path-into-other-area':
    'A path written in code (to spawn or read a file) into another area obeys the import rules: only its index.ts, and none from src/runtime.',
};

/** One import between two sibling entries (folders or files) of the same parent folder. */
interface SiblingEdge {
  from: string;
  to: string;
  /** The file-level import that makes the edge, shown so the cycle can be found in the code. */
  via: string;
}

/**
 * Imports lifted to the level where the two files part: `src/a/x/f.ts → src/a/y/g.ts` becomes
 * `src/a/x/ → src/a/y/` (parent `src/a`). Edges between two files of one folder are left to no-circular.
 */
function siblingEdges(result: ICruiseResult): Map<string, SiblingEdge[]> {
  const byParent = new Map<string, SiblingEdge[]>();
  for (const module of result.modules) {
    if (isTestCode(module.source)) continue;
    for (const dependency of module.dependencies) {
      const target = dependency.resolved;
      if (dependency.couldNotResolve || isTestCode(target) || !module.source.startsWith('src/')) continue;
      if (!target.startsWith('src/')) continue;
      const from = module.source.split('/');
      const to = target.split('/');
      let common = 0;
      while (common < Math.min(from.length, to.length) - 1 && from[common] === to[common]) common++;
      const fromIsFolder = common < from.length - 1;
      const toIsFolder = common < to.length - 1;
      if (!fromIsFolder && !toIsFolder) continue;
      const parent = from.slice(0, common).join('/');
      const edge = {
        from: from.slice(0, common + 1).join('/') + (fromIsFolder ? '/' : ''),
        to: to.slice(0, common + 1).join('/') + (toIsFolder ? '/' : ''),
        via: `${module.source} → ${target}`,
      };
      const edges = byParent.get(parent) ?? [];
      edges.push(edge);
      byParent.set(parent, edges);
    }
  }
  return byParent;
}

/** One shortest cycle through `start`, as the edges taken, or undefined when `start` is on none. */
function cycleThrough(start: string, edges: SiblingEdge[]): SiblingEdge[] | undefined {
  const cameBy = new Map<string, SiblingEdge>();
  const queue = [start];
  while (queue.length > 0) {
    const node = queue.shift()!;
    for (const edge of edges) {
      if (edge.from !== node) continue;
      if (edge.to === start) {
        const path = [edge];
        for (let at = node; at !== start; at = cameBy.get(at)!.from) path.unshift(cameBy.get(at)!);
        return path;
      }
      if (!cameBy.has(edge.to)) {
        cameBy.set(edge.to, edge);
        queue.push(edge.to);
      }
    }
  }
  return undefined;
}

/** Each cycle between sibling folders once (a cycle is reported from its alphabetically first member). */
function folderCycles(result: ICruiseResult): IViolation[] {
  const violations: IViolation[] = [];
  for (const edges of siblingEdges(result).values()) {
    const seen = new Set<string>();
    for (const start of [...new Set(edges.map((edge) => edge.from))].sort()) {
      const cycle = cycleThrough(start, edges);
      if (cycle === undefined) continue;
      const members = cycle.map((edge) => edge.from);
      const key = [...members].sort().join(' ');
      if (seen.has(key) || members.every((member) => !member.endsWith('/'))) continue;
      seen.add(key);
      violations.push({
        type: 'cycle',
        from: start,
        to: cycle[0]!.to,
        cycle: cycle.map((edge) => ({ name: `${edge.to} (${edge.via})`, dependencyTypes: [] })),
        rule: { name: 'no-folder-cycle', severity: 'error' },
      });
    }
  }
  return violations;
}

/** Every string target in package.json `exports` that lies under an internal/ folder. */
function internalExports(): IViolation[] {
  if (!existsSync('package.json')) return [];
  const { exports } = JSON.parse(readFileSync('package.json', 'utf8')) as { exports?: unknown };
  const violations: IViolation[] = [];
  const visit = (value: unknown, key: string): void => {
    if (typeof value === 'string') {
      if (/(^|\/)internal\//.test(value) || /(^|\/)internal(\/|$)/.test(key)) {
        violations.push({
          type: 'module',
          from: `package.json exports["${key}"] → ${value}`,
          to: value,
          rule: { name: 'exports-no-internal', severity: 'error' },
        });
      }
    } else if (value !== null && typeof value === 'object') {
      for (const [name, inner] of Object.entries(value)) visit(inner, name.startsWith('.') ? name : key);
    }
  };
  visit(exports, '.');
  return violations;
}

/** One violation as a line (a cycle over several), in the shape of dependency-cruiser's `err` output. */
function describe(violation: IViolation): string {
  const hops = violation.cycle?.map((hop) => hop.name) ?? violation.via?.map((hop) => hop.name);
  const target = violation.type === 'module' ? '' : ` → ${hops === undefined ? violation.to : ''}`;
  const chain = hops === undefined ? '' : `\n${hops.map((hop) => `      ${hop}`).join(' →\n')}`;
  return `  ${violation.rule.severity} ${violation.rule.name}: ${violation.from}${target}${chain}`;
}

/** The area of a path under src/ (`src/<area>/...`), or undefined outside the areas. */
const areaOf = (path: string): string | undefined => /^src\/([^/]+)\//.exec(path)?.[1];

/**
 * Relative paths in string literals of product code that land in another area, other than through its
 * index.ts (and from src/runtime, at all). Import specifiers are left to dependency-cruiser.
 */
function pathsIntoOtherAreas(result: ICruiseResult): IViolation[] {
  const violations: IViolation[] = [];
  for (const module of result.modules) {
    const area = areaOf(module.source);
    if (area === undefined || isTestCode(module.source) || !existsSync(module.source)) continue;
    const code = readFileSync(module.source, 'utf8');
    for (const literal of code.matchAll(/(from\s*|import\s*\(\s*)?(['"`])(\.\.?\/[^'"`\s]*)\2/g)) {
      if (literal[1] !== undefined) continue;
      const target = join(dirname(module.source), literal[3]!);
      const other = areaOf(target);
      if (other === undefined || other === area) continue;
      if (area !== 'runtime' && /^src\/[^/]+\/index\.(ts|js|\$\{[^}]*\})$/.test(target)) continue;
      violations.push({
        type: 'dependency',
        from: module.source,
        to: `${target} (a path in the code, not an import)`,
        rule: { name: 'no-path-into-other-area', severity: 'error' },
      });
    }
  }
  return violations;
}

async function main(): Promise<number> {
  const config = fileURLToPath(new URL('../.dependency-cruiser.mjs', import.meta.url));
  // Without a TypeScript parser dependency-cruiser skips .ts files and would report a clean, empty graph.
  if (!getAvailableTranspilers().some((t) => t.name === 'typescript' && t.available)) {
    throw new TypeError('dependency-cruiser finds no usable typescript package to read .ts files with');
  }
  const options = await extractDepcruiseOptions(config);
  const cruised = await cruise(
    roots.filter((root) => existsSync(root)),
    { ...options, validate: true },
  );
  if (typeof cruised.output === 'string')
    throw new TypeError('dependency-cruiser returned text, not a result');
  const result = cruised.output;
  const violations = [
    ...result.summary.violations,
    ...folderCycles(result),
    ...pathsIntoOtherAreas(result),
    ...internalExports(),
  ];
  const counted = `${result.summary.totalCruised} modules, ${result.summary.totalDependenciesCruised} imports`;
  if (violations.length === 0) {
    process.stdout.write(`✔ import boundaries hold (${counted} checked)\n`);
    return 0;
  }
  process.stdout.write(`${violations.map(describe).join('\n')}\n\n`);
  process.stdout.write(`✘ ${violations.length} boundary violations (${counted} checked). Rules broken:\n`);
  const explanations = new Map<string, string>(Object.entries(extraRules));
  for (const rule of options.ruleSet?.forbidden ?? []) explanations.set(rule.name ?? '', rule.comment ?? '');
  for (const name of new Set(violations.map((violation) => violation.rule.name))) {
    process.stdout.write(`  ${name}: ${explanations.get(name) ?? ''}\n`);
  }
  process.stdout.write('See docs/architecture.md, "Boundaries".\n');
  return violations.some((violation) => violation.rule.severity === 'error') ? 1 : 0;
}

try {
  process.exitCode = await main();
} catch (error) {
  process.stderr.write(
    `check-boundaries: could not check: ${error instanceof Error ? error.stack : String(error)}\n`,
  );
  process.exitCode = 2;
}
