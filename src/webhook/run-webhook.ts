// The program a webhook's Deployment runs: the certificates (Capstan's CA in a Secret, or cert-manager's
// Secret), the CA bundle kept injected in the configurations, and the TLS server, swapped certificates and
// all, in one runtime service. Its environment is the contract `webhookDeployManifests` writes the
// Deployment against, so the two live side by side.

import { X509Certificate } from 'node:crypto';
import { type Clock, KubeClient } from '../kube/index.ts';
import {
  Counter,
  createLogger,
  defineConfig,
  env,
  Gauge,
  type Logger,
  loadConfig,
  logConfig,
  type MetricsRegistry,
} from '../runtime/index.ts';
import { type CaInjector, injectCaBundle, type WebhookConfiguration } from './ca-injection.ts';
import { secretCertificateStore } from './certificate-store.ts';
import {
  type CertificateTimings,
  issueWebhookCertificates,
  pemCertificates,
  serviceDnsNames,
  urlServingNames,
  type WebhookCertificates,
} from './certificates.ts';
import type { Webhook } from './definition.ts';
import { excludeNamespace, WEBHOOK_POD_PORT, webhookSecretName } from './deploy.ts';
import { webhookConfigurations } from './manifests.ts';
import { followCertificateSecret } from './secret-certificates.ts';
import { createWebhookServer, type WebhookServer } from './server.ts';

/** The variables the webhook program reads (the Deployment sets them). */
export const webhookProgramConfig = defineConfig({
  name: 'webhook',
  fields: {
    port: env
      .port({ allowZero: true })
      .default(WEBHOOK_POD_PORT)
      .env('PORT')
      .describe('HTTPS listen port of the reviews, health and metrics (0 = any free port)'),
    host: env.string().optional().env('HOST').describe('Listen address; unset = all interfaces'),
    podNamespace: env
      .string()
      .optional()
      .env('POD_NAMESPACE')
      .describe("The webhook's namespace (its Service and Secret); default <name>-system"),
    service: env
      .string()
      .optional()
      .env('WEBHOOK_SERVICE')
      .describe('The Service the apiserver calls; default the webhook name'),
    url: env
      .url({ protocols: ['https'] })
      .optional()
      .env('WEBHOOK_URL')
      .describe('Register this https:// base URL instead of a Service (a webhook outside the cluster)'),
    certSecret: env
      .string()
      .optional()
      .env('WEBHOOK_CERT_SECRET')
      .describe('The certificate Secret; default <name>-webhook-tls'),
    certificates: env
      .enum(['capstan', 'cert-manager', 'memory'])
      .default('capstan')
      .env('WEBHOOK_CERTIFICATES')
      .describe(
        "capstan: issue and rotate in the Secret; cert-manager: follow cert-manager's Secret; memory: one process, nothing stored",
      ),
    certValidity: env
      .duration()
      .optional()
      .env('WEBHOOK_CERT_VALIDITY')
      .describe('capstan: life of a serving certificate (renewed at 2/3 of it); default 30d'),
    caValidity: env
      .duration()
      .optional()
      .env('WEBHOOK_CA_VALIDITY')
      .describe('capstan: life of the CA (rotated at 2/3 of it); default 365d'),
    caPropagation: env
      .duration()
      .optional()
      .env('WEBHOOK_CA_PROPAGATION')
      .describe(
        'Delay between the steps of a CA rotation, for the bundle to reach every apiserver and replica; default 60s',
      ),
    register: env
      .enum(['caBundle', 'full', 'none'])
      .default('caBundle')
      .env('WEBHOOK_REGISTER')
      .describe(
        'caBundle: keep the CA bundle injected in the deployed configurations; full: apply them whole; none: leave them alone',
      ),
  },
});

const expiry = (pem: string) => Date.parse(new X509Certificate(pem).validTo) / 1000;

/**
 * What an operator alerts on: when the certificates run out (a renewal that keeps failing shows as an expiry
 * coming closer), and the CA injector's writes (repairs: someone keeps changing the bundle).
 */
function certificateMetrics(
  registry: MetricsRegistry,
  certificates: WebhookCertificates,
  injector: CaInjector | undefined,
): void {
  new Gauge({
    name: 'capstan_webhook_certificate_expiry_timestamp_seconds',
    help: 'When the served certificate (serving) and the CAs of the injected bundle (ca, ca-previous) expire, Unix seconds.',
    labelNames: ['certificate'],
    registers: [registry],
    collect() {
      this.reset();
      this.set({ certificate: 'serving' }, expiry(certificates.holder.current.certPem));
      pemCertificates(certificates.caBundle).forEach((pem, i) => {
        this.set({ certificate: i === 0 ? 'ca' : 'ca-previous' }, expiry(pem));
      });
    },
  });
  if (!injector) return;
  const counted = { write: 0, repair: 0 };
  new Counter({
    name: 'capstan_webhook_ca_bundle_writes_total',
    help: 'Writes of the CA bundle into the webhook configurations: at start and rotation (write), or putting back a changed one (repair).',
    labelNames: ['reason'],
    registers: [registry],
    collect() {
      const now = { write: injector.writes - injector.repairs, repair: injector.repairs };
      for (const reason of ['write', 'repair'] as const) {
        if (now[reason] > counted[reason]) this.inc({ reason }, now[reason] - counted[reason]);
        counted[reason] = now[reason];
      }
    },
  });
}

/** Options of {@link runWebhook}. */
export interface RunWebhookOptions {
  /** The environment to read ({@link webhookProgramConfig}, `LOG_LEVEL`, `LOG_FORMAT`). Default `process.env`. */
  env?: Record<string, string | undefined>;
  /** Default `KubeClient.fromDefault()` (in-cluster ServiceAccount, else `KUBECONFIG`). */
  client?: KubeClient;
  logger?: Logger;
  /** Certificate lifetimes and the CA rotation's propagation delay; over the environment's. */
  timings?: CertificateTimings;
  clock?: Clock;
  /** Stop on SIGTERM/SIGINT and exit. Default true; tests pass false and call `stop()`. */
  handleSignals?: boolean;
}

/** A running webhook program. */
export interface RunningWebhook {
  readonly server: WebhookServer;
  readonly certificates: WebhookCertificates;
  /** Undefined with `WEBHOOK_REGISTER=none`. */
  readonly injector: CaInjector | undefined;
  /** The configurations it registers (their caBundle is what {@link injector} keeps). */
  readonly configurations: readonly WebhookConfiguration[];
  /** `https://host:port`. */
  readonly url: string;
  /** Drain and stop; the certificates and injector stop following. */
  stop(): Promise<void>;
}

/**
 * Run `webhook` as its Deployment's program: certificates per `WEBHOOK_CERTIFICATES` (valid for the
 * Service's DNS names, or `WEBHOOK_URL`'s host), the CA bundle injected per `WEBHOOK_REGISTER`, the reviews
 * served over TLS on `PORT` (9443) with `/livez`, `/readyz` and `/metrics`. A rotation swaps the certificate
 * without a restart. A bad environment throws `ConfigError` listing every problem.
 */
export async function runWebhook(webhook: Webhook, options: RunWebhookOptions = {}): Promise<RunningWebhook> {
  const envVars = options.env ?? process.env;
  const config = loadConfig(webhookProgramConfig, envVars);
  const name = webhook.options.name;
  const logger = options.logger ?? createLogger({ name, ...loadConfig(logConfig, envVars) });
  const namespace = config.podNamespace ?? `${name}-system`;
  const service = config.service ?? name;
  const needsClient = config.certificates !== 'memory' || config.register !== 'none';
  const client = options.client ?? (needsClient ? await KubeClient.fromDefault() : undefined);
  const secret = config.certSecret ?? webhookSecretName(name);
  const names = config.url ? urlServingNames(config.url) : { dnsNames: serviceDnsNames(service, namespace) };
  const stop = new AbortController();
  const common = {
    logger,
    signal: stop.signal,
    ...(options.clock && { clock: options.clock }),
  };
  const timings: CertificateTimings = {
    ...(config.certValidity !== undefined && { servingValidityMs: config.certValidity }),
    ...(config.caValidity !== undefined && { caValidityMs: config.caValidity }),
    ...(config.caPropagation !== undefined && { propagationMs: config.caPropagation }),
    ...options.timings,
  };
  let certificates: WebhookCertificates;
  if (config.certificates === 'cert-manager') {
    certificates = await followCertificateSecret({
      client: client!,
      namespace,
      name: secret,
      ...(timings.propagationMs !== undefined && { propagationMs: timings.propagationMs }),
      ...common,
    });
  } else {
    certificates = await issueWebhookCertificates({
      names,
      ...(config.certificates === 'capstan' && { store: secretCertificateStore(client!, namespace, secret) }),
      commonName: name,
      timings,
      ...common,
    });
  }
  const emitted = webhookConfigurations(
    webhook,
    config.url ? { url: config.url } : { service: { name: service, namespace, port: 443 } },
  );
  const configurations = [emitted.validating, emitted.mutating]
    .filter((c): c is WebhookConfiguration => c !== undefined)
    .map((c) => (config.url ? c : excludeNamespace(c, namespace)));
  const injector =
    config.register === 'none'
      ? undefined
      : injectCaBundle({
          client: client!,
          configurations,
          certificates,
          apply: config.register,
          ...common,
        });
  const server = createWebhookServer(webhook, {
    certificate: certificates.holder,
    port: config.port,
    ...(config.host !== undefined && { host: config.host }),
    logger,
  });
  certificateMetrics(server.service.metrics, certificates, injector);
  if (injector) {
    // Degrades readiness without failing it: this pod serves whatever the configurations say.
    server.service.health.register({
      name: 'ca-bundle',
      critical: false,
      intervalMs: 5_000,
      check: async (signal) => {
        await injector.injected({ signal: AbortSignal.any([signal, AbortSignal.timeout(1_000)]) });
        return { detail: `${injector.writes} writes, ${injector.repairs} repairs` };
      },
    });
  }
  server.service.lifecycle.onShutdown(`${name} certificates`, async () => {
    stop.abort();
    await Promise.all([injector?.close(), certificates.close()]);
  });
  const url = await server.start();
  if (options.handleSignals ?? true) server.handleSignals();
  return {
    server,
    certificates,
    injector,
    configurations,
    url,
    async stop() {
      await server.stop('stop');
      stop.abort();
      await Promise.all([injector?.close(), certificates.close()]);
    },
  };
}
