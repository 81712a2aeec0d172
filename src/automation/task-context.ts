// The run a target executes in, found through AsyncLocalStorage. Kept on globalThis under a registered
// symbol: a capstanfile may import another copy of capstan (dist/ beside src/), and its `deps` and `sh` must
// still find the run the CLI started.
import { AsyncLocalStorage } from 'node:async_hooks';

/** What a target's helpers (`deps`, `sh`) need from the run they are part of. */
export interface RunScope {
  /** Aborted when a target fails or the run is interrupted: commands in flight are stopped. */
  readonly signal: AbortSignal;
  /** Whether commands' stdout is shown as well as returned. */
  readonly echo: boolean;
  /** The chain of targets that led here (for cycle detection and error messages). */
  readonly chain: readonly string[];
  log(line: string): void;
  /** Run a target (a function or a target()) once for this run; later calls get the same promise. */
  runOnce(target: unknown, chain: readonly string[]): Promise<void>;
  /** Run dependencies one after another instead of in parallel. */
  readonly serial: boolean;
}

const KEY = Symbol.for('capstan.automation.run');
type Holder = { [KEY]?: AsyncLocalStorage<RunScope> };

export function runStorage(): AsyncLocalStorage<RunScope> {
  const holder = globalThis as Holder;
  holder[KEY] ??= new AsyncLocalStorage<RunScope>();
  return holder[KEY];
}

/** The run this code executes in, if any. */
export function currentRun(): RunScope | undefined {
  return runStorage().getStore();
}
