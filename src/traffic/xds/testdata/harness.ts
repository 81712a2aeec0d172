// Test helpers: the xDS client child process, and waiting for a control plane event.
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface, type Interface } from 'node:readline';
import type { ControlPlane } from '../control-plane.ts';
import type { XdsEvent } from '../ads.ts';

export interface CallResult {
  counts: Record<string, number>;
  errors: Record<string, number>;
}

/** The real proxyless client (@grpc/grpc-js-xds) in a child process, bootstrapped to `bootstrap`. */
export class XdsClientProcess {
  readonly child: ChildProcess;
  readonly #lines: Interface;
  readonly #waiting: Array<(line: string) => void> = [];
  stderr = '';

  constructor(bootstrap: Record<string, unknown>, target: string, env: Record<string, string> = {}) {
    this.child = spawn(
      process.execPath,
      ['--conditions=capstan-source', new URL('./xds-client.ts', import.meta.url).pathname, target],
      {
        env: { ...process.env, GRPC_XDS_BOOTSTRAP_CONFIG: JSON.stringify(bootstrap), ...env },
        stdio: ['pipe', 'pipe', 'pipe'],
      },
    );
    this.child.stderr!.on('data', (d: Buffer) => {
      this.stderr = (this.stderr + d.toString()).slice(-20_000);
    });
    this.#lines = createInterface({ input: this.child.stdout! });
    this.#lines.on('line', (line) => this.#waiting.shift()?.(line));
  }

  /** Make `calls` calls (`concurrency` at a time) and count who answered. */
  call(calls: number, concurrency = 10): Promise<CallResult> {
    return new Promise((resolve, reject) => {
      const onExit = () => reject(new Error(`xDS client exited: ${this.stderr}`));
      this.child.once('exit', onExit);
      this.#waiting.push((line) => {
        this.child.off('exit', onExit);
        resolve(JSON.parse(line) as CallResult);
      });
      this.child.stdin!.write(`${JSON.stringify({ calls, concurrency })}\n`);
    });
  }

  async close(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.stdin!.end();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  }
}

/** The first event matching `predicate` (events before the call are not seen), or a rejection after `timeoutMs`. */
export function waitForEvent<E extends XdsEvent>(
  cp: ControlPlane,
  predicate: (e: XdsEvent) => e is E,
  timeoutMs?: number,
): Promise<E>;
export function waitForEvent(cp: ControlPlane, predicate: (e: XdsEvent) => boolean, timeoutMs?: number): Promise<XdsEvent>;
export function waitForEvent(
  cp: ControlPlane,
  predicate: (e: XdsEvent) => boolean,
  timeoutMs = 30_000,
): Promise<XdsEvent> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`no matching xDS event within ${timeoutMs} ms`));
    }, timeoutMs);
    const off = cp.onEvent((e) => {
      if (!predicate(e)) return;
      clearTimeout(timer);
      off();
      resolve(e);
    });
  });
}

/** `k` out of `n` is within `sigmas` standard deviations of a binomial(n, p). */
export function withinBinomial(k: number, n: number, p: number, sigmas = 5): boolean {
  const sd = Math.sqrt(n * p * (1 - p));
  return Math.abs(k - n * p) <= sigmas * sd;
}
