import { writeSync } from 'node:fs';
import { LogError, LogErrorCode } from './errors.ts';

const pause = new Int32Array(new SharedArrayBuffer(4));

/** Options of {@link SyncFdWriter}. */
export interface SyncFdWriterOptions {
  /** How long one write may wait for a full non-blocking pipe to drain before giving up (ms). Default 10 s. */
  stallLimitMs?: number;
}

/**
 * Writes log lines to a file descriptor synchronously, each one handed to the kernel before `write`
 * returns, so nothing is buffered and nothing can be lost at exit. It stands in for sonic-boom's sync mode,
 * whose `flushSync` retries a broken pipe (EPIPE) forever: a reader that went away (`| head -1`) must
 * never hang a program, least of all on its way out. EAGAIN (a full non-blocking pipe) is retried for up
 * to `stallLimitMs`; EPIPE, EBADF and a reader stalled for longer stop output to this descriptor for good
 * (later lines are counted in `dropped`).
 */
export class SyncFdWriter {
  readonly fd: number;
  readonly #stallLimitMs: number;
  #broken: Error | undefined;
  /** Lines not written because the descriptor broke. */
  dropped = 0;

  constructor(fd: number, options: SyncFdWriterOptions = {}) {
    this.fd = fd;
    this.#stallLimitMs = options.stallLimitMs ?? 10_000;
  }

  /** Why output stopped (EPIPE, EBADF, a stalled reader), or undefined while it works. */
  get broken(): Error | undefined {
    return this.#broken;
  }

  write(line: string): boolean {
    if (this.#broken) {
      this.dropped++;
      return true;
    }
    let written: number;
    try {
      written = writeSync(this.fd, line);
    } catch (err) {
      this.#slowWrite(Buffer.from(line), 0, err as NodeJS.ErrnoException);
      return true;
    }
    // Pipes take a line whole almost always; the rest of a partial write goes the slow way.
    if (written < Buffer.byteLength(line)) this.#slowWrite(Buffer.from(line), written);
    return true;
  }

  /** Nothing is buffered: every line was written (or dropped) when `write` returned. */
  flushSync(): void {}

  #slowWrite(buf: Buffer, offset: number, first?: NodeJS.ErrnoException): void {
    let off = offset;
    let waited = 0;
    let err = first;
    for (;;) {
      if (err) {
        if (err.code !== 'EAGAIN' || waited >= this.#stallLimitMs) {
          this.#broken =
            err.code === 'EAGAIN'
              ? new LogError(LogErrorCode.stalled, `reader stalled for ${waited} ms`)
              : err;
          this.dropped++;
          return;
        }
        Atomics.wait(pause, 0, 0, 5);
        waited += 5;
        err = undefined;
      }
      if (off >= buf.length) return;
      try {
        off += writeSync(this.fd, buf, off);
      } catch (e) {
        err = e as NodeJS.ErrnoException;
      }
    }
  }
}
