// The host side of go-plugin, enough to drive a provider without Terraform: start it the way
// Terraform/OpenTofu do (magic cookie, protocol versions, a self-signed client certificate), read the
// handshake line, and call tfplugin6 over mutual TLS. Tests use it; so can a tool that inspects a provider.
import { type ChildProcess, spawn } from 'node:child_process';
import {
  type CallOptions,
  Client,
  credentials,
  Metadata,
  type ServiceDefinition,
  type ServiceError,
} from '@grpc/grpc-js';
import { createCertAuthority } from '../../runtime/index.ts';
import { TerraformError, TerraformErrorCode } from '../errors.ts';
import { controllerService, type HealthCheckResponse, healthService } from './go-plugin.ts';
import { MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE, MAX_MESSAGE_BYTES } from './plugin-server.ts';
import { loadTfplugin6 } from './protos.ts';

/** Options of {@link launchProvider}. */
export interface LaunchProviderOptions {
  /** Extra environment (laid over the current one). */
  env?: NodeJS.ProcessEnv;
  /** Arguments of the command. */
  args?: string[];
  /** Give up waiting for the handshake after this long. Default 30 s. */
  handshakeTimeoutMs?: number;
  /** Leave out the mutual TLS (no PLUGIN_CLIENT_CERT): the plugin then serves plaintext. */
  insecure?: boolean;
}

/** A provider process started like a plugin host does, and a client to it. */
export interface LaunchedProvider extends AsyncDisposable {
  /** The handshake line the provider printed. */
  readonly handshake: string;
  /** Its parsed fields. */
  readonly address: { core: number; protocol: number; network: string; path: string; certBase64: string };
  /** The child process. */
  readonly process: ChildProcess;
  /** Everything the process wrote to stdout after the handshake line (should stay empty). */
  readonly laterStdout: () => string;
  /** Everything it wrote to stderr so far. */
  readonly stderr: () => string;
  /** Call a tfplugin6.Provider method (`GetProviderSchema`, ...) with a request object in proto field names. */
  call<Res = Record<string, unknown>>(method: string, request?: object): Promise<Res>;
  /** gRPC health for `service` (`plugin`): the status number (1 = SERVING). */
  health(service?: string): Promise<number>;
  /** plugin.GRPCController/Shutdown, then wait for the process to exit; its exit code. */
  shutdown(): Promise<number | null>;
  /** Kill the process if it still runs. */
  close(): Promise<void>;
}

function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

/**
 * Start `command` as Terraform would start a provider and connect to it. Rejects with
 * `CAP_ERR_TERRAFORM_SERVE` when the process exits or stays silent before its handshake (stderr included).
 */
export async function launchProvider(
  command: string,
  options: LaunchProviderOptions = {},
): Promise<LaunchedProvider> {
  const ca = options.insecure ? undefined : await createCertAuthority('capstan terraform host', 1);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    [MAGIC_COOKIE_KEY]: MAGIC_COOKIE_VALUE,
    PLUGIN_PROTOCOL_VERSIONS: '6',
    ...(ca ? { PLUGIN_CLIENT_CERT: ca.certPem } : {}),
    ...options.env,
  };
  // spawn, not the runtime's startProcess: the handshake is read from stdout, which startProcess logs to a file.
  const child = spawn(command, options.args ?? [], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  const handshake = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new TerraformError(TerraformErrorCode.serve, `no handshake from ${command} in time:\n${stderr}`),
      );
    }, options.handshakeTimeoutMs ?? 30_000);
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
      const nl = stdout.indexOf('\n');
      if (nl >= 0) {
        clearTimeout(timer);
        resolve(stdout.slice(0, nl));
      }
    });
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(
        new TerraformError(TerraformErrorCode.serve, `cannot start ${command}: ${err.message}`, {
          cause: err,
        }),
      );
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(
        new TerraformError(
          TerraformErrorCode.serve,
          `${command} exited (${code}) before its handshake:\n${stderr}`,
        ),
      );
    });
  });
  const handshakeEnd = stdout.indexOf('\n') + 1;
  const [core, protocol, network, path, kind, certBase64 = ''] = handshake.split('|');
  if (kind !== 'grpc' || network !== 'unix' || !path) {
    child.kill('SIGKILL');
    throw new TerraformError(TerraformErrorCode.serve, `unexpected handshake line: ${handshake}`);
  }
  const channelCredentials =
    ca && certBase64
      ? credentials.createSsl(
          Buffer.from(
            `-----BEGIN CERTIFICATE-----\n${Buffer.from(certBase64, 'base64').toString('base64')}\n-----END CERTIFICATE-----\n`,
          ),
          Buffer.from(ca.keyPem),
          Buffer.from(ca.certPem),
        )
      : credentials.createInsecure();
  const client = new Client(`unix://${path}`, channelCredentials, {
    'grpc.ssl_target_name_override': 'localhost',
    'grpc.default_authority': 'localhost',
    'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
    'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
  });
  const provider = loadTfplugin6()['tfplugin6.Provider'] as ServiceDefinition;
  const unary = <Res>(service: ServiceDefinition, method: string, request: object): Promise<Res> => {
    const def = service[method];
    if (!def) return Promise.reject(new TerraformError(TerraformErrorCode.serve, `no method ${method}`));
    return new Promise<Res>((resolve, reject) => {
      client.makeUnaryRequest(
        def.path,
        def.requestSerialize,
        def.responseDeserialize,
        request,
        new Metadata(),
        { deadline: Date.now() + 120_000 } as CallOptions,
        (err: ServiceError | null, value?: Res) => (err ? reject(err) : resolve(value as Res)),
      );
    });
  };
  const close = async (): Promise<void> => {
    client.close();
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited(child);
    }
  };
  return {
    handshake,
    address: { core: Number(core), protocol: Number(protocol), network, path, certBase64 },
    process: child,
    laterStdout: () => stdout.slice(handshakeEnd),
    stderr: () => stderr,
    call: <Res>(method: string, request: object = {}) => unary<Res>(provider, method, request),
    health: async (service = 'plugin') =>
      (await unary<HealthCheckResponse>(healthService, 'Check', { service })).status,
    shutdown: async () => {
      await unary(controllerService, 'Shutdown', {});
      const code = await exited(child);
      client.close();
      return code;
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}
