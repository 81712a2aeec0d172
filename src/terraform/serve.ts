// The entry of a provider executable: `await serveProvider(provider)` as its last line.

import type { ServiceDefinition } from '@grpc/grpc-js';
import { TerraformError } from './errors.ts';
import type { Provider } from './framework/provider.ts';
import { providerServer } from './framework/rpc.ts';
import type { Fields } from './framework/schema.ts';
import { createPluginLogger, type PluginLogger } from './protocol/plugin-log.ts';
import { checkPluginEnvironment, startPluginServer } from './protocol/plugin-server.ts';
import { loadTfplugin6 } from './protocol/protos.ts';

/** Options of {@link serveProvider}. */
export interface ServeProviderOptions {
  /** The environment the host started us with. Default `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** Logger; default hclog JSON on stderr at `TF_LOG_PROVIDER`/`TF_LOG`'s level. */
  log?: PluginLogger;
}

/**
 * Serve `provider` to the Terraform or OpenTofu process that started this one, until it calls Shutdown;
 * then exit 0. Started by hand (no magic cookie), print why on stderr and exit 1, as go-plugin does.
 */
export async function serveProvider<C extends Fields, Client>(
  provider: Provider<C, Client>,
  options: ServeProviderOptions = {},
): Promise<void> {
  const env = options.env ?? process.env;
  try {
    checkPluginEnvironment(env);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    if (err instanceof TerraformError) process.exit(1);
    throw err;
  }
  const log = options.log ?? createPluginLogger({ module: `provider.terraform-provider-${provider.name}` });
  // The host sends Ctrl-C to the whole process group and then asks us to stop (StopProvider, Shutdown):
  // dying on the signal would lose the state of an apply in flight.
  process.on('SIGINT', () => log.debug('SIGINT ignored: the host decides when the provider stops'));
  const service = loadTfplugin6()['tfplugin6.Provider'] as ServiceDefinition;
  const server = await startPluginServer(
    service,
    providerServer(provider as unknown as Provider, { log, env }),
    { env, log },
  );
  log.info('provider serving', { provider: provider.name, version: provider.options.version ?? '' });
  await server.done;
  process.exit(0);
}
