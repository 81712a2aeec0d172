import { parseTimestampNs } from './time.ts';

/** One log line of one container. */
export interface LogLine {
  /** Full container id. */
  containerId: string;
  /** Container name without the leading slash. */
  container: string;
  stream: 'stdout' | 'stderr';
  /** The daemon's RFC3339Nano timestamp, verbatim. */
  timestamp: string;
  /** The same as nanoseconds since the epoch (exact). */
  timeNs: bigint;
  /** The line without its trailing newline. */
  text: string;
}

const NL = 0x0a;

/**
 * Splits demuxed payloads into lines per stream, carrying partial lines over to the next payload.
 *
 * The daemon stores a line longer than 16 KiB as several partial messages and, asked for timestamps, writes
 * each with its own timestamp prefix, one frame per message. With `framed` (multiplexed, one frame = one
 * message) a frame that continues a partial line has its timestamp dropped, so the long line comes out whole
 * with the first piece's timestamp. A TTY stream has no frames; there the pieces are found by their fixed
 * size (see `#decode`).
 */
export class LineSplitter {
  readonly #partial: Record<'stdout' | 'stderr', Buffer[]> = { stdout: [], stderr: [] };
  readonly #framed: boolean;

  constructor(framed: boolean) {
    this.#framed = framed;
  }

  push(
    stream: 'stdout' | 'stderr',
    data: Buffer,
    out: Array<[stream: 'stdout' | 'stderr', line: string]>,
  ): void {
    let start = 0;
    if (this.#framed && this.#partial[stream].length > 0) start = timestampPrefixEnd(data);
    let nl = data.indexOf(NL, start);
    while (nl !== -1) {
      const pieces = this.#partial[stream];
      let line: string;
      if (pieces.length) {
        pieces.push(data.subarray(start, nl));
        line = this.#decode(Buffer.concat(pieces));
        this.#partial[stream] = [];
      } else if (!this.#framed && nl - start > PARTIAL_BYTES) {
        line = this.#decode(data.subarray(start, nl));
      } else {
        line = data.toString('utf8', start, nl);
      }
      out.push([stream, line]);
      start = nl + 1;
      nl = data.indexOf(NL, start);
    }
    if (start < data.length) this.#partial[stream].push(Buffer.from(data.subarray(start)));
  }

  /** Lines left without a final newline when the stream ended. */
  flush(out: Array<[stream: 'stdout' | 'stderr', line: string]>): void {
    for (const stream of ['stdout', 'stderr'] as const) {
      const pieces = this.#partial[stream];
      if (pieces.length) out.push([stream, this.#decode(Buffer.concat(pieces))]);
      this.#partial[stream] = [];
    }
  }

  /**
   * A whole line as text. Without frames (TTY), a line longer than one partial message still carries the
   * timestamps of its later pieces: each piece holds exactly {@link PARTIAL_BYTES} bytes after its prefix,
   * so a timestamp found right there is a piece boundary and is cut out.
   */
  #decode(line: Buffer): string {
    if (this.#framed || line.length <= PARTIAL_BYTES) return line.toString('utf8');
    let at = timestampPrefixEnd(line);
    if (at === 0) return line.toString('utf8');
    const kept: Buffer[] = [];
    let from = 0;
    for (;;) {
      const boundary = at + PARTIAL_BYTES;
      if (boundary >= line.length) break;
      const prefix = timestampPrefixEnd(line.subarray(boundary));
      if (prefix === 0) break;
      kept.push(line.subarray(from, boundary));
      from = boundary + prefix;
      at = from;
    }
    if (kept.length === 0) return line.toString('utf8');
    kept.push(line.subarray(from));
    return Buffer.concat(kept).toString('utf8');
  }
}

/** Payload bytes of one log message: dockerd stores a longer line as several partial messages. */
const PARTIAL_BYTES = 16 * 1024;

/** Length of a leading `<RFC3339Nano timestamp> ` (0 when the data does not start with one). */
function timestampPrefixEnd(data: Buffer): number {
  const space = data.indexOf(0x20);
  if (space < 20 || space > 40) return 0;
  return parseTimestampNs(data.toString('latin1', 0, space)) === undefined ? 0 : space + 1;
}

/** A raw `<timestamp> <text>` line as a {@link LogLine}; undefined when it carries no timestamp. */
export function toLine(
  containerId: string,
  container: string,
  stream: 'stdout' | 'stderr',
  raw: string,
  tty: boolean,
): LogLine | undefined {
  const space = raw.indexOf(' ');
  const timestamp = space === -1 ? raw : raw.slice(0, space);
  const timeNs = parseTimestampNs(timestamp);
  // Every line asked with timestamps=1 starts with one; anything else is not a log line.
  if (timeNs === undefined) return undefined;
  let text = space === -1 ? '' : raw.slice(space + 1);
  if (tty && text.endsWith('\r')) text = text.slice(0, -1);
  return { containerId, container, stream, timestamp, timeNs, text };
}
