import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe, test } from 'node:test';
import {
  Demuxer,
  DockerError,
  demux,
  demuxBuffer,
  encodeFrame,
  type Frame,
  type StdStream,
} from 'capstan/docker';

/** Deterministic PRNG (mulberry32), so a failing split is reproducible from its seed. */
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

const STREAMS: StdStream[] = ['stdin', 'stdout', 'stderr'];

function randomFrames(rand: () => number, count: number): Array<{ stream: StdStream; data: Buffer }> {
  return Array.from({ length: count }, (_, i) => {
    const size = rand() < 0.1 ? 0 : Math.floor(rand() * (rand() < 0.2 ? 20_000 : 300));
    const data = Buffer.alloc(size);
    for (let j = 0; j < size; j++) data[j] = (i + j * 7) & 0xff;
    return { stream: STREAMS[Math.floor(rand() * 3)]!, data };
  });
}

/** Frames as the demuxer reports them: merged per stream in order, empty frames dropped. */
function expected(frames: Array<{ stream: StdStream; data: Buffer }>) {
  return frames
    .filter((f) => f.data.length > 0)
    .map((f) => ({ stream: f.stream, hex: f.data.toString('hex') }));
}

function collect(chunks: Buffer[], opts = {}): Frame[] {
  const d = new Demuxer(opts);
  const out: Frame[] = [];
  for (const c of chunks) out.push(...d.push(c));
  out.push(...d.end());
  return out;
}

function split(buf: Buffer, rand: () => number, maxChunk: number): Buffer[] {
  const chunks: Buffer[] = [];
  let off = 0;
  while (off < buf.length) {
    const n = 1 + Math.floor(rand() * maxChunk);
    chunks.push(buf.subarray(off, off + n));
    off += n;
  }
  return chunks;
}

const shape = (frames: Frame[]) => frames.map((f) => ({ stream: f.stream, hex: f.data.toString('hex') }));

describe('Demuxer', () => {
  test('one chunk with several frames, each stream type kept apart (type 0 is stdin, not "no header")', () => {
    const buf = Buffer.concat([
      encodeFrame('stdout', 'out\n'),
      encodeFrame('stdin', 'in\n'),
      encodeFrame('stderr', 'err\n'),
    ]);
    assert.deepEqual(
      demuxBuffer(buf).map((f) => [f.stream, f.data.toString()]),
      [
        ['stdout', 'out\n'],
        ['stdin', 'in\n'],
        ['stderr', 'err\n'],
      ],
    );
  });

  test('byte-by-byte chunking yields the same frames', () => {
    const frames = randomFrames(rng(1), 40);
    const buf = Buffer.concat(frames.map((f) => encodeFrame(f.stream, f.data)));
    const chunks = Array.from({ length: buf.length }, (_, i) => buf.subarray(i, i + 1));
    const got = collect(chunks);
    assert.deepEqual(shape(got), expected(frames));
  });

  test('random chunk splits (200 seeds) reproduce every frame exactly', () => {
    for (let seed = 1; seed <= 200; seed++) {
      const rand = rng(seed);
      const frames = randomFrames(rand, 1 + Math.floor(rand() * 30));
      const buf = Buffer.concat(frames.map((f) => encodeFrame(f.stream, f.data)));
      const chunks = split(buf, rand, [2, 3, 9, 64, 4096, 100_000][seed % 6]!);
      assert.deepEqual(shape(collect(chunks)), expected(frames), `seed ${seed}`);
    }
  });

  test('a frame inside one chunk is a view (no copy); a split one is assembled', () => {
    const buf = Buffer.concat([encodeFrame('stdout', 'abc'), encodeFrame('stderr', 'defgh')]);
    const [a] = new Demuxer().push(buf);
    assert.equal(a!.data.buffer, buf.buffer);
    const d = new Demuxer();
    assert.deepEqual(
      d.push(buf.subarray(0, 13)).map((f) => f.data.toString()),
      ['abc'],
    );
    assert.deepEqual(
      d.push(buf.subarray(13)).map((f) => f.data.toString()),
      ['defgh'],
    );
    assert.equal(d.payloadBytes, 8);
  });

  test('maxFrameBytes: a frame declaring 4 GiB is streamed through in pieces, never held past the cap', () => {
    const max = 64 * 1024;
    const d = new Demuxer({ maxFrameBytes: max });
    const header = Buffer.alloc(8);
    header[0] = 1;
    header.writeUInt32BE(0xffff_ffff, 4);
    const chunk = Buffer.alloc(16 * 1024, 'x');
    let held = 0;
    let out = 0;
    const frames: Frame[] = [...d.push(header)];
    // Ten times the cap, in chunks: without the cap every byte would wait for the 4 GiB frame to end.
    for (let fed = 0; fed < 10 * max; fed += chunk.length) {
      frames.push(...d.push(chunk));
      held = Math.max(held, d.heldBytes);
    }
    for (const f of frames) out += f.data.length;
    assert.ok(held < max, `held ${held} bytes`);
    assert.equal(out, 10 * max, 'every byte that arrived went out');
    assert.equal(frames[0]!.continued, undefined);
    assert.ok(frames.slice(1).every((f) => f.continued === true && f.stream === 'stdout'));
    // A long frame that ends, then an ordinary one: pieces in order, the next frame whole and not continued.
    const long = Buffer.alloc(3 * max + 5, 'y');
    const got = collect(
      split(Buffer.concat([encodeFrame('stderr', long), encodeFrame('stdout', 'z')]), rng(7), 9000),
      {
        maxFrameBytes: max,
      },
    );
    assert.equal(Buffer.concat(got.slice(0, -1).map((f) => f.data)).toString(), long.toString());
    assert.ok(got.slice(0, -1).every((f) => f.stream === 'stderr' && f.data.length <= max + 9000));
    assert.deepEqual(
      got.slice(1, -1).map((f) => f.continued),
      Array(got.length - 2).fill(true),
    );
    assert.deepEqual([got.at(-1)!.data.toString(), got.at(-1)!.continued], ['z', undefined]);
    // A daemon error frame is small: one declaring more than the cap is refused at its header.
    const err = Buffer.alloc(8);
    err[0] = 3;
    err.writeUInt32BE(max + 1, 4);
    assert.throws(
      () => new Demuxer({ maxFrameBytes: max }).push(err),
      (e: unknown) => e instanceof DockerError && e.code === 'CAP_ERR_DOCKER_DEMUX',
    );
  });

  test('end of stream inside a header or payload throws CAP_ERR_DOCKER_DEMUX by default', () => {
    const frame = encodeFrame('stdout', 'hello world');
    for (const cut of [1, 7, 8, 12]) {
      const d = new Demuxer();
      d.push(frame.subarray(0, cut));
      assert.throws(
        () => d.end(),
        (e: unknown) => e instanceof DockerError && e.code === 'CAP_ERR_DOCKER_DEMUX',
        `cut at ${cut}`,
      );
    }
    assert.deepEqual(new Demuxer().end(), []);
  });

  test("onTruncated: 'emit' reports the partial frame, marked truncated", () => {
    const frame = encodeFrame('stderr', 'hello world');
    const got = collect([frame.subarray(0, 13)], { onTruncated: 'emit' });
    assert.deepEqual(
      got.map((f) => [f.stream, f.data.toString(), f.truncated]),
      [['stderr', 'hello', true]],
    );
  });

  test('a bad header (TTY output read as multiplexed) is an error, not garbage frames', () => {
    assert.throws(
      () => demuxBuffer(Buffer.from('hello, this is raw tty output')),
      (e: unknown) => e instanceof DockerError && e.code === 'CAP_ERR_DOCKER_DEMUX',
    );
  });

  test('stream type 3 (daemon error) raises the daemon message', () => {
    const buf = Buffer.concat([encodeFrame('stdout', 'ok'), encodeFrame(3, 'exec failed: no such file')]);
    for (const chunks of [[buf], split(buf, rng(5), 3)]) {
      assert.throws(
        () => collect(chunks),
        (e: unknown) =>
          e instanceof DockerError &&
          e.code === 'CAP_ERR_DOCKER_STREAM' &&
          e.daemonMessage === 'exec failed: no such file',
      );
    }
  });

  test('TTY mode passes raw bytes through as stdout', () => {
    const raw = Buffer.from([1, 0, 0, 0, 0, 0, 0, 5, 104, 105]);
    assert.deepEqual(shape(collect([raw.subarray(0, 4), raw.subarray(4)], { tty: true })), [
      { stream: 'stdout', hex: '01000000' },
      { stream: 'stdout', hex: '000000056869' },
    ]);
  });

  test('demux() over an async source (a Readable with random chunking)', async () => {
    const rand = rng(42);
    const frames = randomFrames(rand, 50);
    const buf = Buffer.concat(frames.map((f) => encodeFrame(f.stream, f.data)));
    const got: Frame[] = [];
    for await (const f of demux(Readable.from(split(buf, rand, 5000)))) got.push(f);
    assert.deepEqual(shape(got), expected(frames));
    await assert.rejects(
      (async () => {
        for await (const _ of demux(Readable.from([buf.subarray(0, buf.length - 1)]))) {
        }
      })(),
      (e: unknown) => e instanceof DockerError && e.code === 'CAP_ERR_DOCKER_DEMUX',
    );
  });
});
