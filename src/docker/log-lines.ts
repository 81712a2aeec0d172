import { parseTimestampNs } from './time.ts';

/** One log line of one container. */
export interface LogLine {
  /** Full container id. */
  containerId: string;
  /** Container name without the leading slash. */
  container: string;
  stream: 'stdout' | 'stderr';
  /** The daemon's RFC3339Nano timestamp, verbatim; `''` when the line came without one (see `timeNs`). */
  timestamp: string;
  /**
   * The same as nanoseconds since the epoch (exact). Undefined for a line that came without a daemon timestamp
   * (dockerd always sends one; a proxy or a broken stream may not): it is passed through rather than dropped,
   * but has no position, so a reconnect cannot tell whether it was already delivered.
   */
  timeNs: bigint | undefined;
  /** The line without its trailing newline (or one piece of it, see `partial`). */
  text: string;
  /**
   * Set on every piece of a line longer than `maxLineBytes` but the last: the line continues in the next
   * {@link LogLine} of the same container and stream, which carries the same timestamp. Joining the pieces'
   * texts up to the first one without `partial` gives the line's bytes in order.
   */
  partial?: true;
}

/** Default of `maxLineBytes`: a longer line is emitted in pieces of at most this many bytes (1 MiB). */
export const DEFAULT_MAX_LINE_BYTES = 1024 * 1024;

/** One line (or piece of one) as the daemon sent it: `<timestamp> <text>`, and whether more of it follows. */
export type RawLine = [stream: 'stdout' | 'stderr', line: string, partial?: boolean];

const NL = 0x0a;
/** Room for a timestamp prefix (`2006-01-02T15:04:05.999999999Z ` is 31 bytes) and a TTY piece lookahead. */
const SLACK = 64;

/** A line in progress on one stream. */
interface Pending {
  /** Bytes received and not decoded yet; until the first piece is cut they start with the line's prefix. */
  raw: Buffer[];
  rawBytes: number;
  /** Once a piece was cut: the line's `<timestamp> ` prefix (`''` without one), repeated on every piece. */
  head: string | undefined;
  /** Once a piece was cut: decoded text not emitted yet (at most `maxLineBytes`). */
  content: Buffer;
  /** TTY, once a piece was cut: text bytes since the last 16 KiB daemon message boundary. */
  phase: number;
  /** TTY: a message boundary without a timestamp was seen, the rest of the line is taken literally. */
  plain: boolean;
}

function pending(): Pending {
  return { raw: [], rawBytes: 0, head: undefined, content: EMPTY, phase: 0, plain: false };
}
const EMPTY = Buffer.alloc(0);

/**
 * Splits demuxed payloads into lines per stream, carrying partial lines over to the next payload.
 *
 * The daemon stores a line longer than 16 KiB as several partial messages and, asked for timestamps, writes
 * each with its own timestamp prefix, one frame per message. With `framed` (multiplexed, one frame = one
 * message) a frame that continues a partial line has its timestamp dropped, so the long line comes out whole
 * with the first piece's timestamp. A TTY stream has no frames; there the pieces are found by their fixed
 * size (see `#decode`).
 *
 * A line is never held whole past `maxLineBytes` (a container that never prints a newline would otherwise grow
 * it without limit): it is emitted in pieces of `maxLineBytes` bytes of text, cut at the same offsets from the
 * line's start however the bytes arrived (a replay after a reconnect cuts the same pieces, so they dedupe),
 * moved back to a UTF-8 character boundary, each with the line's first timestamp; every piece but the last is
 * marked partial.
 */
export class LineSplitter {
  readonly #pending: Record<'stdout' | 'stderr', Pending> = { stdout: pending(), stderr: pending() };
  readonly #framed: boolean;
  readonly #max: number;

  constructor(framed: boolean, maxLineBytes = DEFAULT_MAX_LINE_BYTES) {
    this.#framed = framed;
    this.#max = maxLineBytes;
  }

  /** Most bytes held for lines in progress right now (both streams): the memory the cap bounds. */
  get heldBytes(): number {
    let n = 0;
    for (const p of [this.#pending.stdout, this.#pending.stderr]) n += p.rawBytes + p.content.length;
    return n;
  }

  /**
   * Feed one payload. `continued`: the payload continues the previous frame (a frame the demuxer delivered in
   * pieces), so it does not start with a daemon message's timestamp.
   */
  push(stream: 'stdout' | 'stderr', data: Buffer, out: RawLine[], continued = false): void {
    const p = this.#pending[stream];
    let start = 0;
    if (this.#framed && !continued && inProgress(p)) start = timestampPrefixEnd(data);
    let nl = data.indexOf(NL, start);
    while (nl !== -1) {
      if (inProgress(p) || nl - start > this.#max) {
        this.#append(p, data.subarray(start, nl));
        this.#cut(stream, p, out, true);
      } else if (!this.#framed && nl - start > PARTIAL_BYTES) {
        out.push([stream, this.#decode(data.subarray(start, nl))]);
      } else {
        out.push([stream, data.toString('utf8', start, nl)]);
      }
      start = nl + 1;
      nl = data.indexOf(NL, start);
    }
    if (start < data.length) {
      this.#append(p, Buffer.from(data.subarray(start)));
      if (p.rawBytes + p.content.length > this.#max + SLACK) this.#cut(stream, p, out, false);
    }
  }

  /** Lines left without a final newline when the stream ended. */
  flush(out: RawLine[]): void {
    for (const stream of ['stdout', 'stderr'] as const) {
      const p = this.#pending[stream];
      if (inProgress(p)) this.#cut(stream, p, out, true);
    }
  }

  #append(p: Pending, data: Buffer): void {
    if (data.length === 0) return;
    p.raw.push(data);
    p.rawBytes += data.length;
  }

  /**
   * Emit the line in progress: whole when `final` and short enough, else its full pieces of `#max` bytes
   * (with `final`, the rest too, as the last piece). What is not emitted stays in `p.content`.
   */
  #cut(stream: 'stdout' | 'stderr', p: Pending, out: RawLine[], final: boolean): void {
    let raw = p.raw.length === 1 ? p.raw[0]! : Buffer.concat(p.raw, p.rawBytes);
    p.raw = [];
    p.rawBytes = 0;
    if (p.head === undefined) {
      const prefix = timestampPrefixEnd(raw);
      if (final && raw.length - prefix <= this.#max) {
        // Short enough to go out whole (the common case: a line that arrived in several payloads).
        out.push([stream, this.#decode(raw)]);
        return;
      }
      p.head = raw.toString('latin1', 0, prefix);
      p.plain = prefix === 0;
      raw = raw.subarray(prefix);
    }
    let text: Buffer;
    if (this.#framed || p.plain) {
      text = raw;
    } else {
      const decoded = this.#decodeTty(p, raw, final);
      text = decoded.text;
      if (decoded.rest.length > 0) this.#append(p, Buffer.from(decoded.rest));
    }
    let content = p.content.length > 0 ? Buffer.concat([p.content, text]) : text;
    while (content.length > this.#max) {
      const at = utf8Boundary(content, this.#max);
      out.push([stream, p.head + content.toString('utf8', 0, at), true]);
      content = content.subarray(at);
    }
    if (final) {
      out.push([stream, p.head + content.toString('utf8')]);
      Object.assign(p, pending());
    } else {
      // A copy: a view would keep the whole concatenated buffer alive.
      p.content = Buffer.from(content);
    }
  }

  /**
   * TTY text of `raw` (the bytes after the line's first prefix, cut at `p.phase` into the current 16 KiB
   * message): the timestamps of later messages are cut out at each boundary. Unless `final`, the bytes after a
   * boundary too few to tell whether a timestamp starts there are returned as `rest`.
   */
  #decodeTty(p: Pending, raw: Buffer, final: boolean): { text: Buffer; rest: Buffer } {
    const kept: Buffer[] = [];
    let pos = 0;
    while (pos < raw.length) {
      if (p.plain) {
        kept.push(raw.subarray(pos));
        pos = raw.length;
        break;
      }
      const toBoundary = PARTIAL_BYTES - p.phase;
      if (raw.length - pos <= toBoundary) {
        kept.push(raw.subarray(pos));
        p.phase += raw.length - pos;
        pos = raw.length;
        break;
      }
      kept.push(raw.subarray(pos, pos + toBoundary));
      pos += toBoundary;
      p.phase = PARTIAL_BYTES;
      if (!final && raw.length - pos < SLACK) break;
      const prefix = timestampPrefixEnd(raw.subarray(pos));
      if (prefix === 0) p.plain = true;
      else {
        pos += prefix;
        p.phase = 0;
      }
    }
    return { text: kept.length === 1 ? kept[0]! : Buffer.concat(kept), rest: raw.subarray(pos) };
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

function inProgress(p: Pending): boolean {
  return p.rawBytes > 0 || p.head !== undefined;
}

/** `at`, moved back (at most 3 bytes) so it does not split a UTF-8 character. */
function utf8Boundary(buf: Buffer, at: number): number {
  for (let i = at; i > at - 4 && i > 0; i--) {
    if ((buf[i]! & 0xc0) !== 0x80) return i;
  }
  return at;
}

/** Payload bytes of one log message: dockerd stores a longer line as several partial messages. */
const PARTIAL_BYTES = 16 * 1024;

/** Length of a leading `<RFC3339Nano timestamp> ` (0 when the data does not start with one). */
function timestampPrefixEnd(data: Buffer): number {
  // Only the first bytes can hold it: a long line without spaces must not be scanned to its end.
  const space = data.subarray(0, 41).indexOf(0x20);
  if (space < 20 || space > 40) return 0;
  return parseTimestampNs(data.toString('latin1', 0, space)) === undefined ? 0 : space + 1;
}

/**
 * A raw `<timestamp> <text>` line as a {@link LogLine}. A line without a timestamp (dockerd always sends one
 * with `timestamps=1`; a proxy or a broken stream may not) is passed through whole, with no `timeNs`.
 */
export function toLine(
  containerId: string,
  container: string,
  stream: 'stdout' | 'stderr',
  raw: string,
  tty: boolean,
  partial?: boolean,
): LogLine {
  const space = raw.indexOf(' ');
  const timestamp = space === -1 ? raw : raw.slice(0, space);
  const timeNs = parseTimestampNs(timestamp);
  let text = timeNs === undefined ? raw : space === -1 ? '' : raw.slice(space + 1);
  if (tty && !partial && text.endsWith('\r')) text = text.slice(0, -1);
  const line: LogLine = {
    containerId,
    container,
    stream,
    timestamp: timeNs === undefined ? '' : timestamp,
    timeNs,
    text,
  };
  if (partial) line.partial = true;
  return line;
}
