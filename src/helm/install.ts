// Installing plugins into Helm: Capstan's own (`helm capstan ...`, the s3:// downloader) and any plugin
// defined with defineHelmPlugin. The folder Helm links to holds plugin.yaml and a launcher that runs the
// Node and the Capstan (or module) that wrote it, so the plugin works whatever is on PATH later.
import { readFileSync, realpathSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { runCommand } from '../runtime/index.ts';
import { HelmError, HelmErrorCode } from './errors.ts';
import {
  type HelmPlugin,
  type HelmPluginMetadata,
  helmPluginMetadata,
  writeHelmPluginDir,
} from './plugin.ts';

function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

/** Capstan's own plugin: `helm capstan lint|secrets|s3` and the `s3://` downloader. */
export const capstanHelmPlugin: HelmPluginMetadata = {
  name: 'capstan',
  version: packageVersion(),
  usage: 'lint charts against the cluster, encrypted values files, s3:// chart repositories',
  description:
    'Capstan: lint charts against the cluster, encrypted values files (secrets), s3:// chart repositories',
  ignoreFlags: false,
  protocols: ['s3'],
};

/** The folder `capstan helm plugin install` writes to by default: `$XDG_DATA_HOME/capstan/helm-plugins/<name>`. */
export function defaultPluginDir(name: string, env: NodeJS.ProcessEnv = process.env): string {
  const data = env['XDG_DATA_HOME'] || join(env['HOME'] || homedir(), '.local', 'share');
  return join(data, 'capstan', 'helm-plugins', name);
}

/** Options of {@link installHelmPlugin}. */
export interface InstallHelmPluginOptions {
  /** The plugin folder to write (default {@link defaultPluginDir}); it must stay: Helm links to it. */
  dir?: string;
  /** The program and first arguments the launcher runs (see {@link writeHelmPluginDir}). */
  exec: readonly string[];
  /** The helm to install into. Default `HELM_BIN`, else `helm`. */
  helm?: string;
  /** Environment of the helm call (its HELM_DATA_HOME decides where plugins go). Default `process.env`. */
  env?: NodeJS.ProcessEnv;
  signal?: AbortSignal;
}

/** What {@link installHelmPlugin} did. */
export interface InstalledHelmPlugin {
  readonly name: string;
  readonly dir: string;
  /** False when Helm already had the plugin linked to `dir` (the files were refreshed in place). */
  readonly installed: boolean;
}

/**
 * Write a plugin folder and `helm plugin install` it. Helm links a local folder rather than copying it,
 * so installing again only rewrites the files; a plugin of the same name from elsewhere is refused by Helm
 * (`CAP_ERR_HELM_HELM_FAILED` with its message).
 */
export async function installHelmPlugin(
  plugin: HelmPlugin | HelmPluginMetadata,
  options: InstallHelmPluginOptions,
): Promise<InstalledHelmPlugin> {
  const metadata = 'commands' in plugin ? helmPluginMetadata(plugin) : plugin;
  const env = options.env ?? process.env;
  const dir = options.dir ?? defaultPluginDir(metadata.name, env);
  writeHelmPluginDir(metadata, { dir, exec: options.exec });
  const helm = options.helm ?? (env['HELM_BIN'] || 'helm');
  const run = await runCommand('helm', helm, ['plugin', 'install', dir], {
    env,
    allowFailure: true,
    ...(options.signal ? { signal: options.signal } : {}),
  }).catch((err: unknown) => {
    throw new HelmError(HelmErrorCode.helmFailed, `cannot run ${helm}: ${(err as Error).message}`, {
      cause: err,
    });
  });
  if (run.code === 0) return { name: metadata.name, dir, installed: true };
  if (/already exists/.test(run.stderr)) {
    const list = await runCommand('helm', helm, ['env', 'HELM_PLUGINS'], { env, allowFailure: true });
    const linked = join(list.stdout.trim(), metadata.name);
    let same = false;
    try {
      same = realpathSync(linked) === realpathSync(dir);
    } catch {
      // Not readable: not ours.
    }
    if (same) return { name: metadata.name, dir, installed: false };
  }
  throw new HelmError(HelmErrorCode.helmFailed, `helm plugin install ${dir} failed: ${run.stderr.trim()}`);
}
