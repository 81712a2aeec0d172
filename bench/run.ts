// `npm run bench [-- --quick] [name...]`: runs bench/*.bench.ts side by side with their peers and writes
// bench/results/latest.json and latest.md (medians, p99, ratios, peak RSS).
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Benchmark, BenchResult } from './harness.ts';

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const quick = args.includes('--quick');
const only = args.filter((a) => !a.startsWith('-'));

interface Report {
  name: string;
  description: string;
  results: BenchResult[];
  ratios: Array<{ label: string; value: number; goal?: string }>;
  error?: string;
  seconds: number;
}

const files = readdirSync(here)
  .filter((f) => f.endsWith('.bench.ts'))
  .sort();
const reports: Report[] = [];
for (const file of files) {
  const mod = (await import(pathToFileURL(join(here, file)).href)) as { default: Benchmark };
  const bench = mod.default;
  if (only.length > 0 && !only.includes(bench.name)) continue;
  const started = performance.now();
  const log = (msg: string) => process.stderr.write(`[bench ${bench.name}] ${msg}\n`);
  log(bench.description);
  try {
    const results = await bench.run({ quick, log });
    const find = (s: string, m: string) => results.find((r) => r.subject === s && r.metric === m)?.value;
    const ratios = (bench.ratios ?? []).map((r) => {
      const n = find(r.numerator.subject, r.numerator.metric);
      const d = find(r.denominator.subject, r.denominator.metric);
      return { label: r.label, value: n !== undefined && d ? n / d : Number.NaN, goal: r.goal };
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

const machine = {
  node: process.version,
  cpus: cpus().length,
  cpuModel: cpus()[0]?.model,
  memGiB: totalmem() / 2 ** 30,
};
const out = join(here, 'results');
mkdirSync(out, { recursive: true });
writeFileSync(
  join(out, 'latest.json'),
  `${JSON.stringify({ date: new Date().toISOString(), quick, machine, benchmarks: reports }, null, 2)}\n`,
);

const fmt = (v: number | undefined) =>
  v === undefined || Number.isNaN(v) ? '' : Math.abs(v) >= 100 ? v.toFixed(0) : v.toPrecision(3);
const lines = [
  `# Capstan benchmarks`,
  '',
  `${new Date().toISOString()} · Node ${machine.node} · ${machine.cpus} × ${machine.cpuModel ?? 'cpu'} · ${machine.memGiB.toFixed(0)} GiB${quick ? ' · quick' : ''}`,
  '',
];
for (const r of reports) {
  lines.push(`## ${r.name}`, '', r.description, '');
  if (r.error) lines.push(`**failed:** ${r.error}`, '');
  if (r.results.length > 0) {
    lines.push('| subject | metric | value | unit | p50 | p99 | samples | peak RSS MiB | notes |');
    lines.push('|---|---|---|---|---|---|---|---|---|');
    for (const x of r.results) {
      lines.push(
        `| ${x.subject} | ${x.metric} | ${fmt(x.value)} | ${x.unit} | ${fmt(x.p50)} | ${fmt(x.p99)} | ${x.samples ?? ''} | ${fmt(x.peakRssMb)} | ${x.notes ?? ''} |`,
      );
    }
    lines.push('');
  }
  if (r.ratios.length > 0) {
    lines.push('| ratio | value | goal |', '|---|---|---|');
    for (const q of r.ratios) lines.push(`| ${q.label} | ${fmt(q.value)}× | ${q.goal ?? ''} |`);
    lines.push('');
  }
  lines.push(`_${r.seconds.toFixed(1)} s_`, '');
}
writeFileSync(join(out, 'latest.md'), `${lines.join('\n')}\n`);
process.stderr.write(`wrote ${join(out, 'latest.json')} and latest.md\n`);
if (reports.some((r) => r.error)) process.exitCode = 1;
