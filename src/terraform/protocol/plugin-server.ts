// The go-plugin side of a provider process: refuse to run unless started by Terraform/OpenTofu, listen on a
// unix socket with mutual TLS (AutoMTLS: the host's client certificate in PLUGIN_CLIENT_CERT, ours in the
// handshake line), serve tfplugin6 plus the controller and health services, and print the one handshake
// line on stdout. Nothing else may reach stdout afterwards: the host reads it as plugin output.
import { randomBytes, X509Certificate } from 'node:crypto';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type handleUnaryCall,
  Server,
  ServerCredentials,
  type ServiceDefinition,
  status,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import { createCertAuthority } from '../../runtime/index.ts';
import { TerraformError, TerraformErrorCode } from '../errors.ts';
import {
  controllerService,
  HEALTH_SERVICE_NAME,
  type HealthCheckRequest,
  type HealthCheckResponse,
  healthService,
  ServingStatus,
} from './go-plugin.ts';
import type { PluginLogger } from './plugin-log.ts';

/** The environment variable go-plugin hosts set for Terraform providers. */
export const MAGIC_COOKIE_KEY = 'TF_PLUGIN_MAGIC_COOKIE';
/** Its value: public, a guard against running a plugin by hand, not a secret. */
export const MAGIC_COOKIE_VALUE = 'd602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2';
/** go-plugin's core protocol version: the first field of the handshake line. */
export const CORE_PROTOCOL_VERSION = 1;
/** The Terraform plugin protocol served here. */
export const PROTOCOL_VERSION = 6;
/** Largest message either way: Terraform's own limit (state and plans of big resources exceed gRPC's 4 MiB default). */
export const MAX_MESSAGE_BYTES = 256 * 1024 * 1024;

/** Options of {@link startPluginServer}. */
export interface PluginServerOptions {
  /** The environment the host started us with. Default `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** Where the handshake line goes. Default stdout, which is then pointed at stderr for good. */
  handshake?: (line: string) => void;
  /** Logs (hclog JSON on stderr, which the host reads). */
  log: PluginLogger;
  /** Called once the host asked the plugin to stop (controller Shutdown). */
  onShutdown?: () => void;
}

/** A running plugin server. */
export interface PluginServer {
  /** The socket path. */
  readonly socket: string;
  /** The handshake line printed (without the newline). */
  readonly handshake: string;
  /** Resolves when the host called Shutdown or {@link PluginServer.close} ran. */
  readonly done: Promise<void>;
  /** Stop serving (in-flight calls finish) and remove the socket. */
  close(): Promise<void>;
}

/**
 * Check the process was started by a plugin host. Throws `CAP_ERR_TERRAFORM_NOT_A_PLUGIN` without the
 * magic cookie and `CAP_ERR_TERRAFORM_PROTOCOL_VERSION` when the host offers protocol versions but not 6.
 */
export function checkPluginEnvironment(env: NodeJS.ProcessEnv): void {
  if (env[MAGIC_COOKIE_KEY] !== MAGIC_COOKIE_VALUE) {
    throw new TerraformError(
      TerraformErrorCode.notAPlugin,
      'This binary is a plugin. These are not meant to be executed directly.\n' +
        'Please execute the program that consumes these plugins, which will\n' +
        'load any plugins automatically (terraform or tofu, e.g. with dev_overrides or a filesystem mirror).',
    );
  }
  const offered = env.PLUGIN_PROTOCOL_VERSIONS;
  if (
    offered &&
    !offered
      .split(',')
      .map((v) => v.trim())
      .includes(String(PROTOCOL_VERSION))
  ) {
    throw new TerraformError(
      TerraformErrorCode.protocolVersion,
      `the host speaks plugin protocol ${offered}; this provider speaks ${PROTOCOL_VERSION} only ` +
        '(Terraform >= 1.0 or OpenTofu)',
    );
  }
}

/** The host's client certificate, and ours: a CA the host trusts (in the handshake) and a leaf for "localhost". */
async function autoMtls(
  clientCertPem: string,
): Promise<{ credentials: ServerCredentials; certBase64: string }> {
  // go-plugin's client pins the handshake certificate as its only root and checks the name "localhost".
  const ca = await createCertAuthority('capstan terraform plugin', 30);
  const leaf = await ca.issue({ commonName: 'localhost', dnsNames: ['localhost'], usage: 'both', days: 30 });
  const credentials = ServerCredentials.createSsl(
    Buffer.from(clientCertPem),
    [{ private_key: Buffer.from(leaf.keyPem), cert_chain: Buffer.from(leaf.certPem + ca.certPem) }],
    true,
  );
  // Base64 of the DER without padding (Go's RawStdEncoding).
  const der = new X509Certificate(ca.certPem).raw;
  return { credentials, certBase64: der.toString('base64').replace(/=+$/, '') };
}

/**
 * Start the plugin server for `provider` (the tfplugin6.Provider handlers) and print the handshake line.
 * Call {@link checkPluginEnvironment} first (servePlugin does).
 */
export async function startPluginServer(
  providerService: ServiceDefinition,
  provider: UntypedServiceImplementation,
  options: PluginServerOptions,
): Promise<PluginServer> {
  const env = options.env ?? process.env;
  const log = options.log;
  const socketDir = env.PLUGIN_UNIX_SOCKET_DIR || tmpdir();
  const socket = join(socketDir, `plugin${randomBytes(6).toString('hex')}`);

  let credentials = ServerCredentials.createInsecure();
  let certBase64 = '';
  const clientCert = env.PLUGIN_CLIENT_CERT;
  if (clientCert) ({ credentials, certBase64 } = await autoMtls(clientCert));

  const server = new Server({
    'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
    'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
  });
  let resolveDone!: () => void;
  const done = new Promise<void>((resolve) => {
    resolveDone = resolve;
  });
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= new Promise<void>((resolve) => {
      server.tryShutdown(() => {
        rmSync(socket, { force: true });
        resolveDone();
        resolve();
      });
    });
    return closing;
  };

  server.addService(providerService, provider);
  const shutdown: handleUnaryCall<object, object> = (_call, callback) => {
    log.debug('shutdown requested by the host');
    callback(null, {});
    // After the answer is on its way: the host waits for it before it stops waiting for us.
    setImmediate(() => {
      options.onShutdown?.();
      void close();
    });
  };
  server.addService(controllerService, { Shutdown: shutdown });
  const check: handleUnaryCall<HealthCheckRequest, HealthCheckResponse> = (call, callback) => {
    const name = call.request.service;
    if (name === '' || name === HEALTH_SERVICE_NAME) callback(null, { status: ServingStatus.SERVING });
    else callback({ code: status.NOT_FOUND, details: `unknown service ${name}` });
  };
  server.addService(healthService, { Check: check });

  await new Promise<void>((resolve, reject) => {
    server.bindAsync(`unix://${socket}`, credentials, (err) => {
      if (err) {
        reject(
          new TerraformError(TerraformErrorCode.serve, `cannot listen on ${socket}: ${err.message}`, {
            cause: err,
          }),
        );
      } else resolve();
    });
  });

  const line = `${CORE_PROTOCOL_VERSION}|${PROTOCOL_VERSION}|unix|${socket}|grpc|${certBase64}`;
  if (options.handshake) options.handshake(line);
  else {
    process.stdout.write(`${line}\n`);
    guardStdout();
  }
  log.debug('plugin server listening', { socket, tls: certBase64 !== '' });
  return { socket, handshake: line, done, close };
}

/**
 * After the handshake, stdout belongs to the host: a stray console.log from provider code would be read
 * as plugin output. Point stdout at stderr for the rest of the process's life.
 */
function guardStdout(): void {
  const toStderr = process.stderr.write.bind(process.stderr) as typeof process.stdout.write;
  process.stdout.write = toStderr;
}
