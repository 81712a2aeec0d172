// What Helm hands a plugin: the HELM_* variables (cmd/helm/load_plugins.go and pkg/cli/environment.go of
// Helm 3), read once at the plugin's edge into values.

/** Helm's environment as a plugin sees it (see {@link helmEnv}). */
export interface HelmEnv {
  /** The helm binary that ran the plugin (`HELM_BIN`); `helm` when not run by Helm. */
  readonly bin: string;
  /** `HELM_NAMESPACE`: `--namespace`, else the kubeconfig context's namespace, else `default`. */
  readonly namespace: string;
  /** `HELM_KUBECONTEXT` (`--kube-context`), when set. */
  readonly kubeContext: string | undefined;
  /** `KUBECONFIG` (`--kubeconfig` or the variable), when set. */
  readonly kubeconfig: string | undefined;
  /** `HELM_PLUGIN_NAME` and `HELM_PLUGIN_DIR`: the running plugin and its installed folder. */
  readonly pluginName: string | undefined;
  readonly pluginDir: string | undefined;
  /** `HELM_PLUGINS`: where plugins are installed. */
  readonly pluginsDir: string | undefined;
  /** `HELM_DEBUG` (`--debug`). */
  readonly debug: boolean;
  /** `HELM_DATA_HOME`, `HELM_CONFIG_HOME`, `HELM_CACHE_HOME`. */
  readonly dataHome: string | undefined;
  readonly configHome: string | undefined;
  readonly cacheHome: string | undefined;
  /** `HELM_REPOSITORY_CONFIG` and `HELM_REPOSITORY_CACHE`. */
  readonly repositoryConfig: string | undefined;
  readonly repositoryCache: string | undefined;
  /** `HELM_REGISTRY_CONFIG`. */
  readonly registryConfig: string | undefined;
  /**
   * Repository credentials Helm passes to a downloader (`HELM_PLUGIN_USERNAME`, `HELM_PLUGIN_PASSWORD`,
   * from `helm repo add --username/--password`); undefined when empty.
   */
  readonly username: string | undefined;
  readonly password: string | undefined;
  /** The whole environment, for variables of the plugin's own (`AWS_*`...). */
  readonly vars: Readonly<NodeJS.ProcessEnv>;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}

/**
 * Read Helm's plugin environment. Call it once at the edge (the plugin's entry) and pass the value down;
 * outside Helm every field falls back to what Helm itself would use (`helm`, `default`).
 */
export function helmEnv(env: NodeJS.ProcessEnv = process.env): HelmEnv {
  return {
    bin: nonEmpty(env['HELM_BIN']) ?? 'helm',
    namespace: nonEmpty(env['HELM_NAMESPACE']) ?? 'default',
    kubeContext: nonEmpty(env['HELM_KUBECONTEXT']),
    kubeconfig: nonEmpty(env['KUBECONFIG']),
    pluginName: nonEmpty(env['HELM_PLUGIN_NAME']),
    pluginDir: nonEmpty(env['HELM_PLUGIN_DIR']),
    pluginsDir: nonEmpty(env['HELM_PLUGINS']),
    debug: env['HELM_DEBUG'] === 'true' || env['HELM_DEBUG'] === '1',
    dataHome: nonEmpty(env['HELM_DATA_HOME']),
    configHome: nonEmpty(env['HELM_CONFIG_HOME']),
    cacheHome: nonEmpty(env['HELM_CACHE_HOME']),
    repositoryConfig: nonEmpty(env['HELM_REPOSITORY_CONFIG']),
    repositoryCache: nonEmpty(env['HELM_REPOSITORY_CACHE']),
    registryConfig: nonEmpty(env['HELM_REGISTRY_CONFIG']),
    username: nonEmpty(env['HELM_PLUGIN_USERNAME']),
    password: nonEmpty(env['HELM_PLUGIN_PASSWORD']),
    vars: env,
  };
}

/**
 * The flags that point a nested `helm` call at the same cluster as the plugin's caller. Helm strips
 * `--namespace`, `--kube-context` and `--kubeconfig` from a plugin's arguments and passes them in the
 * environment instead; the nested helm reads `HELM_NAMESPACE`, `HELM_KUBECONTEXT` and `KUBECONFIG` back,
 * so passing the environment through is enough. These flags make it explicit. `KUBECONFIG` stays in the
 * environment: it may be a list, which `--kubeconfig` is not.
 */
export function helmTargetFlags(env: HelmEnv): string[] {
  const flags = ['--namespace', env.namespace];
  if (env.kubeContext) flags.push('--kube-context', env.kubeContext);
  return flags;
}
