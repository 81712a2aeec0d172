import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';
import { KubeError, KubeErrorCode } from './errors.ts';

/**
 * Where the apiserver is and how to prove who we are: what a kubeconfig context or a pod's service account
 * comes down to. {@link loadKubeconfig}, {@link inClusterConfig} and {@link defaultKubeConfig} build one; a
 * test may write one by hand.
 */
export interface KubeClientConfig {
  /** `https://host:port` (a path prefix, as behind a proxy, is kept). */
  server: string;
  /** CA certificate(s) (PEM) to trust instead of the system's. */
  caPem?: string;
  /** Client certificate and key (PEM), for mutual TLS. */
  certPem?: string;
  keyPem?: string;
  /** A bearer token. */
  token?: string;
  /**
   * A file holding the bearer token, re-read at most once a minute and after a 401, so a rotated token
   * (projected service-account tokens expire after an hour) is picked up without a restart.
   */
  tokenFile?: string;
  /** Basic authentication (rare; static password files are gone from recent apiservers). */
  username?: string;
  password?: string;
  /**
   * The `Authorization` header value, asked before each request (an exec credential plugin, a cloud
   * provider). Wins over `token` and `tokenFile`.
   */
  authorization?: (options: { refresh: boolean }) => Promise<string | undefined>;
  /** Do not verify the server's certificate (`insecure-skip-tls-verify`). */
  insecureSkipTlsVerify?: boolean;
  /** Name to verify the server certificate against, when not the URL's host (`tls-server-name`). */
  tlsServerName?: string;
  /** The namespace of the context, or of the pod; `default` when none is set. */
  namespace: string;
  /** Act as this user (`Impersonate-User`), as kubeconfig's `as`. */
  impersonateUser?: string;
}

/** Options of {@link loadKubeconfig}. */
export interface LoadKubeconfigOptions {
  /**
   * The kubeconfig file, or several merged the way kubectl does (the first file that sets a value wins).
   * Default: `KUBECONFIG` (a list), else `~/.kube/config`.
   */
  path?: string | string[];
  /** The context to use. Default: the file's `current-context`. */
  context?: string;
  /** Where `KUBECONFIG` and `HOME` are read. Default `process.env`. */
  env?: NodeJS.ProcessEnv;
}

function configError(message: string, cause?: unknown): KubeError {
  return new KubeError(KubeErrorCode.config, message, cause === undefined ? undefined : { cause });
}

function kubeconfigPaths(options: LoadKubeconfigOptions): string[] {
  if (options.path !== undefined) return Array.isArray(options.path) ? options.path : [options.path];
  const env = options.env ?? process.env;
  const list = (env.KUBECONFIG ?? '').split(delimiter).filter((p) => p !== '');
  if (list.length > 0) return list;
  return [join(env.HOME ?? homedir(), '.kube', 'config')];
}

function readPem(file: string | undefined, data: string | undefined, what: string): string | undefined {
  if (data) return Buffer.from(data, 'base64').toString('utf8');
  if (!file) return undefined;
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw configError(`cannot read ${what} ${file}: ${(err as Error).message}`, err);
  }
}

/**
 * Load a kubeconfig (file, `KUBECONFIG` list or `~/.kube/config`) and resolve one context into a
 * {@link KubeClientConfig}: server, CA, client certificate, token, basic auth, or an exec / auth-provider
 * plugin (run by @kubernetes/client-node, whose parser this uses; only the parsing and the plugin, the
 * requests go through Capstan's transport). Fails with `CAP_ERR_KUBE_CONFIG` when a file cannot be read or
 * parsed, or the context, its cluster or its user is missing.
 */
export async function loadKubeconfig(options: LoadKubeconfigOptions = {}): Promise<KubeClientConfig> {
  const paths = kubeconfigPaths(options);
  // Loaded on first use: client-node is large and most importers of capstan/kube never parse a kubeconfig.
  const { KubeConfig } = await import('@kubernetes/client-node');
  const kc = new KubeConfig();
  let loaded = 0;
  for (const path of paths) {
    if (!existsSync(path)) {
      // kubectl skips missing entries of a KUBECONFIG list, but not a file asked for by name.
      if (options.path === undefined && paths.length > 1) continue;
      throw configError(`kubeconfig ${path} does not exist`);
    }
    const one = loaded++ === 0 ? kc : new KubeConfig();
    try {
      one.loadFromFile(path);
    } catch (err) {
      throw configError(`kubeconfig ${path} cannot be parsed: ${(err as Error).message}`, err);
    }
    if (one !== kc) kc.mergeConfig(one, true);
  }
  if (options.context !== undefined) {
    if (!kc.getContextObject(options.context)) {
      throw configError(`kubeconfig has no context ${options.context} (${paths.join(', ')})`);
    }
    kc.setCurrentContext(options.context);
  }
  const contextName = kc.getCurrentContext();
  const context = contextName ? kc.getContextObject(contextName) : null;
  if (!context) throw configError(`kubeconfig has no current context (${paths.join(', ')})`);
  const cluster = kc.getCluster(context.cluster);
  if (!cluster?.server)
    throw configError(`context ${contextName}: no cluster ${context.cluster} with a server`);
  const user = kc.getUser(context.user);
  const config: KubeClientConfig = {
    server: cluster.server,
    namespace: context.namespace || 'default',
  };
  const caPem = readPem(cluster.caFile, cluster.caData, 'certificate-authority');
  if (caPem) config.caPem = caPem;
  if (cluster.skipTLSVerify) config.insecureSkipTlsVerify = true;
  if (cluster.tlsServerName) config.tlsServerName = cluster.tlsServerName;
  if (user) {
    const certPem = readPem(user.certFile, user.certData, 'client-certificate');
    const keyPem = readPem(user.keyFile, user.keyData, 'client-key');
    if (certPem && keyPem) {
      config.certPem = certPem;
      config.keyPem = keyPem;
    }
    if (user.token) config.token = user.token;
    if (user.username) config.username = user.username;
    if (user.password) config.password = user.password;
    if (user.impersonateUser) config.impersonateUser = user.impersonateUser;
    if (user.exec || user.authProvider) {
      // client-node runs the plugin and caches its credential until it expires.
      config.authorization = async () => {
        const opts: { headers?: Record<string, string> } = { headers: {} };
        await kc.applyToHTTPSOptions(opts as never);
        return opts.headers?.Authorization ?? opts.headers?.authorization;
      };
    }
  }
  return config;
}

/** Options of {@link inClusterConfig}. */
export interface InClusterConfigOptions {
  /** Where `KUBERNETES_SERVICE_HOST` / `_PORT` are read. Default `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** The mounted service-account folder. Default `/var/run/secrets/kubernetes.io/serviceaccount`. */
  dir?: string;
}

/** Where a pod's service account is mounted. */
export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/** True when this process runs in a pod with a service account (the in-cluster environment is there). */
export function isInCluster(options: InClusterConfigOptions = {}): boolean {
  const env = options.env ?? process.env;
  return (
    !!env.KUBERNETES_SERVICE_HOST &&
    !!env.KUBERNETES_SERVICE_PORT &&
    existsSync(join(options.dir ?? SERVICE_ACCOUNT_DIR, 'token'))
  );
}

/**
 * The configuration of a process running in a pod: the apiserver at `KUBERNETES_SERVICE_HOST:PORT`, the
 * service account's CA and namespace, and its token by file (re-read, since projected tokens rotate).
 * Fails with `CAP_ERR_KUBE_CONFIG` outside a pod.
 */
export function inClusterConfig(options: InClusterConfigOptions = {}): KubeClientConfig {
  const env = options.env ?? process.env;
  const dir = options.dir ?? SERVICE_ACCOUNT_DIR;
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  if (!host || !port) {
    throw configError('not in a cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set');
  }
  const tokenFile = join(dir, 'token');
  if (!existsSync(tokenFile)) throw configError(`not in a cluster: no service-account token at ${tokenFile}`);
  const caPem = readPem(join(dir, 'ca.crt'), undefined, 'service-account CA');
  let namespace = 'default';
  try {
    namespace = readFileSync(join(dir, 'namespace'), 'utf8').trim() || 'default';
  } catch {}
  const hostPart = host.includes(':') ? `[${host}]` : host;
  return {
    server: `https://${hostPart}:${port}`,
    tokenFile,
    namespace,
    ...(caPem ? { caPem } : {}),
  };
}

/**
 * The configuration a controller starts with when it is told nothing, in controller-runtime's order: a
 * `KUBECONFIG` list, else the pod's service account when in a cluster, else `~/.kube/config`.
 */
export async function defaultKubeConfig(
  options: { env?: NodeJS.ProcessEnv; context?: string; serviceAccountDir?: string } = {},
): Promise<KubeClientConfig> {
  const env = options.env ?? process.env;
  const ctx = options.context !== undefined ? { context: options.context } : {};
  if (env.KUBECONFIG) return loadKubeconfig({ env, ...ctx });
  const inCluster = { env, ...(options.serviceAccountDir ? { dir: options.serviceAccountDir } : {}) };
  if (isInCluster(inCluster)) return inClusterConfig(inCluster);
  return loadKubeconfig({ env, ...ctx });
}
