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
  /**
   * TLS material, when TLS is on. `ca` absent: the system CAs. `rejectUnauthorized` is false only with the
   * explicit opt-in ({@link DockerTlsOptions.insecureSkipVerify} or `CAPSTAN_DOCKER_TLS_SKIP_VERIFY`).
   */
  tls?: { ca?: Buffer; cert?: Buffer; key?: Buffer; rejectUnauthorized: boolean };
  /** API version pinned by `DOCKER_API_VERSION` (skips negotiation). */
  apiVersion?: string;
  /** The host string as given, for messages. */
  host: string;
}

/** TLS settings of a Docker client given in code (they win over the environment). */
export interface DockerTlsOptions {
  /**
   * Do not verify the daemon's certificate (neither its CA nor its name): anyone on the path can read and
   * change the traffic, which carries root on the daemon's host. Off by default; the client warns once
   * when it is on. Prefer giving the daemon's CA as `ca.pem` in `DOCKER_CERT_PATH`.
   */
  insecureSkipVerify?: boolean;
}

/** Default socket of a system daemon, as in the Docker CLI. */
export const DEFAULT_DOCKER_HOST = 'unix:///var/run/docker.sock';

/** The environment form of {@link DockerTlsOptions.insecureSkipVerify}, for the CLI and programs configured by env. */
export const DOCKER_SKIP_VERIFY_ENV = 'CAPSTAN_DOCKER_TLS_SKIP_VERIFY';

/** `1`/`true` on, unset/empty/`0`/`false` off; anything else is a typo that must not silently decide security. */
function skipVerifyFromEnv(env: NodeJS.ProcessEnv): boolean {
  const raw = env[DOCKER_SKIP_VERIFY_ENV];
  if (raw === undefined || raw === '' || raw === '0' || raw.toLowerCase() === 'false') return false;
  if (raw === '1' || raw.toLowerCase() === 'true') return true;
  throw new DockerError(
    DockerErrorCode.config,
    `${DOCKER_SKIP_VERIFY_ENV} must be 1, true, 0 or false, got ${JSON.stringify(raw)}`,
  );
}

/**
 * Resolve a daemon endpoint from a host string and the environment, like the Docker CLI: `DOCKER_HOST`
 * (`unix://`, `tcp://`, `http(s)://`), `DOCKER_TLS_VERIFY`, `DOCKER_TLS`, `DOCKER_CERT_PATH` (ca.pem,
 * cert.pem, key.pem; default `~/.docker`), `DOCKER_API_VERSION`. Unlike the CLI, TLS always verifies the
 * daemon (against `ca.pem` when present, else the system CAs), `DOCKER_TLS` and `https://` included;
 * only `tls.insecureSkipVerify` or `CAPSTAN_DOCKER_TLS_SKIP_VERIFY=1` turns that off.
 */
export function resolveEndpoint(
  host?: string,
  env: NodeJS.ProcessEnv = process.env,
  options: { tls?: DockerTlsOptions } = {},
): DockerEndpoint {
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
  const tlsOnly = env.DOCKER_TLS !== undefined && env.DOCKER_TLS !== '';
  const skipVerify = options.tls?.insecureSkipVerify ?? skipVerifyFromEnv(env);
  if (verify && skipVerify) {
    throw new DockerError(
      DockerErrorCode.config,
      `DOCKER_TLS_VERIFY asks to verify the daemon and ${options.tls?.insecureSkipVerify ? 'tls.insecureSkipVerify' : DOCKER_SKIP_VERIFY_ENV} not to: unset one`,
    );
  }
  const useTls = verify || tlsOnly || url.protocol === 'https:' || options.tls !== undefined;
  const port = url.port || (useTls ? '2376' : '2375');
  const origin = `${useTls ? 'https' : 'http'}://${url.hostname}:${port}`;
  if (!useTls) return { origin, host: raw, ...(apiVersion ? { apiVersion } : {}) };
  const certPath = env.DOCKER_CERT_PATH || join(homedir(), '.docker');
  const read = (name: string): Buffer | undefined => {
    try {
      return readFileSync(join(certPath, name));
    } catch (err) {
      // DOCKER_TLS_VERIFY names a complete set (as it always did here); otherwise each file is optional.
      if (verify || (err as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new DockerError(
          DockerErrorCode.config,
          `${verify ? 'DOCKER_TLS_VERIFY is set but ' : ''}cannot read ${name} in ${certPath}`,
          { cause: err },
        );
      }
      return undefined;
    }
  };
  const ca = read('ca.pem');
  const cert = read('cert.pem');
  const key = read('key.pem');
  if ((cert === undefined) !== (key === undefined)) {
    throw new DockerError(
      DockerErrorCode.config,
      `${certPath} has ${cert ? 'cert.pem without key.pem' : 'key.pem without cert.pem'}: a client certificate needs both`,
    );
  }
  const tls = {
    ...(ca ? { ca } : {}),
    ...(cert && key ? { cert, key } : {}),
    rejectUnauthorized: !skipVerify,
  };
  return { origin, tls, host: raw, ...(apiVersion ? { apiVersion } : {}) };
}
