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
  /**
   * This payload continues the previous frame of the same stream: a frame longer than `maxFrameBytes` is
   * delivered in pieces as it arrives rather than assembled (see {@link DemuxOptions.maxFrameBytes}).
   */
  continued?: true;
}

/** Default of {@link DemuxOptions.maxFrameBytes}: 1 MiB (dockerd's log frames hold 16 KiB and a timestamp). */
export const DEFAULT_MAX_FRAME_BYTES = 1024 * 1024;

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
  /**
   * Most payload bytes of one frame held while it arrives across chunks. A frame header may declare up to
   * 4 GiB: past this much, what arrived is emitted as a frame and the rest follows as frames marked
   * `continued`, so memory stays bounded whatever a header says. A daemon error frame (type 3) larger than
   * this raises `CAP_ERR_DOCKER_DEMUX`. Default {@link DEFAULT_MAX_FRAME_BYTES} (1 MiB).
   */
  maxFrameBytes?: number;
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
  /** Pieces of the frame being assembled were already emitted (it is longer than `#maxFrame`). */
  #continued = false;
  readonly #maxFrame: number;

  constructor(options: DemuxOptions = {}) {
    this.#tty = options.tty ?? false;
    this.#onTruncated = options.onTruncated ?? 'throw';
    this.#maxFrame = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    if (!Number.isSafeInteger(this.#maxFrame) || this.#maxFrame < 1) {
      throw new DockerError(
        DockerErrorCode.badRequest,
        `maxFrameBytes must be a positive integer, got ${this.#maxFrame}`,
      );
    }
  }

  /** Total payload bytes returned so far (excluding headers). */
  get payloadBytes(): number {
    return this.#bytes;
  }

  /** Payload bytes held for a frame still arriving: never `maxFrameBytes` or more between two `push` calls. */
  get heldBytes(): number {
    return this.#assembled;
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
        else if (this.#assembled >= this.#maxFrame && !this.#systemErr) this.#emitPieces(out);
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
        if (size > this.#maxFrame) {
          throw new DockerError(
            DockerErrorCode.demux,
            `daemon error frame of ${size} bytes exceeds maxFrameBytes (${this.#maxFrame})`,
          );
        }
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
        this.#continued = false;
      }
    }
    // A long frame's bytes so far go out now rather than wait for the rest (or the next chunk).
    if (this.#remaining > 0 && this.#assembled >= this.#maxFrame && !this.#systemErr) this.#emitPieces(out);
    return out;
  }

  /** The assembled bytes of the frame as one piece (`continued` after the first). */
  #takePieces(): Frame {
    const data = this.#pieces.length === 1 ? this.#pieces[0]! : Buffer.concat(this.#pieces, this.#assembled);
    this.#pieces = [];
    this.#assembled = 0;
    this.#bytes += data.length;
    const frame: Frame = { stream: this.#stream, data };
    if (this.#continued) frame.continued = true;
    return frame;
  }

  /** Emit what arrived of a frame longer than `maxFrameBytes`; the rest follows marked `continued`. */
  #emitPieces(out: Frame[]): void {
    out.push(this.#takePieces());
    this.#continued = true;
  }

  #finishPieces(out: Frame[]): void {
    if (this.#systemErr) {
      const data = Buffer.concat(this.#pieces, this.#assembled);
      this.#pieces = [];
      this.#assembled = 0;
      this.#systemErr = false;
      throw systemError(data.toString('utf8'));
    }
    out.push(this.#takePieces());
    this.#continued = false;
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
      if (this.#assembled === 0) return [];
      const frame = this.#takePieces();
      this.#continued = false;
      frame.truncated = true;
      return [frame];
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
