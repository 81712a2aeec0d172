// The autoscaler file `capstan autoscale` runs: YAML (or JSON) in the HPA's and KEDA's words, checked as a
// whole so one error report lists every problem, with where it is (`autoscalers[1].maxReplicas`).
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { type AutoscalerSpec, autoscalerSpecProblems, DEFAULT_POLLING_INTERVAL_MS } from './autoscaler.ts';
import { ScalingError, ScalingErrorCode } from './errors.ts';
import {
  type MetricSource,
  type PrometheusQuerySourceOptions,
  prometheusQuerySource,
  type RabbitMQQueueSourceOptions,
  rabbitmqQueueSource,
} from './sources.ts';

const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name');

const rabbitmqSchema = z.strictObject({
  queue: z.string().min(1),
  vhost: z.string().optional(),
  managementUrl: z.string().optional(),
  managementUrlFromEnv: envName.optional(),
  amqpUrl: z.string().optional(),
  amqpUrlFromEnv: envName.optional(),
  excludeUnacknowledged: z.boolean().optional(),
  timeoutSeconds: z.number().positive().optional(),
});

const prometheusSchema = z.strictObject({
  url: z.string().optional(),
  urlFromEnv: envName.optional(),
  query: z.string().min(1),
  emptyValue: z.number().min(0).optional(),
  authorizationFromEnv: envName.optional(),
  timeoutSeconds: z.number().positive().optional(),
});

const windowSchema = z.strictObject({ stabilizationWindowSeconds: z.number().optional() });

const autoscalerSchema = z.strictObject({
  name: z.string(),
  scaleTargetRef: z.union([z.string(), z.strictObject({ kind: z.string(), name: z.string() })]),
  namespace: z.string().optional(),
  minReplicas: z.number().optional(),
  maxReplicas: z.number(),
  tolerance: z.number().optional(),
  /** Seconds, as KEDA's `pollingInterval`. */
  pollingInterval: z.number().optional(),
  behavior: z
    .strictObject({ scaleUp: windowSchema.optional(), scaleDown: windowSchema.optional() })
    .optional(),
  metric: z.strictObject({
    target: z.number(),
    targetType: z.enum(['AverageValue', 'Value']).optional(),
    rabbitmq: rabbitmqSchema.optional(),
    prometheus: prometheusSchema.optional(),
  }),
});

const fileSchema = z.strictObject({ autoscalers: z.array(autoscalerSchema).min(1) });

/** One autoscaler of the file, checked: its spec without the source, and how to make the source. */
export interface AutoscalerConfigEntry {
  readonly spec: Omit<AutoscalerSpec, 'metric'> & {
    readonly metric: Omit<AutoscalerSpec['metric'], 'source'>;
  };
  readonly source:
    | { readonly type: 'rabbitmq'; readonly options: RabbitMQQueueSourceOptions }
    | { readonly type: 'prometheus'; readonly options: PrometheusQuerySourceOptions };
}

function pathText(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : `${out ? '.' : ''}${String(p)}`;
  return out || '(file)';
}

/** `value` from the file, or from the environment variable `fromEnv` names; problems go to `problems`. */
function valueOrEnv(
  where: string,
  field: string,
  value: string | undefined,
  fromEnv: string | undefined,
  env: Record<string, string | undefined>,
  problems: string[],
): string | undefined {
  if (value !== undefined && fromEnv !== undefined) {
    problems.push(`${where}: give ${field} or ${field}FromEnv, not both`);
    return undefined;
  }
  if (fromEnv === undefined) return value;
  const v = env[fromEnv];
  if (v === undefined || v === '') problems.push(`${where}.${field}FromEnv: ${fromEnv} is not set`);
  return v || undefined;
}

function checkUrl(where: string, url: string | undefined, protocols: string[], problems: string[]): void {
  if (url === undefined) return;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    // The URL may hold a password: name the field, not the value.
    problems.push(`${where}: not a URL`);
    return;
  }
  if (!protocols.includes(parsed.protocol)) {
    problems.push(`${where}: a ${protocols.join(' or ')} URL, got ${parsed.protocol}`);
  }
}

/**
 * Check an autoscaler file (YAML or JSON text) and return its entries; `env` is where `...FromEnv` fields
 * are read (the caller's edge passes `process.env`). Fails with `CAP_ERR_SCALING_CONFIG` whose `problems`
 * list every problem of the whole file, each with its place.
 *
 * ```yaml
 * autoscalers:
 *   - name: worker
 *     scaleTargetRef: deployment/worker
 *     namespace: jobs
 *     minReplicas: 1
 *     maxReplicas: 20
 *     pollingInterval: 15          # seconds
 *     behavior: { scaleDown: { stabilizationWindowSeconds: 300 } }
 *     metric:
 *       target: 10                 # messages per replica
 *       rabbitmq: { queue: jobs, managementUrlFromEnv: RABBITMQ_MANAGEMENT_URL }
 * ```
 */
export function parseAutoscalerConfig(
  text: string,
  env: Record<string, string | undefined> = {},
): AutoscalerConfigEntry[] {
  let data: unknown;
  try {
    data = parseYaml(text);
  } catch (err) {
    // The YAML parser's message spans lines (it draws the spot): its first line says enough.
    throw configError([`not YAML: ${(err as Error).message.split('\n')[0]}`]);
  }
  const parsed = fileSchema.safeParse(data);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${pathText(i.path)}: ${i.message}`);
    throw configError(problems);
  }
  const problems: string[] = [];
  const entries: AutoscalerConfigEntry[] = [];
  const names = new Set<string>();
  parsed.data.autoscalers.forEach((a, i) => {
    const where = `autoscalers[${i}]`;
    if (names.has(a.name)) problems.push(`${where}.name: "${a.name}" is used twice`);
    names.add(a.name);
    const { rabbitmq, prometheus } = a.metric;
    let source: AutoscalerConfigEntry['source'] | undefined;
    if ((rabbitmq === undefined) === (prometheus === undefined)) {
      problems.push(`${where}.metric: give exactly one source, rabbitmq or prometheus`);
    } else if (rabbitmq) {
      const w = `${where}.metric.rabbitmq`;
      const managementUrl = valueOrEnv(
        w,
        'managementUrl',
        rabbitmq.managementUrl,
        rabbitmq.managementUrlFromEnv,
        env,
        problems,
      );
      const amqpUrl = valueOrEnv(w, 'amqpUrl', rabbitmq.amqpUrl, rabbitmq.amqpUrlFromEnv, env, problems);
      const given = [
        rabbitmq.managementUrl,
        rabbitmq.managementUrlFromEnv,
        rabbitmq.amqpUrl,
        rabbitmq.amqpUrlFromEnv,
      ];
      if (given.every((g) => g === undefined))
        problems.push(`${w}: give managementUrl or amqpUrl (or ...FromEnv)`);
      checkUrl(`${w}.managementUrl`, managementUrl, ['http:', 'https:'], problems);
      checkUrl(`${w}.amqpUrl`, amqpUrl, ['amqp:', 'amqps:'], problems);
      source = {
        type: 'rabbitmq',
        options: {
          queue: rabbitmq.queue,
          ...(rabbitmq.vhost !== undefined ? { vhost: rabbitmq.vhost } : {}),
          // The management API first: KEDA's http protocol, and no extra connection per read.
          ...(managementUrl ? { managementUrl } : amqpUrl ? { amqpUrl } : {}),
          ...(rabbitmq.excludeUnacknowledged !== undefined
            ? { excludeUnacknowledged: rabbitmq.excludeUnacknowledged }
            : {}),
          ...(rabbitmq.timeoutSeconds !== undefined ? { timeoutMs: rabbitmq.timeoutSeconds * 1000 } : {}),
        },
      };
    } else if (prometheus) {
      const w = `${where}.metric.prometheus`;
      const url = valueOrEnv(w, 'url', prometheus.url, prometheus.urlFromEnv, env, problems);
      if (prometheus.url === undefined && prometheus.urlFromEnv === undefined)
        problems.push(`${w}: give url (or urlFromEnv)`);
      checkUrl(`${w}.url`, url, ['http:', 'https:'], problems);
      const authorization = valueOrEnv(
        w,
        'authorization',
        undefined,
        prometheus.authorizationFromEnv,
        env,
        problems,
      );
      source = {
        type: 'prometheus',
        options: {
          url: url ?? '',
          query: prometheus.query,
          ...(prometheus.emptyValue !== undefined ? { emptyValue: prometheus.emptyValue } : {}),
          ...(authorization ? { authorization } : {}),
          ...(prometheus.timeoutSeconds !== undefined ? { timeoutMs: prometheus.timeoutSeconds * 1000 } : {}),
        },
      };
    }
    const spec: AutoscalerConfigEntry['spec'] = {
      name: a.name,
      scaleTargetRef: a.scaleTargetRef,
      maxReplicas: a.maxReplicas,
      metric: {
        target: a.metric.target,
        ...(a.metric.targetType ? { targetType: a.metric.targetType } : {}),
      },
      ...(a.namespace !== undefined ? { namespace: a.namespace } : {}),
      ...(a.minReplicas !== undefined ? { minReplicas: a.minReplicas } : {}),
      ...(a.tolerance !== undefined ? { tolerance: a.tolerance } : {}),
      pollingIntervalMs:
        a.pollingInterval !== undefined ? a.pollingInterval * 1000 : DEFAULT_POLLING_INTERVAL_MS,
      ...(a.behavior ? { behavior: a.behavior } : {}),
    };
    // The same checks as the library's, with a stand-in source (the source's own were made above).
    const standIn: MetricSource = { description: '', read: async () => 0, close: async () => {} };
    for (const p of autoscalerSpecProblems({ ...spec, metric: { ...spec.metric, source: standIn } })) {
      problems.push(`${where}.${p}`);
    }
    if (source) entries.push({ spec, source });
  });
  if (problems.length > 0) throw configError(problems);
  return entries;
}

function configError(problems: string[]): ScalingError {
  return new ScalingError(
    ScalingErrorCode.config,
    `the autoscaler file has ${problems.length} problem${problems.length === 1 ? '' : 's'}:\n  ${problems.join('\n  ')}`,
    { problems },
  );
}

/** The metric source an entry describes. */
export function sourceFor(entry: AutoscalerConfigEntry): MetricSource {
  return entry.source.type === 'rabbitmq'
    ? rabbitmqQueueSource(entry.source.options)
    : prometheusQuerySource(entry.source.options);
}
