// `capstan run`'s engine: find the targets a capstanfile exports (with their doc comments as help), parse
// their arguments, and run them with dependencies once each, skipping those whose outputs are up to date.
import { existsSync, globSync, readFileSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseDuration } from '../runtime/index.ts';
import { AutomationError, AutomationErrorCode } from './errors.ts';
import { type ArgSpec, isNamespace, type TargetOptions, targetOptions } from './targets.ts';
import { type RunScope, runStorage } from './task-context.ts';

/** One target of a capstanfile. */
export interface TargetInfo {
  /** `build`, or `docker:build` in a namespace. */
  readonly name: string;
  /** First paragraph of its doc comment (or `description`). */
  readonly summary: string;
  /** The whole doc comment. */
  readonly description: string;
  /** Typed arguments; a plain function's parameters are strings. */
  readonly args: ArgSpec;
  readonly options: TargetOptions | undefined;
  readonly fn: (...args: never[]) => unknown;
  /** Whether `capstan run` with no target runs this one (`export default`). */
  readonly isDefault: boolean;
}

/** A loaded capstanfile. */
export interface Taskfile {
  readonly path: string;
  readonly dir: string;
  readonly targets: readonly TargetInfo[];
}

/** Load a capstanfile (a .ts or .js module) and list its targets. */
export async function loadTaskfile(path: string): Promise<Taskfile> {
  const file = resolve(path);
  if (!existsSync(file)) {
    throw new AutomationError(
      AutomationErrorCode.taskfile,
      `no capstanfile at ${file} (write one, or give --file)`,
    );
  }
  let exports: Record<string, unknown>;
  try {
    exports = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  } catch (err) {
    throw new AutomationError(
      AutomationErrorCode.taskfile,
      `cannot load ${file}: ${err instanceof Error ? err.message : String(err)}`,
      { cause: err },
    );
  }
  const source = readFileSync(file, 'utf8');
  const targets: TargetInfo[] = [];
  const defaultFn = exports['default'];
  for (const [exportName, value] of Object.entries(exports)) {
    if (exportName === 'default') continue;
    if (typeof value === 'function') {
      targets.push(
        info(
          exportName,
          value as TargetInfo['fn'],
          docAbove(source, exportDeclaration(exportName)),
          value === defaultFn,
        ),
      );
    } else if (isNamespace(value)) {
      const at = source.search(exportDeclaration(exportName));
      for (const [member, fn] of Object.entries(value)) {
        if (typeof fn !== 'function') continue;
        const doc = docAbove(source, new RegExp(`(?:async\\s+)?\\b${member}\\s*[(:]`, 'g'), Math.max(0, at));
        targets.push(info(`${exportName}:${member}`, fn as TargetInfo['fn'], doc, false));
      }
    }
  }
  if (typeof defaultFn === 'function' && !targets.some((t) => t.isDefault)) {
    targets.push(
      info('default', defaultFn as TargetInfo['fn'], docAbove(source, /export\s+default\s+/g), true),
    );
  }
  return { path: file, dir: dirname(file), targets: targets.sort((a, b) => a.name.localeCompare(b.name)) };
}

function exportDeclaration(name: string): RegExp {
  return new RegExp(
    `export\\s+(?:async\\s+)?(?:function\\s*\\*?\\s*${name}\\b|(?:const|let)\\s+${name}\\b)`,
    'g',
  );
}

/** The doc comment (`/** ... *\/`) right above the first match of `declaration` at or after `from`. */
function docAbove(source: string, declaration: RegExp, from = 0): string {
  declaration.lastIndex = from;
  const match = declaration.exec(source);
  if (!match) return '';
  const before = source.slice(0, match.index).trimEnd();
  if (!before.endsWith('*/')) return '';
  const start = before.lastIndexOf('/**');
  if (start === -1) return '';
  return before
    .slice(start + 3, -2)
    .split('\n')
    .map((line) => line.replace(/^\s*\* ?/, '').trimEnd())
    .join('\n')
    .trim();
}

function info(name: string, fn: TargetInfo['fn'], doc: string, isDefault: boolean): TargetInfo {
  const options = targetOptions(fn);
  const description = options?.description ?? doc;
  // A plain function's parameters, as strings: `fn.length` counts those without a default.
  const args: ArgSpec = options
    ? (options.args ?? {})
    : Object.fromEntries(Array.from({ length: fn.length }, (_, i) => [`arg${i + 1}`, 'string']));
  return {
    name,
    summary: description.split(/\n\s*\n/)[0]!.replace(/\s+/g, ' '),
    description,
    args,
    options,
    fn,
    isDefault,
  };
}

/** Find a target by name, ignoring case (as Mage does); `undefined` for the default one. */
export function findTarget(taskfile: Taskfile, name: string | undefined): TargetInfo {
  if (name === undefined) {
    const def = taskfile.targets.find((t) => t.isDefault);
    if (!def) {
      throw new AutomationError(
        AutomationErrorCode.taskfile,
        `no target given and ${taskfile.path} has no default export; targets: ${taskfile.targets.map((t) => t.name).join(', ')}`,
      );
    }
    return def;
  }
  const found = taskfile.targets.find((t) => t.name.toLowerCase() === name.toLowerCase());
  if (!found) {
    const near = taskfile.targets
      .filter((t) => t.name.toLowerCase().includes(name.toLowerCase()))
      .map((t) => t.name);
    throw new AutomationError(
      AutomationErrorCode.taskfile,
      `no target ${name} in ${taskfile.path}${near.length ? ` (did you mean ${near.join(' or ')}?)` : ''}; run --list to see them`,
    );
  }
  return found;
}

/** Parse a target's words from the command line into its typed arguments; every problem at once. */
export function parseTargetArgs(t: TargetInfo, words: readonly string[]): Record<string, unknown> {
  const names = Object.keys(t.args);
  const problems: string[] = [];
  if (words.length !== names.length) {
    problems.push(
      `${t.name} takes ${names.length} argument${names.length === 1 ? '' : 's'}${names.length ? ` (${names.map((n) => `<${n}: ${t.args[n]}>`).join(' ')})` : ''}, got ${words.length}`,
    );
  }
  const values: Record<string, unknown> = {};
  names.forEach((name, i) => {
    const word = words[i];
    if (word === undefined) return;
    const type = t.args[name]!;
    const value = parseArg(type, word);
    if (value === undefined) problems.push(`${t.name}: <${name}> must be a ${type}, got "${word}"`);
    else values[name] = value;
  });
  if (problems.length > 0) throw new AutomationError(AutomationErrorCode.taskfile, problems.join('\n'));
  return values;
}

function parseArg(type: string, word: string): unknown {
  switch (type) {
    case 'number': {
      const n = Number(word);
      return word.trim() !== '' && Number.isFinite(n) ? n : undefined;
    }
    case 'boolean':
      return /^(true|1|yes|on)$/i.test(word) ? true : /^(false|0|no|off)$/i.test(word) ? false : undefined;
    case 'duration':
      return parseDuration(word);
    default:
      return word;
  }
}

/** Options of {@link runTargets}. */
export interface RunTargetsOptions {
  /** Dependencies one after another instead of in parallel. */
  serial?: boolean;
  /** Run targets even when their outputs are up to date. */
  force?: boolean;
  /** Stops the run: commands in flight get SIGTERM. */
  signal?: AbortSignal;
  /** Progress lines (`▶ build`, skipped, timings); default: none. */
  log?: (line: string) => void;
  /** Show commands' stdout as well as returning it (default true). */
  echo?: boolean;
}

/** What ran: each target once, with how it ended. */
export interface RunRecord {
  readonly name: string;
  readonly status: 'ran' | 'up-to-date';
  readonly durationMs: number;
}

/**
 * Run targets (each with its parsed arguments) in order, their dependencies once each. The first failure
 * stops everything and rejects with `CAP_ERR_AUTOMATION_TARGET_FAILED` naming the failing target and the
 * chain that led to it.
 */
export async function runTargets(
  taskfile: Taskfile,
  requests: ReadonlyArray<{ target: TargetInfo; args: Record<string, unknown> }>,
  options: RunTargetsOptions = {},
): Promise<RunRecord[]> {
  const stop = new AbortController();
  const signal = options.signal ? AbortSignal.any([options.signal, stop.signal]) : stop.signal;
  const log = options.log ?? (() => {});
  const once = new Map<unknown, Promise<void>>();
  const records: RunRecord[] = [];
  const byFn = new Map(taskfile.targets.map((t) => [t.fn as unknown, t]));

  const execute = async (
    t: TargetInfo,
    args: Record<string, unknown>,
    chain: readonly string[],
  ): Promise<void> => {
    const path = [...chain, t.name];
    if (chain.includes(t.name)) {
      throw new AutomationError(AutomationErrorCode.taskfile, `dependency cycle: ${path.join(' → ')}`);
    }
    signal.throwIfAborted();
    const started = performance.now();
    if (!options.force && upToDate(taskfile.dir, t.options)) {
      log(`${t.name}: up to date`);
      records.push({ name: t.name, status: 'up-to-date', durationMs: 0 });
      return;
    }
    log(`▶ ${t.name}`);
    const scope: RunScope = {
      signal,
      echo: options.echo ?? true,
      chain: path,
      serial: options.serial ?? false,
      log,
      runOnce: (fn, from) => {
        const dep = byFn.get(fn) ?? anonymous(fn as TargetInfo['fn']);
        if (Object.keys(dep.args).length > 0) {
          return Promise.reject(
            new AutomationError(
              AutomationErrorCode.taskfile,
              `${dep.name} takes arguments: it cannot be a dependency (of ${from.at(-1)})`,
            ),
          );
        }
        if (from.includes(dep.name)) {
          return Promise.reject(
            new AutomationError(
              AutomationErrorCode.taskfile,
              `dependency cycle: ${[...from, dep.name].join(' → ')}`,
            ),
          );
        }
        let running = once.get(fn);
        if (!running) {
          running = execute(dep, {}, from);
          once.set(fn, running);
        }
        return running;
      },
    };
    try {
      const fnArgs = Object.keys(t.args);
      // target() functions take one object; plain functions their parameters in order.
      const call = targetOptions(t.fn)
        ? () => t.fn(args as never)
        : () => t.fn(...(fnArgs.map((n) => args[n]) as never[]));
      await runStorage().run(scope, async () => call());
    } catch (err) {
      stop.abort(err);
      if (
        err instanceof AutomationError &&
        (err.code === AutomationErrorCode.targetFailed || err.code === AutomationErrorCode.taskfile)
      ) {
        throw err;
      }
      const via = chain.length > 0 ? ` (via ${path.join(' → ')})` : '';
      throw new AutomationError(
        AutomationErrorCode.targetFailed,
        `target ${t.name} failed${via}: ${err instanceof Error ? err.message : String(err)}`,
        { cause: err },
      );
    }
    const durationMs = performance.now() - started;
    log(`✔ ${t.name} (${formatMs(durationMs)})`);
    records.push({ name: t.name, status: 'ran', durationMs });
  };

  for (const request of requests) {
    let running = once.get(request.target.fn);
    if (!running || Object.keys(request.args).length > 0) {
      running = execute(request.target, request.args, []);
      once.set(request.target.fn, running);
    }
    await running;
  }
  return records;
}

function anonymous(fn: TargetInfo['fn']): TargetInfo {
  return info(fn.name || 'anonymous', fn, '', false);
}

function formatMs(ms: number): string {
  return ms >= 1_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`;
}

/** Every output exists and none is older than the newest source. Without both lists: never. */
function upToDate(dir: string, options: TargetOptions | undefined): boolean {
  if (!options?.sources?.length || !options.outputs?.length) return false;
  const mtimes = (patterns: readonly string[]) =>
    patterns.flatMap((p) => globSync(p, { cwd: dir })).map((f) => statSync(resolve(dir, f)).mtimeMs);
  const sources = mtimes(options.sources);
  if (sources.length === 0) return false;
  // Each output pattern must match something: a missing output means the target must run.
  for (const pattern of options.outputs) if (globSync(pattern, { cwd: dir }).length === 0) return false;
  const outputs = mtimes(options.outputs);
  return Math.max(...sources) <= Math.min(...outputs);
}
