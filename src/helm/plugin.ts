// The library for Helm plugins written in TypeScript: a definition records commands and downloaders;
// runHelmPlugin dispatches argv the way Helm calls a plugin; writeHelmPluginDir lays out the folder that
// `helm plugin install <dir>` takes (plugin.yaml and a launcher script).
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { stringify } from 'yaml';
import { CapstanError } from '../runtime/index.ts';
import { type HelmEnv, helmEnv } from './env.ts';
import { HelmError, HelmErrorCode } from './errors.ts';

/** What a plugin command gets when Helm runs it (`helm <plugin> <command> ...args`). */
export interface HelmPluginContext {
  /** Arguments after the command's name, as Helm passed them (Helm's own flags already taken out). */
  readonly args: readonly string[];
  /** Helm's environment ({@link helmEnv}). */
  readonly env: HelmEnv;
  /** Aborted on SIGINT/SIGTERM under {@link runHelmPluginMain}. */
  readonly signal: AbortSignal;
  readonly stdin: Readable;
  readonly stdout: Writable;
  readonly stderr: Writable;
}

/** One command of a plugin. */
export interface HelmPluginCommand {
  /** One line for the plugin's help. */
  readonly usage: string;
  /** The work. Return an exit status to choose it (default 0); a throw prints its message and exits 1. */
  // biome-ignore lint/suspicious/noConfusingVoidType: most commands return nothing.
  run(ctx: HelmPluginContext): Promise<number | void> | number | void;
}

/** What a downloader is asked for: Helm's `certFile keyFile caFile URL` (empty paths are undefined). */
export interface DownloadRequest {
  /** The full URL (`s3://bucket/charts/index.yaml`). */
  readonly url: URL;
  /** The URL as Helm wrote it (a URL object normalises some characters). */
  readonly href: string;
  /** TLS files of `helm repo add --cert-file --key-file --ca-file`, when given. */
  readonly certFile: string | undefined;
  readonly keyFile: string | undefined;
  readonly caFile: string | undefined;
  readonly env: HelmEnv;
  readonly signal: AbortSignal;
}

/** A downloader: fetches the bytes behind URLs of some schemes (Helm's downloader plugin contract). */
export interface HelmDownloader {
  /** URL schemes without `://` (`s3`, `gs`). */
  readonly protocols: readonly string[];
  /** The bytes of the URL (index.yaml and chart archives alike). Throw when there are none. */
  fetch(request: DownloadRequest): Promise<Uint8Array | string>;
}

/** What {@link defineHelmPlugin} takes. */
export interface HelmPluginDefinition {
  /** `[A-Za-z0-9_-]+`: the word after `helm` (`helm <name> ...`). */
  readonly name: string;
  /** SemVer of the plugin. Default `0.1.0`. */
  readonly version?: string;
  /** One line for `helm help`. */
  readonly usage: string;
  /** Longer text for `helm <name> --help` in Helm's own listing. */
  readonly description?: string;
  /** Commands by name. `download` is reserved when the plugin has downloaders. */
  readonly commands?: Readonly<Record<string, HelmPluginCommand>>;
  readonly downloaders?: readonly HelmDownloader[];
  /** Drop Helm's global flags (`--debug`...) instead of passing them on (plugin.yaml `ignoreFlags`). */
  readonly ignoreFlags?: boolean;
}

/** A checked plugin definition (see {@link defineHelmPlugin}). */
export interface HelmPlugin {
  readonly name: string;
  readonly version: string;
  readonly usage: string;
  readonly description: string;
  readonly commands: Readonly<Record<string, HelmPluginCommand>>;
  readonly downloaders: readonly HelmDownloader[];
  readonly ignoreFlags: boolean;
}

/** The command word the launcher passes before Helm's downloader arguments. */
export const DOWNLOAD_COMMAND = 'download';

const NAME = /^[A-Za-z0-9_-]+$/;
const helmPluginBrand = Symbol.for('capstan.helm.plugin');
const SCHEME = /^[a-z][a-z0-9+.-]*$/;

/**
 * Check a downloader: protocols are URL schemes (`s3`, not `s3://`). Returns it unchanged otherwise, so a
 * downloader can be defined in one module and listed by several plugins.
 */
export function defineDownloader(downloader: HelmDownloader): HelmDownloader {
  if (downloader.protocols.length === 0)
    throw new HelmError(HelmErrorCode.usage, 'a downloader needs at least one protocol');
  for (const p of downloader.protocols) {
    if (!SCHEME.test(p))
      throw new HelmError(
        HelmErrorCode.usage,
        `downloader protocol "${p}" is not a URL scheme (write s3, not s3://)`,
      );
  }
  return downloader;
}

/**
 * Define a Helm plugin: its name, its commands and its downloaders. The definition only records; run it
 * with {@link runHelmPluginMain} in the module Helm's launcher starts, and lay out the folder for
 * `helm plugin install` with {@link writeHelmPluginDir}.
 *
 * ```ts
 * export const plugin = defineHelmPlugin({
 *   name: 'hello',
 *   usage: 'greet the release namespace',
 *   commands: { greet: { usage: 'print a greeting', run: ({ env, stdout }) => void stdout.write(`hi ${env.namespace}\n`) } },
 * });
 * if (import.meta.main) await runHelmPluginMain(plugin);
 * ```
 */
export function defineHelmPlugin(definition: HelmPluginDefinition): HelmPlugin {
  const problems: string[] = [];
  if (!NAME.test(definition.name)) problems.push(`plugin name "${definition.name}" is not [A-Za-z0-9_-]+`);
  const commands = definition.commands ?? {};
  const downloaders = (definition.downloaders ?? []).map(defineDownloader);
  if (Object.keys(commands).length === 0 && downloaders.length === 0)
    problems.push('a plugin needs at least one command or downloader');
  for (const name of Object.keys(commands)) {
    if (!NAME.test(name) || name.startsWith('-')) problems.push(`command name "${name}" is not a word`);
    if (name === 'help') problems.push('command name "help" is reserved (the plugin prints its usage)');
    if (name === DOWNLOAD_COMMAND && downloaders.length > 0)
      problems.push(`command name "${DOWNLOAD_COMMAND}" is reserved for the downloaders`);
  }
  const seen = new Set<string>();
  for (const p of downloaders.flatMap((d) => d.protocols)) {
    if (seen.has(p)) problems.push(`protocol ${p} is served by two downloaders`);
    seen.add(p);
  }
  if (problems.length > 0) {
    throw new HelmError(HelmErrorCode.usage, `invalid plugin ${definition.name}: ${problems.join('; ')}`, {
      problems,
    });
  }
  return Object.freeze({
    [helmPluginBrand]: true,
    name: definition.name,
    version: definition.version ?? '0.1.0',
    usage: definition.usage,
    description: definition.description ?? definition.usage,
    commands: Object.freeze({ ...commands }),
    downloaders: Object.freeze(downloaders),
    ignoreFlags: definition.ignoreFlags ?? false,
  });
}

/** Whether `value` is a {@link HelmPlugin} (made by any copy of Capstan). */
export function isHelmPlugin(value: unknown): value is HelmPlugin {
  return (
    typeof value === 'object' &&
    value !== null &&
    (value as Record<symbol, unknown>)[helmPluginBrand] === true
  );
}

/** The plugins a module exports, by export name, sorted by name. */
export function exportedHelmPlugins(mod: Record<string, unknown>): Array<[string, HelmPlugin]> {
  return Object.entries(mod)
    .filter((entry): entry is [string, HelmPlugin] => isHelmPlugin(entry[1]))
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/** Streams and environment of one run (defaults: the process's). */
export interface HelmPluginIo {
  env?: NodeJS.ProcessEnv;
  signal?: AbortSignal;
  stdin?: Readable;
  stdout?: Writable;
  stderr?: Writable;
}

function write(stream: Writable, chunk: Uint8Array | string): Promise<void> {
  return new Promise((resolve, reject) => {
    stream.write(chunk, (err) => (err ? reject(err) : resolve()));
  });
}

function describe(err: unknown): string {
  if (err instanceof CapstanError) return `${err.message} (${err.code})`;
  return err instanceof Error ? err.message : String(err);
}

function usageText(plugin: HelmPlugin): string {
  const names = Object.keys(plugin.commands);
  const width = Math.max(0, ...names.map((n) => n.length));
  const lines = [`${plugin.usage}`, '', `Usage: helm ${plugin.name} <command> [args...]`, ''];
  if (names.length > 0) {
    lines.push('Commands:');
    for (const n of names) lines.push(`  ${n.padEnd(width)}  ${plugin.commands[n]!.usage}`);
  }
  if (plugin.downloaders.length > 0) {
    const protocols = plugin.downloaders.flatMap((d) => d.protocols.map((p) => `${p}://`));
    lines.push('', `Downloads ${protocols.join(', ')} URLs for helm repo add, pull and install.`);
  }
  return `${lines.join('\n')}\n`;
}

/**
 * Serve Helm's downloader contract: `argv` is `certFile keyFile caFile URL`; the bytes go to stdout, a
 * failure to stderr with status 1 (Helm then prints `plugin "..." exited with error`). Usable on its own by
 * a CLI that is not built with {@link defineHelmPlugin}.
 */
export async function runDownloader(
  downloaders: readonly HelmDownloader[],
  argv: readonly string[],
  io: HelmPluginIo = {},
): Promise<number> {
  const stdout = io.stdout ?? process.stdout;
  const stderr = io.stderr ?? process.stderr;
  try {
    if (argv.length !== 4) {
      throw new HelmError(
        HelmErrorCode.usage,
        `a downloader takes certFile keyFile caFile URL (${argv.length} arguments given)`,
      );
    }
    const [certFile, keyFile, caFile, href] = argv as [string, string, string, string];
    let url: URL;
    try {
      url = new URL(href);
    } catch (err) {
      throw new HelmError(HelmErrorCode.usage, `not a URL: ${href}`, { cause: err });
    }
    const scheme = url.protocol.slice(0, -1);
    const downloader = downloaders.find((d) => d.protocols.includes(scheme));
    if (!downloader) throw new HelmError(HelmErrorCode.usage, `no downloader for ${scheme}:// URLs`);
    const bytes = await downloader.fetch({
      url,
      href,
      certFile: certFile || undefined,
      keyFile: keyFile || undefined,
      caFile: caFile || undefined,
      env: helmEnv(io.env ?? process.env),
      signal: io.signal ?? new AbortController().signal,
    });
    await write(stdout, bytes);
    return 0;
  } catch (err) {
    await write(stderr, `${describe(err)}\n`);
    return 1;
  }
}

/**
 * Run `plugin` on `argv` as Helm calls it: `<command> ...args`, or `download certFile keyFile caFile URL`
 * for a downloader. Returns the exit status: the command's (0 by default), 1 when it throws (its message
 * on stderr), 2 for an unknown command. `help`, `-h`, `--help` or no command print the usage.
 */
export async function runHelmPlugin(
  plugin: HelmPlugin,
  argv: readonly string[],
  io: HelmPluginIo = {},
): Promise<number> {
  const stdout = io.stdout ?? process.stdout;
  const stderr = io.stderr ?? process.stderr;
  const [name, ...args] = argv;
  if (name === DOWNLOAD_COMMAND && plugin.downloaders.length > 0)
    return runDownloader(plugin.downloaders, args, io);
  if (name === undefined || name === 'help' || name === '-h' || name === '--help') {
    await write(name === undefined ? stderr : stdout, usageText(plugin));
    return name === undefined ? 2 : 0;
  }
  const command = plugin.commands[name];
  if (!command) {
    await write(stderr, `helm ${plugin.name}: unknown command "${name}"\n\n${usageText(plugin)}`);
    return 2;
  }
  try {
    const status = await command.run({
      args,
      env: helmEnv(io.env ?? process.env),
      signal: io.signal ?? new AbortController().signal,
      stdin: io.stdin ?? process.stdin,
      stdout,
      stderr,
    });
    return status ?? 0;
  } catch (err) {
    await write(stderr, `helm ${plugin.name} ${name}: ${describe(err)}\n`);
    return 1;
  }
}

/**
 * The entry of a plugin's module: {@link runHelmPlugin} on `process.argv`, SIGINT/SIGTERM abort the
 * command's signal, and `process.exitCode` is set to the status.
 */
export async function runHelmPluginMain(plugin: HelmPlugin): Promise<void> {
  const controller = new AbortController();
  const stop = () => controller.abort(new HelmError(HelmErrorCode.usage, 'interrupted'));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    process.exitCode = await runHelmPlugin(plugin, process.argv.slice(2), { signal: controller.signal });
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}

/** What plugin.yaml says about a plugin (the fields of {@link HelmPlugin} Helm reads). */
export type HelmPluginMetadata = Pick<
  HelmPlugin,
  'name' | 'version' | 'usage' | 'description' | 'ignoreFlags'
> & {
  readonly protocols: readonly string[];
};

/** The metadata of a defined plugin, for {@link helmPluginManifest}. */
export function helmPluginMetadata(plugin: HelmPlugin): HelmPluginMetadata {
  return {
    name: plugin.name,
    version: plugin.version,
    usage: plugin.usage,
    description: plugin.description,
    ignoreFlags: plugin.ignoreFlags,
    protocols: plugin.downloaders.flatMap((d) => d.protocols),
  };
}

/** Path of the launcher inside a plugin folder (Helm runs a downloader relative to the folder). */
export function launcherPath(name: string): string {
  return `bin/${name}`;
}

/**
 * plugin.yaml for Helm 3: the command is the launcher in the plugin's folder (`$HELM_PLUGIN_DIR`, which
 * Helm expands itself; the command is not run through a shell), and each downloader runs the same
 * launcher with `download` first. Helm runs a downloader's command relative to the plugin folder without
 * expanding variables, hence the relative path there. No hooks: installing copies nothing and builds
 * nothing.
 */
export function helmPluginManifest(metadata: HelmPluginMetadata): string {
  const launcher = launcherPath(metadata.name);
  const manifest: Record<string, unknown> = {
    name: metadata.name,
    version: metadata.version,
    usage: metadata.usage,
    description: metadata.description,
    ignoreFlags: metadata.ignoreFlags,
    platformCommand: [{ command: `$HELM_PLUGIN_DIR/${launcher}` }],
  };
  if (metadata.protocols.length > 0) {
    manifest['downloaders'] = [
      { protocols: [...metadata.protocols], command: `${launcher} ${DOWNLOAD_COMMAND}` },
    ];
  }
  return stringify(manifest, { lineWidth: 0 });
}

/** A word for sh: single-quoted, with single quotes closed, escaped and reopened. */
export function shellQuote(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

/** A launcher that runs `exec` (a program and its first arguments) with the plugin's arguments after. */
export function launcherScript(exec: readonly string[], comment: string): string {
  if (exec.length === 0) throw new HelmError(HelmErrorCode.usage, 'a launcher needs a program to run');
  return `#!/bin/sh\n# ${comment}\nexec ${exec.map(shellQuote).join(' ')} "$@"\n`;
}

/** Options of {@link writeHelmPluginDir}. */
export interface WriteHelmPluginDirOptions {
  /**
   * The folder to write, named after the plugin (Helm links a local plugin under its folder's name).
   * Created if missing; plugin.yaml and the launcher are overwritten.
   */
  dir: string;
  /**
   * The program and first arguments the launcher runs, before Helm's arguments: for a module,
   * `[process.execPath, '/abs/path/plugin.ts']`.
   */
  exec: readonly string[];
}

/**
 * Lay out a plugin folder for `helm plugin install <dir>`: plugin.yaml ({@link helmPluginManifest}) and
 * `bin/<name>`, an executable sh launcher that runs `exec` with Helm's arguments. Returns the paths written.
 */
export function writeHelmPluginDir(
  metadata: HelmPluginMetadata | HelmPlugin,
  options: WriteHelmPluginDirOptions,
): { manifest: string; launcher: string } {
  const meta = 'commands' in metadata ? helmPluginMetadata(metadata) : metadata;
  if (!NAME.test(meta.name))
    throw new HelmError(HelmErrorCode.usage, `plugin name "${meta.name}" is not [A-Za-z0-9_-]+`);
  const launcher = join(options.dir, launcherPath(meta.name));
  mkdirSync(join(options.dir, 'bin'), { recursive: true });
  const manifest = join(options.dir, 'plugin.yaml');
  writeFileSync(manifest, helmPluginManifest(meta));
  writeFileSync(
    launcher,
    launcherScript(options.exec, `Helm plugin ${meta.name}: written by Capstan (writeHelmPluginDir).`),
  );
  chmodSync(launcher, 0o755);
  return { manifest, launcher };
}
