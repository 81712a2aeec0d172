import { DockerError, DockerErrorCode } from './errors.ts';

/** Which stream a frame belongs to. Type 0 is stdin, echoed back on attach; it is a stream, not "no header". */
export type StdStream = 'stdin' | 'stdout' | 'stderr';

/** One demultiplexed piece of output. */
export interface Frame {
  stream: StdStream;
  /** Payload bytes. A view into the received chunk when the frame lay inside one chunk (no copy). */
  data: Buffer;
  /** Set on the last frame when the source ended mid-frame and `onTruncated` is `'emit'`. */
  truncated?: true;
}

/** Options of {@link Demuxer} and {@link demux}. */
export interface DemuxOptions {
  /**
   * The container has a TTY (`Config.Tty` from inspect): the daemon then sends raw bytes without headers,
   * and everything is reported as stdout.
   */
  tty?: boolean;
  /**
   * What to do when the source ends in the middle of a header or payload: `'throw'` (default) raises
   * `CAP_ERR_DOCKER_DEMUX`; `'emit'` yields what arrived, marked `truncated`.
   */
  onTruncated?: 'throw' | 'emit';
}

const STREAMS: readonly StdStream[] = ['stdin', 'stdout', 'stderr'];
const HEADER = 8;
/** moby's stdcopy `Systemerr`: the daemon reports an error in-band with this type. */
const SYSTEM_ERR = 3;

/**
 * Incremental parser of Docker's multiplexed stream: `[type, 0, 0, 0, uint32 BE length]` then `length` bytes.
 * Headers and payloads split across chunks carry over to the next `push`. Frames inside one chunk are
 * returned as views, so the common case copies nothing.
 */
export class Demuxer {
  readonly #tty: boolean;
  readonly #onTruncated: 'throw' | 'emit';
  readonly #header = Buffer.alloc(HEADER);
  #headerFill = 0;
  /** Stream of the frame being assembled, and how many payload bytes it still needs. */
  #stream: StdStream = 'stdout';
  #remaining = 0;
  #pieces: Buffer[] = [];
  #assembled = 0;
  #bytes = 0;
  /** The frame being assembled is a type-3 (daemon error) frame. */
  #systemErr = false;

  constructor(options: DemuxOptions = {}) {
    this.#tty = options.tty ?? false;
    this.#onTruncated = options.onTruncated ?? 'throw';
  }

  /** Total payload bytes returned so far (excluding headers). */
  get payloadBytes(): number {
    return this.#bytes;
  }

  /** Feed one chunk; returns the frames it completed (possibly none). */
  push(chunk: Uint8Array): Frame[] {
    const buf = Buffer.isBuffer(chunk)
      ? chunk
      : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const out: Frame[] = [];
    if (buf.length === 0) return out;
    if (this.#tty) {
      this.#bytes += buf.length;
      out.push({ stream: 'stdout', data: buf });
      return out;
    }
    let off = 0;
    const len = buf.length;
    while (off < len) {
      if (this.#remaining > 0) {
        // Continue a payload that began in an earlier chunk.
        const take = Math.min(this.#remaining, len - off);
        this.#pieces.push(buf.subarray(off, off + take));
        this.#assembled += take;
        this.#remaining -= take;
        off += take;
        if (this.#remaining === 0) this.#finishPieces(out);
        continue;
      }
      let type: number;
      let size: number;
      if (this.#headerFill === 0 && len - off >= HEADER) {
        // Fast path: the whole header is in this chunk.
        type = buf[off]!;
        this.#checkHeader(type, buf[off + 1]! | buf[off + 2]! | buf[off + 3]!);
        size = buf.readUInt32BE(off + 4);
        off += HEADER;
      } else {
        const take = Math.min(HEADER - this.#headerFill, len - off);
        buf.copy(this.#header, this.#headerFill, off, off + take);
        this.#headerFill += take;
        off += take;
        if (this.#headerFill < HEADER) break;
        this.#headerFill = 0;
        type = this.#header[0]!;
        this.#checkHeader(type, this.#header[1]! | this.#header[2]! | this.#header[3]!);
        size = this.#header.readUInt32BE(4);
      }
      if (type === SYSTEM_ERR) {
        // Rare and small: assemble it, then raise it as the daemon's own error.
        this.#stream = 'stderr';
        if (size === 0) throw systemError('');
        this.#remaining = size;
        this.#pieces = [];
        this.#assembled = 0;
        this.#systemErr = true;
        continue;
      }
      const stream = STREAMS[type]!;
      if (size === 0) continue;
      if (len - off >= size) {
        this.#bytes += size;
        out.push({ stream, data: buf.subarray(off, off + size) });
        off += size;
      } else {
        this.#stream = stream;
        this.#remaining = size;
        this.#pieces = [];
        this.#assembled = 0;
      }
    }
    return out;
  }

  #finishPieces(out: Frame[]): void {
    const data = this.#pieces.length === 1 ? this.#pieces[0]! : Buffer.concat(this.#pieces, this.#assembled);
    this.#pieces = [];
    this.#assembled = 0;
    if (this.#systemErr) {
      this.#systemErr = false;
      throw systemError(data.toString('utf8'));
    }
    this.#bytes += data.length;
    out.push({ stream: this.#stream, data });
  }

  #checkHeader(type: number, padding: number): void {
    if (type > SYSTEM_ERR || padding !== 0) {
      throw new DockerError(
        DockerErrorCode.demux,
        `not a multiplexed Docker stream: bad frame header (type ${type}); is the container using a TTY?`,
      );
    }
  }

  /**
   * Signal the end of the source. Returns the truncated remainder when `onTruncated` is `'emit'`,
   * throws `CAP_ERR_DOCKER_DEMUX` when it is `'throw'`, returns nothing when the stream ended on a frame boundary.
   */
  end(): Frame[] {
    if (this.#tty) return [];
    if (this.#headerFill > 0) {
      const got = this.#headerFill;
      this.#headerFill = 0;
      if (this.#onTruncated === 'throw') {
        throw new DockerError(
          DockerErrorCode.demux,
          `stream ended inside a frame header (${got} of ${HEADER} bytes)`,
        );
      }
      return [];
    }
    if (this.#remaining > 0) {
      const missing = this.#remaining;
      const got = this.#assembled;
      this.#remaining = 0;
      if (this.#onTruncated === 'throw' || this.#systemErr) {
        throw new DockerError(
          DockerErrorCode.demux,
          `stream ended inside a ${this.#stream} frame (${got} of ${got + missing} payload bytes)`,
        );
      }
      const data = Buffer.concat(this.#pieces, this.#assembled);
      this.#pieces = [];
      this.#assembled = 0;
      this.#bytes += data.length;
      return data.length > 0 ? [{ stream: this.#stream, data, truncated: true }] : [];
    }
    return [];
  }
}

function systemError(text: string): DockerError {
  return new DockerError(DockerErrorCode.stream, `daemon reported an error in the stream: ${text}`, {
    daemonMessage: text,
  });
}

/**
 * Demultiplex a Docker attach/logs/exec body into frames. With `tty: true` the bytes pass through as
 * stdout. The iterator ends on a frame boundary or throws `CAP_ERR_DOCKER_DEMUX` (see `onTruncated`).
 */
export async function* demux(
  source: AsyncIterable<Uint8Array>,
  options: DemuxOptions = {},
): AsyncGenerator<Frame> {
  for await (const frames of demuxChunks(source, options)) {
    for (let i = 0; i < frames.length; i++) yield frames[i]!;
  }
}

/**
 * Like {@link demux}, but yields the frames of each received chunk as one array: one await per chunk instead
 * of one per frame, which is what makes small frames (log lines) fast.
 */
export async function* demuxChunks(
  source: AsyncIterable<Uint8Array>,
  options: DemuxOptions = {},
): AsyncGenerator<Frame[]> {
  const demuxer = new Demuxer(options);
  for await (const chunk of source) {
    const frames = demuxer.push(chunk);
    if (frames.length > 0) yield frames;
  }
  const rest = demuxer.end();
  if (rest.length > 0) yield rest;
}

/** Demultiplex a whole buffer at once (tests, small exec output). */
export function demuxBuffer(buf: Uint8Array, options: DemuxOptions = {}): Frame[] {
  const demuxer = new Demuxer(options);
  return [...demuxer.push(buf), ...demuxer.end()];
}

/** Encode one frame the way the daemon does (tests, benchmarks, fakes). */
export function encodeFrame(stream: StdStream | 0 | 1 | 2 | 3, payload: Uint8Array | string): Buffer {
  const data = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const header = Buffer.alloc(HEADER);
  header[0] = typeof stream === 'number' ? stream : STREAMS.indexOf(stream);
  header.writeUInt32BE(data.length, 4);
  return Buffer.concat([header, data]);
}
