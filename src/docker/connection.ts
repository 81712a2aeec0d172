import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { DockerError, DockerErrorCode } from './errors.ts';

/** Where and how to reach a Docker daemon, resolved the way the Docker CLI does. */
export interface DockerEndpoint {
  /** Origin given to undici (`http://localhost` for a unix socket). */
  origin: string;
  /** Unix socket path, when the host is `unix://...`. */
  socketPath?: string;
  /** TLS material for `tcp://` with `DOCKER_TLS_VERIFY`. */
  tls?: { ca?: Buffer; cert?: Buffer; key?: Buffer; rejectUnauthorized: boolean };
  /** API version pinned by `DOCKER_API_VERSION` (skips negotiation). */
  apiVersion?: string;
  /** The host string as given, for messages. */
  host: string;
}

/** Default socket of a system daemon, as in the Docker CLI. */
export const DEFAULT_DOCKER_HOST = 'unix:///var/run/docker.sock';

/**
 * Resolve a daemon endpoint from a host string and the environment: `DOCKER_HOST` (`unix://`, `tcp://`,
 * `http(s)://`), `DOCKER_TLS_VERIFY` + `DOCKER_CERT_PATH` (ca.pem, cert.pem, key.pem; default `~/.docker`),
 * `DOCKER_TLS` (TLS without verifying the daemon), `DOCKER_API_VERSION`.
 */
export function resolveEndpoint(host?: string, env: NodeJS.ProcessEnv = process.env): DockerEndpoint {
  const raw = host ?? (env.DOCKER_HOST || DEFAULT_DOCKER_HOST);
  const apiVersion = env.DOCKER_API_VERSION || undefined;
  if (raw.startsWith('unix://') || raw.startsWith('/')) {
    const socketPath = raw.startsWith('/') ? raw : raw.slice('unix://'.length);
    if (socketPath === '') throw new DockerError(DockerErrorCode.config, `empty socket path in ${raw}`);
    return { origin: 'http://localhost', socketPath, host: raw, ...(apiVersion ? { apiVersion } : {}) };
  }
  let url: URL;
  try {
    url = new URL(raw.replace(/^tcp:\/\//, 'http://'));
  } catch (err) {
    throw new DockerError(DockerErrorCode.config, `cannot parse DOCKER_HOST ${JSON.stringify(raw)}`, {
      cause: err,
    });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new DockerError(
      DockerErrorCode.config,
      `unsupported DOCKER_HOST scheme in ${raw} (unix, tcp, http, https)`,
    );
  }
  const verify = env.DOCKER_TLS_VERIFY !== undefined && env.DOCKER_TLS_VERIFY !== '';
  // DOCKER_TLS (the CLI's --tls): TLS, presenting cert.pem/key.pem when present, without verifying the daemon.
  const tlsOnly = env.DOCKER_TLS !== undefined && env.DOCKER_TLS !== '';
  const useTls = verify || tlsOnly || url.protocol === 'https:';
  const port = url.port || (useTls ? '2376' : '2375');
  const origin = `${useTls ? 'https' : 'http'}://${url.hostname}:${port}`;
  if (!useTls) return { origin, host: raw, ...(apiVersion ? { apiVersion } : {}) };
  const certPath = env.DOCKER_CERT_PATH || join(homedir(), '.docker');
  const read = (name: string): Buffer | undefined => {
    try {
      return readFileSync(join(certPath, name));
    } catch (err) {
      if (verify) {
        throw new DockerError(
          DockerErrorCode.config,
          `DOCKER_TLS_VERIFY is set but ${name} is missing in ${certPath}`,
          {
            cause: err,
          },
        );
      }
      return undefined;
    }
  };
  const tls = {
    ca: read('ca.pem'),
    cert: read('cert.pem'),
    key: read('key.pem'),
    rejectUnauthorized: verify,
  };
  return { origin, tls, host: raw, ...(apiVersion ? { apiVersion } : {}) };
}
