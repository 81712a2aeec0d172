// `npm run bench` marks every goal met or missed, and `--check` turns a miss into a failing exit status.
// The real bench/run.ts runs tiny fixture benchmarks (test/fixtures/bench) through `--dir`, writing to a
// temporary `--out`: the real benchmarks take minutes.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { formatGoal, goalMet } from '../bench/harness.ts';

const runTs = fileURLToPath(new URL('../bench/run.ts', import.meta.url));
const fixtures = fileURLToPath(new URL('./fixtures/bench', import.meta.url));
const out = mkdtempSync(join(tmpdir(), 'capstan-bench-'));
after(() => rmSync(out, { recursive: true, force: true }));

function bench(...args: string[]) {
  const r = spawnSync(
    process.execPath,
    ['--conditions=capstan-source', runTs, '--dir', fixtures, '--out', out, ...args],
    { encoding: 'utf8', timeout: 60_000 },
  );
  return { status: r.status, stderr: r.stderr };
}

interface LatestJson {
  goals: { met: number; missed: number; failedBenchmarks: number };
  benchmarks: Array<{
    name: string;
    error?: string;
    results: Array<{ metric: string; subject: string; met?: boolean }>;
    ratios: Array<{ label: string; value: number | null; met?: boolean }>;
  }>;
}

const latest = () => JSON.parse(readFileSync(join(out, 'latest.json'), 'utf8')) as LatestJson;

describe('goal evaluation', () => {
  test('each operator, at and around its bound; a missing or NaN figure never meets a goal', () => {
    assert.equal(goalMet({ op: '>=', value: 3 }, 3), true);
    assert.equal(goalMet({ op: '>=', value: 3 }, 2.99), false);
    assert.equal(goalMet({ op: '>', value: 3 }, 3), false);
    assert.equal(goalMet({ op: '>', value: 3 }, 3.01), true);
    assert.equal(goalMet({ op: '<=', value: 20 }, 20), true);
    assert.equal(goalMet({ op: '<=', value: 20 }, 20.01), false);
    assert.equal(goalMet({ op: '<', value: 10 }, 10), false);
    assert.equal(goalMet({ op: '<', value: 10 }, 9.99), true);
    assert.equal(goalMet({ op: '<=', value: 0 }, 0), true);
    assert.equal(goalMet({ op: '>=', value: 1 }, Number.NaN), false);
    assert.equal(goalMet({ op: '<=', value: 1 }, Number.NaN), false);
    assert.equal(goalMet({ op: '<=', value: 1 }, undefined), false);
    assert.equal(formatGoal({ op: '<=', value: 20, why: 'a scrape' }, 'ms'), '<= 20 ms (a scrape)');
  });
});

describe('npm run bench', () => {
  test('marks every goal met or missed in latest.json and latest.md; a plain run exits 0', () => {
    const r = bench('meets', 'misses');
    assert.equal(r.status, 0, r.stderr);
    const j = latest();
    assert.deepEqual(j.goals, { met: 3, missed: 3, failedBenchmarks: 0 });
    const [meets, misses] = j.benchmarks;
    assert.equal(meets!.name, 'meets');
    assert.equal(meets!.results.find((x) => x.subject === 'capstan')!.met, true);
    assert.equal(meets!.results.find((x) => x.subject === 'peer')!.met, undefined);
    assert.equal(meets!.ratios[0]!.met, true);
    assert.equal(misses!.results.find((x) => x.metric === 'loop delay')!.met, false);
    assert.equal(misses!.results.find((x) => x.metric === 'errors')!.met, true);
    assert.deepEqual(
      misses!.ratios.map((q) => [q.label, q.met]),
      [
        ['misses: capstan / peer speed', false],
        ['misses: capstan / absent peer', false],
        ['misses: no goal', undefined],
      ],
    );
    const md = readFileSync(join(out, 'latest.md'), 'utf8');
    assert.match(md, /^Goals: 3 met, 3 missed\.$/m);
    assert.match(md, /^- ❌ misses: capstan loop delay = 25\.0 ms, goal <= 20$/m);
    assert.match(md, /^\| capstan \| loop delay \| 25\.0 \| ms \|.*\| <= 20 ms ❌ missed \|/m);
    assert.match(md, /^\| capstan \| speed \| 10\.0 \| ops\/s \|.*\| >= 10 ops\/s ✅ met \|/m);
    assert.match(
      md,
      /^\| misses: capstan \/ peer speed \| 5\.00× \| >= 10 \(ten times the peer\) ❌ missed \|$/m,
    );
    assert.match(md, /^\| misses: capstan \/ absent peer \| × \| >= 1 ❌ missed \|$/m);
    assert.match(md, /^\| misses: no goal \| 5\.00× \| {2}\|$/m);
  });

  test('--check exits 1 listing every missed goal', () => {
    const r = bench('--check', 'meets', 'misses');
    assert.equal(r.status, 1, r.stderr);
    const listed = r.stderr.split('\n').filter((l) => l.startsWith('missed: '));
    assert.deepEqual(listed, [
      'missed: misses: capstan loop delay = 25.0 ms, goal <= 20',
      'missed: misses: misses: capstan / peer speed = 5.00 ×, goal >= 10 (ten times the peer)',
      'missed: misses: misses: capstan / absent peer = n/a ×, goal >= 1',
    ]);
  });

  test('--check exits 0 when every goal is met', () => {
    const r = bench('--check', 'meets');
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(latest().goals, { met: 2, missed: 0, failedBenchmarks: 0 });
  });

  test('a failed benchmark fails the run, with or without --check', () => {
    for (const args of [
      ['fails', 'meets'],
      ['--check', 'fails', 'meets'],
    ]) {
      const r = bench(...args);
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, /^failed: fails: peer could not start$/m);
      assert.equal(latest().goals.failedBenchmarks, 1);
    }
    assert.match(readFileSync(join(out, 'latest.md'), 'utf8'), /; 1 benchmark\(s\) failed\.$/m);
  });

  test('an unknown benchmark name is a usage error, not an empty run', () => {
    const r = bench('--check', 'nosuch');
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /unknown benchmark nosuch; known: fails, meets, misses/);
  });
});
