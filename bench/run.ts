// `npm run bench [-- --quick] [--check] [--dir <folder>] [--out <folder>] [name...]`: runs bench/*.bench.ts
// side by side with their peers and writes bench/results/latest.json and latest.md (medians, p99, ratios,
// peak RSS, and every goal marked met or missed). `--check` exits 1 when a goal is missed or a benchmark
// failed, listing them; `--dir` runs the *.bench.ts of another folder (the tests' fixtures), `--out`
// writes the results elsewhere.
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { type Benchmark, type BenchResult, formatGoal, type Goal, goalMet } from './harness.ts';

const here = dirname(fileURLToPath(import.meta.url));
const { values: opts, positionals: only } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    check: { type: 'boolean', default: false },
    dir: { type: 'string' },
    out: { type: 'string' },
  },
  allowPositionals: true,
});
const quick = opts.quick;
const dir = opts.dir ? resolve(opts.dir) : here;
const out = opts.out ? resolve(opts.out) : join(here, 'results');

/** A result as reported: the figure plus, when it has a goal, whether it was met. */
type ReportedResult = BenchResult & { met?: boolean };

interface ReportedRatio {
  label: string;
  value: number;
  goal?: Goal;
  met?: boolean;
}

interface Report {
  name: string;
  description: string;
  results: ReportedResult[];
  ratios: ReportedRatio[];
  error?: string;
  seconds: number;
}

/** One goal and how it went, for the summary and `--check`. */
interface GoalMark {
  benchmark: string;
  what: string;
  value: number;
  unit: string;
  goal: Goal;
  met: boolean;
}

const benches: Benchmark[] = [];
for (const file of readdirSync(dir)
  .filter((f) => f.endsWith('.bench.ts'))
  .sort()) {
  const mod = (await import(pathToFileURL(join(dir, file)).href)) as { default: Benchmark };
  benches.push(mod.default);
}
const unknown = only.filter((n) => !benches.some((b) => b.name === n));
if (unknown.length > 0) {
  process.stderr.write(
    `unknown benchmark ${unknown.join(', ')}; known: ${benches.map((b) => b.name).join(', ')}\n`,
  );
  process.exit(2);
}

const reports: Report[] = [];
for (const bench of benches) {
  if (only.length > 0 && !only.includes(bench.name)) continue;
  const started = performance.now();
  const log = (msg: string) => process.stderr.write(`[bench ${bench.name}] ${msg}\n`);
  log(bench.description);
  try {
    const raw = await bench.run({ quick, log });
    const results: ReportedResult[] = raw.map((r) => (r.goal ? { ...r, met: goalMet(r.goal, r.value) } : r));
    const find = (s: string, m: string) => raw.find((r) => r.subject === s && r.metric === m)?.value;
    const ratios = (bench.ratios ?? []).map((r): ReportedRatio => {
      const n = find(r.numerator.subject, r.numerator.metric);
      const d = find(r.denominator.subject, r.denominator.metric);
      const value = n !== undefined && d ? n / d : Number.NaN;
      return r.goal
        ? { label: r.label, value, goal: r.goal, met: goalMet(r.goal, value) }
        : { label: r.label, value };
    });
    reports.push({ name: bench.name, description: bench.description, results, ratios, seconds: 0 });
  } catch (err) {
    log(`FAILED: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    reports.push({
      name: bench.name,
      description: bench.description,
      results: [],
      ratios: [],
      error: err instanceof Error ? err.message : String(err),
      seconds: 0,
    });
  }
  reports[reports.length - 1]!.seconds = (performance.now() - started) / 1000;
}

const goals: GoalMark[] = reports.flatMap((r) => [
  ...r.results.flatMap((x) =>
    x.goal
      ? [
          {
            benchmark: r.name,
            what: `${x.subject} ${x.metric}`,
            value: x.value,
            unit: x.unit,
            goal: x.goal,
            met: x.met === true,
          },
        ]
      : [],
  ),
  ...r.ratios.flatMap((q) =>
    q.goal
      ? [{ benchmark: r.name, what: q.label, value: q.value, unit: '×', goal: q.goal, met: q.met === true }]
      : [],
  ),
]);
const missed = goals.filter((g) => !g.met);
const failed = reports.filter((r) => r.error);

const machine = {
  node: process.version,
  cpus: cpus().length,
  cpuModel: cpus()[0]?.model,
  memGiB: totalmem() / 2 ** 30,
};
mkdirSync(out, { recursive: true });
writeFileSync(
  join(out, 'latest.json'),
  `${JSON.stringify(
    {
      date: new Date().toISOString(),
      quick,
      machine,
      goals: { met: goals.length - missed.length, missed: missed.length, failedBenchmarks: failed.length },
      benchmarks: reports,
    },
    null,
    2,
  )}\n`,
);

const fmt = (v: number | undefined) =>
  v === undefined || Number.isNaN(v) ? '' : Math.abs(v) >= 100 ? v.toFixed(0) : v.toPrecision(3);
const mark = (goal: Goal | undefined, met: boolean | undefined, unit?: string) =>
  goal ? `${formatGoal(goal, unit)} ${met ? '✅ met' : '❌ missed'}` : '';
const lines = [
  `# Capstan benchmarks`,
  '',
  `${new Date().toISOString()} · Node ${machine.node} · ${machine.cpus} × ${machine.cpuModel ?? 'cpu'} · ${machine.memGiB.toFixed(0)} GiB${quick ? ' · quick' : ''}`,
  '',
  `Goals: ${goals.length - missed.length} met, ${missed.length} missed${failed.length > 0 ? `; ${failed.length} benchmark(s) failed` : ''}.`,
  '',
];
for (const g of missed) {
  lines.push(
    `- ❌ ${g.benchmark}: ${g.what} = ${fmt(g.value) || 'n/a'} ${g.unit}, goal ${formatGoal(g.goal)}`,
  );
}
if (missed.length > 0) lines.push('');
for (const r of reports) {
  lines.push(`## ${r.name}`, '', r.description, '');
  if (r.error) lines.push(`**failed:** ${r.error}`, '');
  if (r.results.length > 0) {
    lines.push('| subject | metric | value | unit | p50 | p99 | samples | peak RSS MiB | goal | notes |');
    lines.push('|---|---|---|---|---|---|---|---|---|---|');
    for (const x of r.results) {
      lines.push(
        `| ${x.subject} | ${x.metric} | ${fmt(x.value)} | ${x.unit} | ${fmt(x.p50)} | ${fmt(x.p99)} | ${x.samples ?? ''} | ${fmt(x.peakRssMb)} | ${mark(x.goal, x.met, x.unit)} | ${x.notes ?? ''} |`,
      );
    }
    lines.push('');
  }
  if (r.ratios.length > 0) {
    lines.push('| ratio | value | goal |', '|---|---|---|');
    for (const q of r.ratios) lines.push(`| ${q.label} | ${fmt(q.value)}× | ${mark(q.goal, q.met)} |`);
    lines.push('');
  }
  lines.push(`_${r.seconds.toFixed(1)} s_`, '');
}
writeFileSync(join(out, 'latest.md'), `${lines.join('\n')}\n`);
process.stderr.write(`wrote ${join(out, 'latest.json')} and latest.md\n`);
process.stderr.write(`goals: ${goals.length - missed.length} met, ${missed.length} missed\n`);
for (const g of missed) {
  process.stderr.write(
    `missed: ${g.benchmark}: ${g.what} = ${fmt(g.value) || 'n/a'} ${g.unit}, goal ${formatGoal(g.goal)}\n`,
  );
}
for (const r of failed) process.stderr.write(`failed: ${r.name}: ${r.error}\n`);
// A failed benchmark always fails the run; a missed goal only with --check (a plain run is a measurement).
if (failed.length > 0 || (opts.check && missed.length > 0)) process.exitCode = 1;
