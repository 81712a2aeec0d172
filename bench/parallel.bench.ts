// Bounded-parallel fan-out: 1,000 tasks of 50 ms at concurrency 100 (the ideal is 10 waves, 0.5 s).
// `fanOut` in-process (the goal: under 0.6 s), and the same as commands — `capstan parallel` beside
// `xargs -P` and GNU parallel running `sleep 0.05` a thousand times — where process start-up dominates.
import { execFileSync, spawnSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { fanOut } from '../src/automation/index.ts';
import { ensurePeers } from '../src/peers/index.ts';
import { type Benchmark, type BenchResult, summarize } from './harness.ts';

const TASKS = 1_000;
const CONCURRENCY = 100;
const TASK_MS = 50;
const main = new URL('../src/cli/main.ts', import.meta.url).pathname;

function wallMs(command: string, args: string[], input?: string): number {
  const started = performance.now();
  const r = spawnSync(command, args, { input, stdio: ['pipe', 'ignore', 'pipe'], encoding: 'utf8' });
  const ms = performance.now() - started;
  if (r.status !== 0)
    throw new Error(`${command} ${args.slice(0, 4).join(' ')}... exited ${r.status}: ${r.stderr}`);
  return ms;
}

const bench: Benchmark = {
  name: 'parallel',
  description: `fan-out of ${TASKS} tasks of ${TASK_MS} ms at concurrency ${CONCURRENCY}: fanOut in-process; capstan parallel vs xargs -P and GNU parallel running sleep`,
  async run({ quick, log }) {
    const rounds = quick ? 2 : 5;
    ensurePeers(['gnu-parallel'], log);
    const gnuParallel = execFileSync('sh', ['-c', 'command -v parallel'], { encoding: 'utf8' }).trim();
    const items = Array.from({ length: TASKS }, (_, i) => String(i));
    const samples = new Map<string, number[]>();
    const add = (subject: string, ms: number) => samples.set(subject, [...(samples.get(subject) ?? []), ms]);
    for (let round = 0; round < rounds; round++) {
      const report = await fanOut(items, () => sleep(TASK_MS), { concurrency: CONCURRENCY });
      if (report.ok !== TASKS) throw new Error(`fanOut: ${report.ok} of ${TASKS} ok`);
      add('capstan fanOut', report.durationMs);
      const seconds = String(TASK_MS / 1000);
      // The same work as commands: each item is an argument to sleep, which sums its operands, so the item
      // "0" adds nothing.
      add(
        'capstan parallel',
        wallMs(process.execPath, [
          '--conditions=capstan-source',
          main,
          'parallel',
          '-j',
          String(CONCURRENCY),
          '--no-summary',
          '--',
          'sleep',
          seconds,
          '{}e-9',
          ':::',
          ...items,
        ]),
      );
      add(
        'xargs -P',
        wallMs(
          'xargs',
          ['-P', String(CONCURRENCY), '-I{}', 'sleep', seconds, '{}e-9'],
          `${items.join('\n')}\n`,
        ),
      );
      add(
        'GNU parallel',
        wallMs(gnuParallel, [
          '--will-cite',
          '-j',
          String(CONCURRENCY),
          'sleep',
          seconds,
          '{}e-9',
          ':::',
          ...items,
        ]),
      );
      log(
        `round ${round + 1}: ${[...samples].map(([s, v]) => `${s} ${Math.round(v.at(-1)!)} ms`).join(', ')}`,
      );
    }
    const results: BenchResult[] = [];
    for (const [subject, values] of samples) {
      results.push({
        subject,
        metric: 'wall',
        unit: 'ms',
        ...summarize(values),
        ...(subject === 'capstan fanOut'
          ? {
              goal: {
                op: '<',
                value: 600,
                why: `${TASKS} × ${TASK_MS} ms at ${CONCURRENCY}: ideal 500 ms`,
              } as const,
            }
          : {}),
        ...(subject === 'capstan fanOut' ? {} : { notes: 'a process per item: start-up cost included' }),
      });
    }
    return results;
  },
  ratios: [
    {
      label: 'capstan parallel / xargs -P (wall time, lower is better)',
      numerator: { subject: 'capstan parallel', metric: 'wall' },
      denominator: { subject: 'xargs -P', metric: 'wall' },
    },
    {
      label: 'capstan parallel / GNU parallel (wall time, lower is better)',
      numerator: { subject: 'capstan parallel', metric: 'wall' },
      denominator: { subject: 'GNU parallel', metric: 'wall' },
    },
  ],
};

export default bench;
