// Who is calling: the apiserver's aggregation layer proxies each request with its front-proxy client
// certificate and the caller's identity in X-Remote-* headers. Like every aggregated server built on
// k8s.io/apiserver (delegated authentication), the adapter believes those headers only from a connection
// whose certificate chains to the requestheader client CA and carries an allowed name.
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { KubeClient } from '../../kube/index.ts';
import { ScalingError, ScalingErrorCode } from '../errors.ts';

/** How the apiserver's front proxy authenticates to aggregated servers (its `--requestheader-*` flags). */
export interface FrontProxyAuthentication {
  /** The requestheader client CA (PEM): the front-proxy client certificate must chain to it. */
  clientCaPem: string;
  /** Common names a front-proxy certificate may carry; empty: any certificate the CA signed. */
  allowedNames: readonly string[];
  /** Headers naming the user, first present wins (`X-Remote-User`). */
  usernameHeaders: readonly string[];
  /** Headers listing the user's groups, all of them (`X-Remote-Group`). */
  groupHeaders: readonly string[];
  /** Prefixes of headers carrying the user's extra attributes (`X-Remote-Extra-`). */
  extraHeaderPrefixes: readonly string[];
}

/** The caller, as the apiserver authenticated it. */
export interface UserInfo {
  name: string;
  groups: readonly string[];
  extra: Readonly<Record<string, readonly string[]>>;
}

/** The outcome of {@link authenticateFrontProxy}: a user, or the reason there is none. */
export type Authentication = { user: UserInfo; reason?: never } | { user?: never; reason: string };

/** The ConfigMap the apiserver publishes for aggregated servers (kube-system/extension-apiserver-authentication). */
const AUTH_CONFIGMAP = '/api/v1/namespaces/kube-system/configmaps/extension-apiserver-authentication';

function jsonList(data: Record<string, string>, key: string): string[] {
  const raw = data[key];
  if (raw === undefined || raw === '') return [];
  const parsed: unknown = JSON.parse(raw);
  if (!Array.isArray(parsed) || !parsed.every((x) => typeof x === 'string')) {
    throw new ScalingError(
      ScalingErrorCode.config,
      `${key} in extension-apiserver-authentication is not a list of strings`,
    );
  }
  return parsed;
}

/**
 * Read the front proxy's settings from the ConfigMap `kube-system/extension-apiserver-authentication`,
 * which the apiserver writes from its `--requestheader-*` flags: what `k8s.io/apiserver`'s delegated
 * authentication reads. The caller needs `get` on it (the `extension-apiserver-authentication-reader` Role,
 * bound by {@link externalMetricsApiManifests}). Fails with `CAP_ERR_SCALING_CONFIG` when the apiserver runs
 * without an aggregation layer (no requestheader CA).
 */
export async function readFrontProxyAuthentication(
  kube: KubeClient,
  options: { signal?: AbortSignal } = {},
): Promise<FrontProxyAuthentication> {
  const cm = await kube.json<{ data?: Record<string, string> }>({
    path: AUTH_CONFIGMAP,
    ...(options.signal ? { signal: options.signal } : {}),
  });
  const data = cm.data ?? {};
  const clientCaPem = data['requestheader-client-ca-file'] ?? '';
  if (!clientCaPem.includes('BEGIN CERTIFICATE')) {
    throw new ScalingError(
      ScalingErrorCode.config,
      'the apiserver has no aggregation layer: extension-apiserver-authentication has no requestheader-client-ca-file (start kube-apiserver with --requestheader-client-ca-file and --proxy-client-cert-file)',
    );
  }
  return {
    clientCaPem,
    allowedNames: jsonList(data, 'requestheader-allowed-names'),
    usernameHeaders: jsonList(data, 'requestheader-username-headers'),
    groupHeaders: jsonList(data, 'requestheader-group-headers'),
    extraHeaderPrefixes: jsonList(data, 'requestheader-extra-headers-prefix'),
  };
}

const CLIENT_AUTH_OID = '1.3.6.1.5.5.7.3.2';

function headerValues(req: IncomingMessage, name: string): string[] {
  const v = req.headersDistinct[name.toLowerCase()];
  return v ?? [];
}

/**
 * Authenticate a request the aggregation layer proxied: the TLS client certificate must have been verified
 * against {@link FrontProxyAuthentication.clientCaPem} (the server asks for it with that CA), be meant for
 * client authentication and carry an allowed common name; then the user is read from the headers. The
 * reason says what failed, for a 401.
 */
export function authenticateFrontProxy(
  req: IncomingMessage,
  config: FrontProxyAuthentication,
): Authentication {
  const socket = req.socket as TLSSocket;
  if (typeof socket.getPeerCertificate !== 'function') return { reason: 'not a TLS connection' };
  const cert = socket.getPeerCertificate();
  if (!cert || Object.keys(cert).length === 0) return { reason: 'no client certificate' };
  if (!socket.authorized) {
    return {
      reason: `the client certificate is not signed by the requestheader client CA (${String(socket.authorizationError)})`,
    };
  }
  if (cert.ext_key_usage && !cert.ext_key_usage.includes(CLIENT_AUTH_OID)) {
    return { reason: 'the client certificate is not for client authentication' };
  }
  const cn = cert.subject?.CN;
  const commonName = Array.isArray(cn) ? cn[0] : cn;
  if (config.allowedNames.length > 0 && !config.allowedNames.includes(commonName ?? '')) {
    return { reason: `the client certificate's name "${commonName}" is not an allowed front-proxy name` };
  }
  let name: string | undefined;
  for (const header of config.usernameHeaders) {
    name = headerValues(req, header)[0];
    if (name) break;
  }
  if (!name) return { reason: `no user in ${config.usernameHeaders.join(', ') || 'any username header'}` };
  const groups = config.groupHeaders.flatMap((h) => headerValues(req, h));
  const extra: Record<string, string[]> = {};
  for (const [header, values] of Object.entries(req.headersDistinct)) {
    const prefix = config.extraHeaderPrefixes.find((p) => header.startsWith(p.toLowerCase()));
    if (!prefix || !values) continue;
    // Keys travel percent-encoded (k8s.io/apiserver's requestheader); they name attributes in lower case.
    const key = decodeURIComponent(header.slice(prefix.length));
    extra[key] = [...(extra[key] ?? []), ...values];
  }
  return { user: { name, groups, extra } };
}
