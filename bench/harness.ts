// The benchmark contract shared by every bench/*.bench.ts file, plus small measuring helpers.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';

/** One measured figure for one subject (Capstan or a peer) in a benchmark. */
export interface BenchResult {
  /** `capstan`, or the peer it is compared with: `prom-client`, `client_golang`, `docker-modem`, ... */
  subject: string;
  metric: string;
  unit: string;
  /** The headline value (usually the median). */
  value: number;
  p50?: number;
  p99?: number;
  samples?: number;
  peakRssMb?: number;
  notes?: string;
  /** What `value` must be, in `unit`; `npm run bench` marks it met or missed (`--check` fails on a miss). */
  goal?: Goal;
}

/**
 * A goal on a figure, as data: met when `value <op> goal.value` (a missing or NaN figure misses it).
 * `npm run bench` marks every goal in latest.json and latest.md; `npm run bench -- --check` exits 1 on a
 * miss.
 */
export interface Goal {
  op: '>=' | '>' | '<=' | '<';
  value: number;
  /** Why this bound, shown beside it. */
  why?: string;
}

/** A ratio the report computes: numerator.value / denominator.value. */
export interface Ratio {
  label: string;
  numerator: { subject: string; metric: string };
  denominator: { subject: string; metric: string };
  /** A bound on the ratio (a plain number, `×`). */
  goal?: Goal;
}

/** Whether `value` meets `goal`; a missing or NaN value never does. */
export function goalMet(goal: Goal, value: number | undefined): boolean {
  if (value === undefined || Number.isNaN(value)) return false;
  switch (goal.op) {
    case '>=':
      return value >= goal.value;
    case '>':
      return value > goal.value;
    case '<=':
      return value <= goal.value;
    case '<':
      return value < goal.value;
  }
}

/** A goal as people read it: `>= 3`, `<= 20 ms`, with its reason in parentheses. */
export function formatGoal(goal: Goal, unit?: string): string {
  return `${goal.op} ${goal.value}${unit ? ` ${unit}` : ''}${goal.why ? ` (${goal.why})` : ''}`;
}

/** A named benchmark run by `npm run bench [name...]`. */
export interface Benchmark {
  name: string;
  description: string;
  run(ctx: BenchContext): Promise<BenchResult[]>;
  ratios?: Ratio[];
}

export interface BenchContext {
  /** Fewer iterations (`npm run bench -- --quick`), for smoke runs. */
  quick: boolean;
  log: (msg: string) => void;
}

/** Nearest-rank percentile of `values` (p in 0..100). */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

/** Median, p50 and p99 of a sample set, in the units given. */
export function summarize(values: readonly number[]): {
  value: number;
  p50: number;
  p99: number;
  samples: number;
} {
  const p50 = percentile(values, 50);
  return { value: p50, p50, p99: percentile(values, 99), samples: values.length };
}

/**
 * Measure the event loop's delay while `fn` runs: returns the max and p99 delay in ms. Uses the
 * histogram from perf_hooks at 1 ms resolution, so a blocked loop shows as one long delay.
 */
export async function measureLoopDelay<T>(
  fn: () => Promise<T>,
): Promise<{ result: T; maxMs: number; p99Ms: number }> {
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  try {
    const result = await fn();
    return { result, maxMs: h.max / 1e6, p99Ms: h.percentile(99) / 1e6 };
  } finally {
    h.disable();
  }
}

/**
 * Peak resident set size of this process so far, in MiB: VmHWM from /proc/self/status. Not
 * `resourceUsage().maxRSS`: Linux keeps ru_maxrss across fork and exec, so a child spawned by a large
 * parent would report the parent's peak.
 */
export function peakRssMb(): number {
  try {
    const kb = Number(/VmHWM:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1]);
    if (Number.isFinite(kb)) return kb / 1024;
  } catch {}
  return process.resourceUsage().maxRSS / 1024;
}

/**
 * Build a Go peer of bench/peers/ (a module folder: go.mod, go.sum, *.go) with `go build`, once per hash of
 * its sources, into ~/.cache/capstan/bench/<folder>-<hash>; returns the binary. Only `npm run bench` builds
 * peers: they are part of the comparison, so a failed build fails the benchmark.
 */
export function buildGoPeer(dir: string, log: (msg: string) => void): string {
  const hash = createHash('sha256');
  for (const f of readdirSync(dir)
    .filter((f) => f === 'go.mod' || f === 'go.sum' || f.endsWith('.go'))
    .sort()) {
    hash.update(f).update(readFileSync(join(dir, f)));
  }
  const cache = join(process.env.CAPSTAN_CACHE_DIR ?? join(homedir(), '.cache', 'capstan'), 'bench');
  const bin = join(cache, `${basename(dir)}-${hash.digest('hex').slice(0, 12)}`);
  if (!existsSync(bin)) {
    mkdirSync(cache, { recursive: true });
    log(`go build -> ${bin}`);
    execFileSync('go', ['build', '-trimpath', '-o', bin, '.'], {
      cwd: dir,
      env: { ...process.env, CGO_ENABLED: '0' },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
  }
  return bin;
}

/** The version a Go peer's go.mod requires of `module` (for the report's notes), or `?`. */
export function goModuleVersion(dir: string, module: string): string {
  const line = readFileSync(join(dir, 'go.mod'), 'utf8')
    .split('\n')
    .find((l) => l.trim().startsWith(`${module} `));
  return line?.trim().split(/\s+/)[1] ?? '?';
}
