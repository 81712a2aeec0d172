import assert from 'node:assert/strict';
import { test } from 'node:test';
import { OverlapDedupe } from './resume.ts';

const MS = 1_000_000n;

type Line = readonly [ns: bigint, stream: string, text: string];

/** The Docker log lines' dedupe: position = timestamp (ns), key = stream and text. */
class Deduper {
  readonly #d: OverlapDedupe<Line>;
  constructor(overlapMs: number) {
    this.#d = new OverlapDedupe<Line>({
      overlap: BigInt(overlapMs) * MS,
      position: ([ns]) => ns,
      key: ([, stream, text]) => `${stream}|${text}`,
    });
  }
  resumeFrom = () => this.#d.resumePoint();
  beginReplay = () => this.#d.beginReplay();
  admit = (ns: bigint, stream: string, text: string) => this.#d.admit([ns, stream, text]);
  get dropped() {
    return this.#d.dropped;
  }
  get maxNs() {
    return this.#d.latest;
  }
}

test('Deduper drops exactly the replayed lines, keeps genuine repeats and out-of-order newcomers', () => {
  const d = new Deduper(1000);
  assert.equal(d.resumeFrom(), undefined);
  // First connection: two identical lines at the same instant are both real.
  for (const [ns, s, t] of [
    [1000n * MS, 'stdout', 'a'],
    [1500n * MS, 'stdout', 'x'],
    [1500n * MS, 'stdout', 'x'],
    [1600n * MS, 'stderr', 'e'],
  ] as const) {
    assert.equal(d.admit(ns, s, t), true);
  }
  assert.equal(d.resumeFrom(), 600n * MS);
  d.beginReplay();
  // The daemon replays from 600 ms: everything it sends up to 1600 ms was delivered, except a stderr line
  // stamped 1550 ms that it had not sent before (written out of order across streams).
  const replay: Array<[bigint, string, string, boolean]> = [
    [1000n * MS, 'stdout', 'a', false],
    [1500n * MS, 'stdout', 'x', false],
    [1500n * MS, 'stdout', 'x', false],
    [1550n * MS, 'stderr', 'late', true],
    [1600n * MS, 'stderr', 'e', false],
    [1600n * MS, 'stderr', 'e', true], // a third copy was never delivered: it is new
    [1700n * MS, 'stdout', 'b', true],
  ];
  for (const [ns, s, t, fresh] of replay) assert.equal(d.admit(ns, s, t), fresh, `${ns} ${s} ${t}`);
  assert.equal(d.dropped, 4);
  assert.equal(d.maxNs, 1700n * MS);
});

test('Deduper forgets lines older than the window', () => {
  const d = new Deduper(100);
  for (let i = 0n; i < 10_000n; i++) d.admit(i * MS, 'stdout', `l${i}`);
  d.beginReplay();
  // 9_800 ms is outside the 100 ms window before 9_999 ms: a replay never sends it, and it is not remembered.
  assert.equal(d.admit(9_800n * MS, 'stdout', 'l9800'), true);
  assert.equal(d.admit(9_950n * MS, 'stdout', 'l9950'), false);
});
