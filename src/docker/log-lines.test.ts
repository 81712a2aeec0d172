import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { LineSplitter, type RawLine, toLine } from './log-lines.ts';

const MAX = 64 * 1024;
/** dockerd's partial message size: a longer line is stored as several messages, each with its timestamp. */
const MESSAGE = 16 * 1024;

/** Daemon timestamps, one per message, strictly increasing (Go trims trailing zeros, so lengths vary). */
function stamp(i: number): string {
  return `2026-12-02T04:00:00.${String(100_000_000 + i * 1_000).replace(/0+$/, '')}Z`;
}

/** One line of `text` as dockerd sends it with timestamps: one `<ts> <16 KiB>` message per piece, as frames. */
function messages(text: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0, i = 0; at < text.length || i === 0; at += MESSAGE, i++) {
    const end = Math.min(at + MESSAGE, text.length);
    const nl = end === text.length ? '\n' : '';
    out.push(Buffer.concat([Buffer.from(`${stamp(i)} `), text.subarray(at, end), Buffer.from(nl)]));
  }
  return out;
}

/** Feed `payloads` and collect the lines, tracking the most bytes the splitter held at once. */
function feed(
  splitter: LineSplitter,
  payloads: Array<{ data: Buffer; continued?: boolean }>,
): { lines: RawLine[]; held: number } {
  const lines: RawLine[] = [];
  let held = 0;
  for (const p of payloads) {
    splitter.push('stdout', p.data, lines, p.continued);
    held = Math.max(held, splitter.heldBytes);
  }
  splitter.flush(lines);
  return { lines, held };
}

/** The pieces as log lines, checked: all but the last partial, each at most MAX bytes, one timestamp. */
function checkPieces(lines: RawLine[], tty = false): Buffer {
  const parsed = lines.map(([stream, raw, partial]) => toLine('id', 'c', stream, raw, tty, partial));
  assert.ok(parsed.length > 1, 'split');
  assert.deepEqual(
    parsed.map((l) => l.partial ?? false),
    [...Array(parsed.length - 1).fill(true), false],
  );
  for (const l of parsed) {
    assert.equal(l.timestamp, stamp(0), 'every piece carries the first timestamp');
    assert.ok(Buffer.byteLength(l.text) <= MAX, `piece of ${Buffer.byteLength(l.text)} bytes`);
  }
  return Buffer.concat(parsed.map((l) => Buffer.from(l.text)));
}

describe('LineSplitter: maxLineBytes', () => {
  test('a line ten times the cap (multiplexed) comes out in pieces, whole and in order, never held past the cap', () => {
    const text = Buffer.alloc(10 * MAX, 'x');
    for (let i = 0; i < text.length; i += 997) text[i] = 0x61 + (i % 26);
    const frames = messages(text).map((data) => ({ data }));
    const { lines, held } = feed(new LineSplitter(true, MAX), frames);
    assert.ok(held <= MAX + 64 + MESSAGE + 64, `held ${held} bytes`);
    assert.ok(checkPieces(lines).equals(text));
    // The same frames cut in other places (a large frame delivered by the demuxer in pieces, marked
    // continued) give exactly the same pieces: a replay after a reconnect dedupes against them.
    const recut = frames.flatMap(({ data }) => [
      { data: data.subarray(0, 5000) },
      { data: data.subarray(5000, 5001), continued: true },
      { data: data.subarray(5001), continued: true },
    ]);
    assert.deepEqual(feed(new LineSplitter(true, MAX), recut).lines, lines);
  });

  test('a TTY line ten times the cap: message timestamps cut out while streaming, bounded, in order', () => {
    const text = Buffer.alloc(10 * MAX + 123, 'y');
    for (let i = 0; i < text.length; i += 1009) text[i] = 0x41 + (i % 26);
    const stream = Buffer.concat([...messages(text), Buffer.from(`${stamp(999)} after\n`)]);
    for (const chunk of [1, 17, 4096, 65_536]) {
      const payloads: Array<{ data: Buffer }> = [];
      for (let at = 0; at < stream.length; at += chunk)
        payloads.push({ data: stream.subarray(at, at + chunk) });
      const { lines, held } = feed(new LineSplitter(false, MAX), payloads);
      assert.ok(held <= MAX + 128 + chunk, `chunks of ${chunk}: held ${held} bytes`);
      assert.deepEqual(lines.at(-1), ['stdout', `${stamp(999)} after`]);
      assert.ok(checkPieces(lines.slice(0, -1), true).equals(text), `chunks of ${chunk}`);
    }
  });

  test('pieces end on UTF-8 character boundaries: each decodes alone, the bytes joined are the line', () => {
    const text = Buffer.from('€'.repeat(Math.ceil((3 * MAX) / 3) + 1));
    const { lines } = feed(
      new LineSplitter(true, MAX),
      messages(text).map((data) => ({ data })),
    );
    assert.ok(checkPieces(lines).equals(text));
    for (const [, raw] of lines) assert.doesNotMatch(raw, /\uFFFD/);
  });

  test('lines up to the cap stay whole, however they arrive', () => {
    const text = Buffer.alloc(MAX, 'z');
    const { lines } = feed(
      new LineSplitter(true, MAX),
      messages(text).map((data) => ({ data })),
    );
    assert.deepEqual(lines, [['stdout', `${stamp(0)} ${text}`]]);
  });
});

describe('toLine', () => {
  test('a line without a daemon timestamp is passed through whole, with no position', () => {
    assert.deepEqual(toLine('id', 'c', 'stdout', 'no timestamp here', false), {
      containerId: 'id',
      container: 'c',
      stream: 'stdout',
      timestamp: '',
      timeNs: undefined,
      text: 'no timestamp here',
    });
    assert.equal(toLine('id', 'c', 'stderr', `${stamp(1)} hi`, false).timeNs, 1_796_184_000_100_001_000n);
  });
});
