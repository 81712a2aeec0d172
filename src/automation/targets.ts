// What a capstanfile writes: plain exported functions are targets; `target()` adds typed arguments and
// sources/outputs; `namespace()` groups targets as `ns:name`; `deps()` runs other targets once each.
import { AutomationError, AutomationErrorCode } from './errors.ts';
import { currentRun } from './task-context.ts';

/** The type of one command-line argument of a target. */
export type ArgType = 'string' | 'number' | 'boolean' | 'duration';

/** A target's arguments, in the order they are given on the command line. */
export type ArgSpec = Readonly<Record<string, ArgType>>;

/** The values a target gets for its {@link ArgSpec}: durations in milliseconds. */
export type ArgsOf<A extends ArgSpec> = {
  -readonly [K in keyof A]: A[K] extends 'number' | 'duration'
    ? number
    : A[K] extends 'boolean'
      ? boolean
      : string;
};

/** Options of {@link target}. */
export interface TargetOptions<A extends ArgSpec = ArgSpec> {
  /** Help text; default: the doc comment above the export. */
  description?: string;
  /** Typed arguments, parsed from the command line in this order. */
  args?: A;
  /**
   * Globs (relative to the capstanfile's folder) of what the target reads. With `outputs`, the target is
   * skipped when every output exists and none is older than the newest source (`--force` runs it anyway).
   */
  sources?: readonly string[];
  /** Globs or paths of what the target writes. */
  outputs?: readonly string[];
}

/** A function marked as a target by {@link target}; callable as a plain function too. */
export type Target<A extends ArgSpec = ArgSpec> = ((args: ArgsOf<A>) => unknown) & {
  readonly [TARGET]: TargetOptions<A>;
};

// Registered symbols: a capstanfile and the CLI may load two copies of this module (src/ and dist/).
export const TARGET: unique symbol = Symbol.for('capstan.automation.target') as never;
export const NAMESPACE: unique symbol = Symbol.for('capstan.automation.namespace') as never;

/**
 * A target with options: typed arguments, sources and outputs.
 *
 * ```ts
 * /** Roll the web tier out to an environment. *\/
 * export const deploy = target({ args: { env: 'string', replicas: 'number' } }, async ({ env, replicas }) => {
 *   await deps(build);
 *   await sh`kubectl --context ${env} scale deployment/web --replicas ${replicas}`;
 * });
 * ```
 */
export function target<const A extends ArgSpec = Record<never, ArgType>>(
  options: TargetOptions<A>,
  fn: (args: ArgsOf<A>) => unknown,
): Target<A> {
  const marked = ((args: ArgsOf<A>) => fn(args)) as Target<A>;
  Object.defineProperty(marked, TARGET, { value: options });
  return marked;
}

/** The options of a target function: `target()`'s, or none for a plain function. */
export function targetOptions(fn: (...args: never[]) => unknown): TargetOptions | undefined {
  return (fn as Partial<Target>)[TARGET];
}

/** Group targets under a name: `export const docker = namespace({ build, push })` gives `docker:build`. */
export function namespace<const T extends Record<string, (...args: never[]) => unknown>>(targets: T): T {
  Object.defineProperty(targets, NAMESPACE, { value: true });
  return targets;
}

/** Whether `value` was made by {@link namespace}. */
export function isNamespace(value: unknown): value is Record<string, unknown> {
  return (
    typeof value === 'object' && value !== null && (value as { [NAMESPACE]?: boolean })[NAMESPACE] === true
  );
}

/**
 * Run other targets (without arguments) before going on: each runs at most once per `capstan run`, however
 * many targets depend on it, and independent ones run in parallel (`--serial`: one after another). The
 * first failure stops the run.
 */
export async function deps(...targets: Array<(...args: never[]) => unknown>): Promise<void> {
  const run = currentRun();
  if (!run) {
    throw new AutomationError(
      AutomationErrorCode.taskfile,
      'deps() works inside `capstan run` (or runTarget) only',
    );
  }
  if (run.serial) {
    for (const t of targets) await run.runOnce(t, run.chain);
    return;
  }
  await Promise.all(targets.map((t) => run.runOnce(t, run.chain)));
}

/** Run targets one after another, each at most once per run, whatever `--serial` says. */
export async function serialDeps(...targets: Array<(...args: never[]) => unknown>): Promise<void> {
  const run = currentRun();
  if (!run) {
    throw new AutomationError(
      AutomationErrorCode.taskfile,
      'serialDeps() works inside `capstan run` (or runTarget) only',
    );
  }
  for (const t of targets) await run.runOnce(t, run.chain);
}
