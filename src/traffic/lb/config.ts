// The load balancer's configuration as `capstan lb` reads it: a YAML (or JSON) file and command-line flags
// merged (flags win), checked as a whole so one report lists every problem with where it is
// (`backends[1].weight`, `healthCheck.interval`). Durations are `2s`, `500ms`, `1m30s` or milliseconds.
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { parseDuration } from '../../runtime/index.ts';
import { TrafficError, TrafficErrorCode } from '../errors.ts';
import { backendOrigin } from './backend.ts';
import { TrustedProxies } from './headers.ts';
import type { LoadBalancerSettings } from './load-balancer.ts';
import { LB_POLICIES } from './pickers.ts';

/** Flags of `capstan lb`; each, when given, wins over the file. */
export interface LbFlags {
  listen?: string;
  backends?: readonly string[];
  policy?: string;
  hashHeader?: string;
  admin?: string;
  healthPath?: string;
}

/** A host and port to listen on. */
export interface ListenAddress {
  host: string;
  port: number;
}

/** Everything `capstan lb` needs, checked. */
export interface LbConfig {
  listen: ListenAddress;
  admin?: ListenAddress;
  /** PEM certificate and key, read from the files named in `tls`. */
  tls?: { certPem: string; keyPem: string };
  /** What {@link LoadBalancer.update} takes: the part a reload may change. */
  settings: LoadBalancerSettings;
}

const duration = z.union([z.number(), z.string()]).transform((value, ctx) => {
  const ms = typeof value === 'number' ? value : parseDuration(value);
  if (ms === undefined || !Number.isInteger(ms) || ms < 0 || ms > 2_147_483_647) {
    ctx.addIssue({
      code: 'custom',
      message: `expected a duration like 2s, 500ms or 1m30s, got ${JSON.stringify(value)}`,
    });
    return z.NEVER;
  }
  return ms;
});
const positiveDuration = duration.refine((ms) => ms > 0, 'must be more than 0');
const count = (min: number, max: number) => z.number().int().min(min).max(max);

const backendSchema = z.union([
  z.string(),
  z.strictObject({ url: z.string(), weight: count(1, 1000).optional() }),
]);

const fileSchema = z.strictObject({
  listen: z.string().optional(),
  admin: z.string().optional(),
  backends: z.array(backendSchema).optional(),
  policy: z.enum(LB_POLICIES).optional(),
  hashHeader: z
    .string()
    .regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'a header name')
    .optional(),
  healthCheck: z
    .strictObject({
      enabled: z.boolean().optional(),
      path: z.string().startsWith('/').optional(),
      host: z.string().optional(),
      interval: positiveDuration.optional(),
      timeout: positiveDuration.optional(),
      rise: count(1, 100).optional(),
      fall: count(1, 100).optional(),
    })
    .optional(),
  outlier: z
    .strictObject({
      enabled: z.boolean().optional(),
      consecutive5xx: count(1, 1_000_000).optional(),
      consecutiveGatewayErrors: count(1, 1_000_000).optional(),
      baseEjection: positiveDuration.optional(),
      maxEjection: positiveDuration.optional(),
      maxEjectionPercent: count(0, 100).optional(),
    })
    .optional(),
  retry: z
    .strictObject({
      retries: count(0, 10).optional(),
      statusCodes: z.array(count(100, 599)).optional(),
      methods: z.array(z.string().regex(/^[A-Z]+$/, 'an upper-case method name')).optional(),
      budgetPercent: count(0, 100).optional(),
      budgetMinRetries: count(0, 1_000_000).optional(),
    })
    .optional(),
  timeouts: z
    .strictObject({
      connect: positiveDuration.optional(),
      headers: duration.optional(),
      idle: duration.optional(),
    })
    .optional(),
  trustedProxies: z.array(z.string()).optional(),
  tls: z.strictObject({ cert: z.string(), key: z.string() }).optional(),
});

function pathText(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : `${out ? '.' : ''}${String(p)}`;
  return out || '(file)';
}

/** `host:port`, `[v6]:port`, `:port` or `port`; the host defaults to 127.0.0.1 (listening everywhere is asked for, not assumed). */
export function parseListen(text: string): ListenAddress | undefined {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*))?:?(\d{1,5})$/.exec(text.trim());
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port > 65_535) return undefined;
  const host = m[1] ?? (m[2] || '127.0.0.1');
  if (m[1] !== undefined && isIP(m[1]) !== 6) return undefined;
  return { host, port };
}

function merged(file: Record<string, unknown>, flags: LbFlags): Record<string, unknown> {
  const out: Record<string, unknown> = { ...file };
  if (flags.listen !== undefined) out['listen'] = flags.listen;
  if (flags.admin !== undefined) out['admin'] = flags.admin;
  if (flags.backends !== undefined && flags.backends.length > 0) out['backends'] = [...flags.backends];
  if (flags.policy !== undefined) out['policy'] = flags.policy;
  if (flags.hashHeader !== undefined) out['hashHeader'] = flags.hashHeader;
  if (flags.healthPath !== undefined) {
    const health =
      typeof file['healthCheck'] === 'object' && file['healthCheck'] !== null ? file['healthCheck'] : {};
    out['healthCheck'] = { ...health, path: flags.healthPath };
  }
  return out;
}

function configError(where: string, problems: string[]): TrafficError {
  const head = problems.length === 1 ? '1 problem' : `${problems.length} problems`;
  return new TrafficError(
    TrafficErrorCode.config,
    `invalid load balancer configuration (${where}): ${head}\n${problems.map((p) => `  - ${p}`).join('\n')}`,
    { problems },
  );
}

/**
 * Check a configuration: `text` is the file's content (YAML or JSON; undefined without a file), `flags`
 * win over it. Throws a {@link TrafficError} `config` listing every problem. `readFile` reads the TLS
 * files (default: from disk); `where` names the source in the message.
 */
export function parseLbConfig(
  text: string | undefined,
  flags: LbFlags = {},
  options: { where?: string; readFile?: (path: string) => string } = {},
): LbConfig {
  const where = options.where ?? (text === undefined ? 'flags' : 'file and flags');
  let file: unknown = {};
  if (text !== undefined) {
    try {
      file = parseYaml(text) ?? {};
    } catch (err) {
      throw configError(where, [`not YAML: ${(err as Error).message.split('\n')[0]}`]);
    }
    if (typeof file !== 'object' || Array.isArray(file))
      throw configError(where, ['the file must be a mapping']);
  }
  const raw = merged(file as Record<string, unknown>, flags);
  const parsed = fileSchema.safeParse(raw);
  // The checks zod cannot express run on the raw values too, so one report has every problem.
  const problems = parsed.success ? [] : parsed.error.issues.map((i) => `${pathText(i.path)}: ${i.message}`);
  const listenText = raw['listen'];
  const listen = typeof listenText === 'string' ? parseListen(listenText) : undefined;
  if (listenText === undefined) problems.push('listen: required (--listen or listen:)');
  else if (typeof listenText === 'string' && !listen) {
    problems.push(`listen: expected host:port, [v6]:port or :port, got ${JSON.stringify(listenText)}`);
  }
  const adminText = raw['admin'];
  const admin = typeof adminText === 'string' ? parseListen(adminText) : undefined;
  if (typeof adminText === 'string' && !admin)
    problems.push(`admin: expected host:port, got ${JSON.stringify(adminText)}`);
  if (raw['policy'] === 'consistent-hash' && !raw['hashHeader']) {
    problems.push('hashHeader: required with the consistent-hash policy');
  }
  const rawBackends = raw['backends'];
  if (rawBackends === undefined || (Array.isArray(rawBackends) && rawBackends.length === 0)) {
    problems.push('backends: at least one (--backend or backends:)');
  }
  const seen = new Set<string>();
  (Array.isArray(rawBackends) ? rawBackends : []).forEach((b: unknown, i) => {
    const url = typeof b === 'string' ? b : (b as { url?: unknown } | null)?.url;
    if (typeof url !== 'string') return;
    try {
      const origin = backendOrigin({ url });
      if (seen.has(origin)) problems.push(`backends[${i}]: ${origin} is listed twice`);
      seen.add(origin);
    } catch (err) {
      problems.push(`backends[${i}]: ${(err as Error).message}`);
    }
  });
  const trusted = raw['trustedProxies'];
  (Array.isArray(trusted) ? trusted : []).forEach((entry: unknown, i) => {
    if (typeof entry !== 'string') return;
    try {
      new TrustedProxies([entry]);
    } catch (err) {
      problems.push(`trustedProxies[${i}]: ${(err as Error).message}`);
    }
  });
  if (!parsed.success) throw configError(where, problems);
  const c = parsed.data;
  const backends = (c.backends ?? []).map((b) => (typeof b === 'string' ? { url: b } : b));
  if (
    c.outlier?.baseEjection !== undefined &&
    c.outlier.maxEjection !== undefined &&
    c.outlier.baseEjection > c.outlier.maxEjection
  ) {
    problems.push('outlier.baseEjection: longer than outlier.maxEjection');
  }
  let tls: LbConfig['tls'];
  if (c.tls) {
    const read = options.readFile ?? ((path: string) => readFileSync(path, 'utf8'));
    const pems: string[] = [];
    for (const key of ['cert', 'key'] as const) {
      try {
        pems.push(read(c.tls[key]));
      } catch (err) {
        problems.push(`tls.${key}: cannot read ${c.tls[key]}: ${(err as Error).message}`);
      }
    }
    if (pems.length === 2) tls = { certPem: pems[0]!, keyPem: pems[1]! };
  }
  if (problems.length > 0) throw configError(where, problems);
  const h = c.healthCheck ?? {};
  const o = c.outlier ?? {};
  const t = c.timeouts ?? {};
  const settings: LoadBalancerSettings = {
    backends,
    ...(c.policy !== undefined ? { policy: c.policy } : {}),
    ...(c.hashHeader !== undefined ? { hashHeader: c.hashHeader } : {}),
    healthCheck: {
      ...(h.enabled !== undefined ? { enabled: h.enabled } : {}),
      ...(h.path !== undefined ? { path: h.path } : {}),
      ...(h.host !== undefined ? { host: h.host } : {}),
      ...(h.interval !== undefined ? { intervalMs: h.interval } : {}),
      ...(h.timeout !== undefined ? { timeoutMs: h.timeout } : {}),
      ...(h.rise !== undefined ? { rise: h.rise } : {}),
      ...(h.fall !== undefined ? { fall: h.fall } : {}),
    },
    outlier: {
      ...(o.enabled !== undefined ? { enabled: o.enabled } : {}),
      ...(o.consecutive5xx !== undefined ? { consecutive5xx: o.consecutive5xx } : {}),
      ...(o.consecutiveGatewayErrors !== undefined
        ? { consecutiveGatewayErrors: o.consecutiveGatewayErrors }
        : {}),
      ...(o.baseEjection !== undefined ? { baseEjectionMs: o.baseEjection } : {}),
      ...(o.maxEjection !== undefined ? { maxEjectionMs: o.maxEjection } : {}),
      ...(o.maxEjectionPercent !== undefined ? { maxEjectionPercent: o.maxEjectionPercent } : {}),
    },
    ...(c.retry !== undefined ? { retry: c.retry } : {}),
    timeouts: {
      ...(t.connect !== undefined ? { connectMs: t.connect } : {}),
      ...(t.headers !== undefined ? { headersMs: t.headers } : {}),
      ...(t.idle !== undefined ? { idleMs: t.idle } : {}),
    },
    ...(c.trustedProxies !== undefined ? { trustedProxies: c.trustedProxies } : {}),
  };
  return { listen: listen!, ...(admin ? { admin } : {}), ...(tls ? { tls } : {}), settings };
}
