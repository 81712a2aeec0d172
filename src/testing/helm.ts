import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensurePeers, peerBinary, runPeerCommand } from '../peers/index.ts';
import type { CommandResult, RunCommandOptions } from '../runtime/index.ts';

/** Options of {@link runHelm}. */
export interface RunHelmOptions extends RunCommandOptions {
  /**
   * Helm home from {@link createHelmHome}, so that plugins and repositories installed by one call are
   * seen by the next. Without it each call gets a throwaway home.
   */
  home?: HelmHome;
}

/** A private Helm config/data/cache home (plugins, repositories, registry logins live here). */
export interface HelmHome {
  /** Root folder; HELM_CONFIG_HOME, HELM_DATA_HOME and HELM_CACHE_HOME are under it. */
  readonly dir: string;
  /** The variables that point Helm at this home (and at an empty kubeconfig). */
  readonly env: Readonly<Record<string, string>>;
  /** {@link runHelm} in this home. */
  run(args: readonly string[], options?: RunCommandOptions): Promise<CommandResult>;
  /** Removes the folder. Idempotent. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Path of the pinned `helm` binary, building it on first use (see scripts/peers/versions.json). */
export function helmBinary(): string {
  ensurePeers(['helm']);
  return peerBinary('helm', 'helm');
}

/**
 * Make a private Helm home. Helm otherwise reads and writes ~/.config/helm, ~/.local/share/helm,
 * ~/.cache/helm and ~/.kube/config, which would leak state between tests and into the developer's setup.
 */
export function createHelmHome(): HelmHome {
  const dir = mkdtempSync(join(tmpdir(), 'capstan-helm-'));
  const env = {
    HELM_CONFIG_HOME: join(dir, 'config'),
    HELM_DATA_HOME: join(dir, 'data'),
    HELM_CACHE_HOME: join(dir, 'cache'),
    // A kubeconfig that exists but names no cluster: commands that need one fail fast and say so.
    KUBECONFIG: join(dir, 'kubeconfig'),
  };
  for (const d of [env.HELM_CONFIG_HOME, env.HELM_DATA_HOME, env.HELM_CACHE_HOME]) mkdirSync(d);
  writeFileSync(env.KUBECONFIG, 'apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n', {
    mode: 0o600,
  });
  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    rmSync(dir, { recursive: true, force: true });
  };
  const home: HelmHome = {
    dir,
    env,
    run: (args, options = {}) => runHelm(args, { ...options, home }),
    close,
    [Symbol.asyncDispose]: close,
  };
  return home;
}

/**
 * Run the pinned `helm` (v3, built from the Go module proxy) with an isolated home. `options.env` is
 * laid over the home's variables. Non-zero exits throw `CAP_ERR_PEER_COMMAND_FAILED` unless
 * `allowFailure`.
 */
export async function runHelm(args: readonly string[], options: RunHelmOptions = {}): Promise<CommandResult> {
  const binary = helmBinary();
  const home = options.home ?? createHelmHome();
  try {
    const env = { ...process.env, ...home.env, HELM_DEBUG: 'false', ...options.env };
    return await runPeerCommand('helm', binary, args, { ...options, env });
  } finally {
    if (!options.home) await home.close();
  }
}
