// Start-up: `capstan --help` as users run it (the built package, and the sources in a checkout) and as a
// single executable from `capstan build-binary` (goal for both shipped forms: under 150 ms).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildBinary } from '../src/automation/index.ts';
import { type Benchmark, type BenchResult, summarize } from './harness.ts';

const root = new URL('..', import.meta.url).pathname;

function wallMs(command: string, args: string[]): number {
  const started = performance.now();
  const r = spawnSync(command, args, { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8', env: {} });
  const ms = performance.now() - started;
  if (r.status !== 0) throw new Error(`${command} ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return ms;
}

const bench: Benchmark = {
  name: 'startup',
  description:
    'capstan --help wall time: node dist/cli/main.js, the sources with type stripping, and the single executable',
  async run({ quick, log }) {
    const runs = quick ? 10 : 30;
    const dir = mkdtempSync(join(tmpdir(), 'capstan-startup-'));
    try {
      const binary = await buildBinary({
        entry: join(root, 'src/cli/main.ts'),
        name: 'capstan',
        outDir: dir,
        define: { CAPSTAN_VERSION: '"bench"' },
        log,
      });
      const subjects: Array<[string, string, string[]]> = [
        ['capstan binary', binary.path, ['--help']],
        [
          'node sources',
          process.execPath,
          ['--conditions=capstan-source', join(root, 'src/cli/main.ts'), '--help'],
        ],
        ['node -e 0', process.execPath, ['-e', '0']],
      ];
      const dist = join(root, 'dist/cli/main.js');
      if (existsSync(dist)) subjects.splice(1, 0, ['node dist', process.execPath, [dist, '--help']]);
      else log('no dist/: run `npm run build` first to measure the built package');
      const samples = new Map<string, number[]>(subjects.map(([s]) => [s, []]));
      for (let i = 0; i < runs; i++) {
        for (const [subject, command, args] of subjects) samples.get(subject)!.push(wallMs(command, args));
      }
      return subjects.map(([subject]): BenchResult => {
        const shipped = subject === 'capstan binary' || subject === 'node dist';
        return {
          subject,
          metric: 'help-wall',
          unit: 'ms',
          ...summarize(samples.get(subject)!),
          ...(shipped
            ? { goal: { op: '<', value: 150, why: 'issue #15: start-up under 150 ms' } as const }
            : {}),
          ...(subject === 'capstan binary'
            ? {
                notes: `${(binary.bytes / 1e6).toFixed(0)} MB executable, ${(binary.bundleBytes / 1e6).toFixed(1)} MB of bundled JavaScript`,
              }
            : {}),
          ...(subject === 'node -e 0' ? { notes: 'the floor: Node starting and doing nothing' } : {}),
        };
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
  ratios: [
    {
      label: 'capstan binary / node -e 0 (start-up, lower is better)',
      numerator: { subject: 'capstan binary', metric: 'help-wall' },
      denominator: { subject: 'node -e 0', metric: 'help-wall' },
    },
  ],
};

export default bench;
