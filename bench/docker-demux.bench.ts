// Demultiplexing Docker's 8-byte-header stream: Capstan's Demuxer vs docker-modem's demuxStream, on the same
// generated stream (64 KiB chunks), for "mixed" frames (1 B..4 KiB) and "log line" frames (20..200 B).
// Both read the same kind of source: a Readable emitting the 64 KiB chunks as they are (as a socket does); a
// byte-mode Readable would merge its buffered chunks on read() and measure Buffer.concat instead.
import { Readable, Writable } from 'node:stream';
import Modem from 'docker-modem';
import { Demuxer, demux, demuxChunks, encodeFrame } from '../src/docker/index.ts';
import type { Benchmark, BenchResult } from './harness.ts';
import { peakRssMb, summarize } from './harness.ts';

const CHUNK = 64 * 1024;

function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A multiplexed stream of about `bytes`, frames of min..max payload bytes, 90% stdout / 10% stderr. */
function generate(
  bytes: number,
  min: number,
  max: number,
): { stream: Buffer; payload: number; frames: number } {
  const rand = rng(7);
  const fill = Buffer.alloc(max, 'x');
  const parts: Buffer[] = [];
  let size = 0;
  let payload = 0;
  let frames = 0;
  while (size < bytes) {
    const n = min + Math.floor(rand() * (max - min + 1));
    const f = encodeFrame(rand() < 0.9 ? 'stdout' : 'stderr', fill.subarray(0, n));
    parts.push(f);
    size += f.length;
    payload += n;
    frames++;
  }
  return { stream: Buffer.concat(parts), payload, frames };
}

/** Payload bytes of the whole frames in `parts` (what a demuxer yields before a truncated tail). */
function payloadOf(parts: Buffer[]): number {
  const d = new Demuxer({ onTruncated: 'emit' });
  let bytes = 0;
  for (const p of parts) for (const f of d.push(p)) bytes += f.data.length;
  return bytes;
}

function chunks(buf: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let off = 0; off < buf.length; off += CHUNK) out.push(buf.subarray(off, off + CHUNK));
  return out;
}

class Counter extends Writable {
  bytes = 0;
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
    this.bytes += chunk.length;
    cb();
  }
}

async function capstanChunks(parts: Buffer[]): Promise<number> {
  let bytes = 0;
  for await (const frames of demuxChunks(Readable.from(parts))) {
    for (const f of frames) bytes += f.data.length;
  }
  return bytes;
}

async function capstanStream(parts: Buffer[]): Promise<number> {
  let bytes = 0;
  for await (const f of demux(Readable.from(parts))) bytes += f.data.length;
  return bytes;
}

function capstanSync(parts: Buffer[]): number {
  const d = new Demuxer();
  let bytes = 0;
  for (const p of parts) for (const f of d.push(p)) bytes += f.data.length;
  d.end();
  return bytes;
}

function modemStream(parts: Buffer[]): Promise<number> {
  const modem = new Modem({ socketPath: '/nonexistent' });
  const out = new Counter();
  const err = new Counter();
  const source = Readable.from(parts);
  return new Promise((resolve, reject) => {
    source.on('end', () => resolve(out.bytes + err.bytes));
    source.on('error', reject);
    modem.demuxStream(source, out, err);
  });
}

async function measure(
  subject: string,
  metric: string,
  passes: number,
  streamBytes: number,
  expectPayload: number,
  fn: () => number | Promise<number>,
  notes: string,
): Promise<BenchResult> {
  const mbps: number[] = [];
  for (let i = 0; i < passes; i++) {
    const t0 = performance.now();
    const got = await fn();
    const s = (performance.now() - t0) / 1000;
    if (got !== expectPayload)
      throw new Error(`${subject}: demuxed ${got} payload bytes, expected ${expectPayload}`);
    mbps.push(streamBytes / 1e6 / s);
  }
  return { subject, metric, unit: 'MB/s', ...summarize(mbps), peakRssMb: peakRssMb(), notes };
}

const bench: Benchmark = {
  name: 'docker-demux',
  description:
    'Demux throughput (MB/s of stream) on the same generated multiplexed stream in 64 KiB chunks: Capstan ' +
    'Demuxer (async demux() over a Readable, and the sync core) vs docker-modem demuxStream.',
  async run({ quick, log }) {
    const results: BenchResult[] = [];
    const variants = [
      { label: 'mixed', min: 1, max: 4096, bytes: quick ? 32 << 20 : 1 << 30 },
      { label: 'lines', min: 20, max: 200, bytes: quick ? 16 << 20 : 64 << 20 },
    ];
    for (const v of variants) {
      const { stream, payload, frames } = generate(v.bytes, v.min, v.max);
      const parts = chunks(stream);
      const mb = (stream.length / 1e6).toFixed(0);
      log(`${v.label}: ${mb} MB, ${frames} frames of ${v.min}..${v.max} B`);
      const passes = quick ? 2 : 5;
      const note = `${mb} MB stream, ${frames} frames (${v.min}..${v.max} B), ${passes} passes`;
      results.push({
        ...(await measure(
          'capstan',
          `${v.label} stream MB/s`,
          passes,
          stream.length,
          payload,
          () => capstanChunks(parts),
          `demuxChunks() over a Readable; ${note}`,
        )),
        goal: { op: '>=', value: 500 },
      });
      results.push(
        await measure(
          'capstan',
          `${v.label} demux() per-frame MB/s`,
          passes,
          stream.length,
          payload,
          () => capstanStream(parts),
          `demux(), one await per frame; ${note}`,
        ),
      );
      results.push(
        await measure(
          'capstan',
          `${v.label} Demuxer.push MB/s`,
          passes,
          stream.length,
          payload,
          () => capstanSync(parts),
          note,
        ),
      );
      // The same stream and chunks for docker-modem. It re-concatenates its pending buffer per chunk and
      // slices per frame, so it is ~100x slower: one pass (quick: on the first 1/8) keeps the run bounded.
      const modemParts = quick ? parts.slice(0, Math.ceil(parts.length / 8)) : parts;
      const modemBytes = modemParts.reduce((n, p) => n + p.length, 0);
      const modemPayload = quick ? payloadOf(modemParts) : payload;
      log(`docker-modem on ${(modemBytes / 1e6).toFixed(0)} MB`);
      results.push(
        await measure(
          'docker-modem',
          `${v.label} stream MB/s`,
          1,
          modemBytes,
          modemPayload,
          () => modemStream(modemParts),
          quick
            ? `first ${(modemBytes / 1e6).toFixed(0)} MB of the same stream, 1 pass`
            : `the same ${note.replace(/\d+ passes/, '1 pass')}`,
        ),
      );
    }
    return results;
  },
  ratios: [
    {
      label: 'mixed frames: capstan / docker-modem throughput',
      numerator: { subject: 'capstan', metric: 'mixed stream MB/s' },
      denominator: { subject: 'docker-modem', metric: 'mixed stream MB/s' },
      goal: { op: '>=', value: 20 },
    },
    {
      label: 'log-line frames: capstan / docker-modem throughput',
      numerator: { subject: 'capstan', metric: 'lines stream MB/s' },
      denominator: { subject: 'docker-modem', metric: 'lines stream MB/s' },
      goal: { op: '>=', value: 20 },
    },
  ],
};

export default bench;
