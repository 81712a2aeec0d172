// An External Metrics API adapter as a program, the way it runs in a cluster: RabbitMQ queue depth as the
// external metric `queue_depth` for HorizontalPodAutoscalers (`matchLabels: { queue: <name> }`), served
// over TLS to the apiserver's aggregation layer, as the ServiceAccount `capstan external-metrics manifests`
// creates, with its serving certificate from a mounted Secret (re-read every minute: a renewal is served
// without a restart).
//
//   RABBITMQ_URL=amqp://user:pass@rabbitmq:5672 TLS_CERT_FILE=/tls/tls.crt TLS_KEY_FILE=/tls/tls.key \
//     node examples/external-metrics-adapter.ts
//
// `capstan config doc examples/external-metrics-adapter.ts` lists every variable it reads.
import { readFileSync } from 'node:fs';
import { KubeClient } from 'capstan/kube';
import { createLogger, defineConfig, env, loadConfigOrExit, logConfig } from 'capstan/runtime';
import { createExternalMetricsAdapter, rabbitmqQueueDepthMetric } from 'capstan/scaling';

/** Every variable the adapter reads. */
export const adapterConfig = defineConfig({
  name: 'external-metrics-adapter',
  fields: {
    port: env.port().default(6443).env('PORT').describe('HTTPS port (the Service targets it)'),
    rabbitmqUrl: env
      .url({ protocols: ['amqp', 'amqps', 'http', 'https'] })
      .secret()
      .env('RABBITMQ_URL')
      .describe('amqp:// (a passive declare per read) or the management API, http://user:pass@host:15672'),
    certFile: env.string().default('/tls/tls.crt').env('TLS_CERT_FILE').describe('Serving certificate (PEM)'),
    keyFile: env.string().default('/tls/tls.key').env('TLS_KEY_FILE').describe('Its private key (PEM)'),
    reloadInterval: env
      .duration()
      .default('60s')
      .env('TLS_RELOAD_INTERVAL')
      .describe('How often the files are read again'),
  },
});

/** Start the adapter; returns it running. The environment is read here, once. */
export async function startAdapter(envVars: Record<string, string | undefined> = process.env) {
  const config = loadConfigOrExit(adapterConfig, envVars);
  const logger = createLogger({ name: 'external-metrics-adapter', ...loadConfigOrExit(logConfig, envVars) });
  const readServing = () => ({
    certPem: readFileSync(config.certFile, 'utf8'),
    keyPem: readFileSync(config.keyFile, 'utf8'),
  });
  const kube = await KubeClient.fromDefault();
  const isAmqp = config.rabbitmqUrl.startsWith('amqp');
  let serving = readServing();
  const adapter = createExternalMetricsAdapter({
    kube,
    serving,
    port: config.port,
    logger,
    metrics: [
      rabbitmqQueueDepthMetric(
        isAmqp ? { amqpUrl: config.rabbitmqUrl } : { managementUrl: config.rabbitmqUrl },
      ),
    ],
  });
  // Kubelet swaps a Secret's files when it changes (cert-manager renewing): serve the new pair when it does.
  const reload = setInterval(() => {
    try {
      const next = readServing();
      if (next.certPem !== serving.certPem || next.keyPem !== serving.keyPem) {
        adapter.updateServingCertificate(next);
        serving = next;
        logger.info('serving certificate reloaded');
      }
    } catch (err) {
      logger.warn({ err }, 'reading the serving certificate failed; keeping the one served');
    }
  }, config.reloadInterval);
  reload.unref();
  adapter.service.lifecycle.onShutdown('certificate reload', () => clearInterval(reload));
  adapter.service.lifecycle.onShutdown('kube client', () => kube.close());
  await adapter.start();
  return adapter;
}

if (import.meta.main) {
  const adapter = await startAdapter();
  adapter.service.handleSignals();
}
