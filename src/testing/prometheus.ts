import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { ensurePeers, PeerError, type PeerProcess, startPeerProcess } from '../peers/index.ts';
import { createHttpTransport, freePort, httpRequest, makeProcessDir } from '../runtime/index.ts';

// Like fetch before it: one pooled client for every instance, no transparent retries (the callers poll).
const http = createHttpTransport({ retry: false });

/** One scrape job of {@link startPrometheus}. */
export interface ScrapeTarget {
  /** `job_name`, and the `job` label of every series scraped. */
  job: string;
  /** `host:port` addresses, e.g. `['127.0.0.1:9464']`. */
  targets: string[];
  /** Default `/metrics`. */
  metricsPath?: string;
  /** Default: the global interval ({@link StartPrometheusOptions.scrapeIntervalMs}). */
  scrapeIntervalMs?: number;
}

/** Options of {@link startPrometheus}. */
export interface StartPrometheusOptions {
  scrapeTargets?: ScrapeTarget[];
  /** Global scrape and rule evaluation interval. Default 1000 ms (tests want fresh data fast). */
  scrapeIntervalMs?: number;
  /**
   * A complete prometheus.yml to use instead of the generated one (recording rules, relabelling...).
   * `scrapeTargets` is ignored when given.
   */
  rawConfig?: string;
  /** How long startup may take. Default 60 s. */
  readyTimeoutMs?: number;
  signal?: AbortSignal;
}

/** One element of an instant query result. */
export interface PromSample {
  /** Series labels, including `__name__` when the result keeps it. */
  labels: Record<string, string>;
  value: number;
  /** Evaluation time, in seconds since the epoch. */
  timestamp: number;
}

/** Options of {@link PrometheusPeer.waitFor}. */
export interface WaitForOptions {
  /** Default 30 s. */
  timeoutMs?: number;
  /** Poll interval. Default 250 ms. */
  intervalMs?: number;
  signal?: AbortSignal;
}

/** One scrape target as Prometheus sees it (`/api/v1/targets`). */
export interface TargetHealth {
  job: string;
  instance: string;
  health: 'up' | 'down' | 'unknown';
  /** Why the last scrape failed; empty when it worked. */
  lastError: string;
}

/** A running throwaway Prometheus server. */
export interface PrometheusPeer {
  /** `http://127.0.0.1:port` */
  readonly url: string;
  readonly port: number;
  readonly dir: string;
  /** Instant query (`/api/v1/query`): vectors as samples, a scalar as one label-less sample. */
  query(promql: string, options?: { signal?: AbortSignal }): Promise<PromSample[]>;
  /** Poll `promql` until `predicate` holds; resolves with that result, rejects with the last one on timeout. */
  waitFor(
    promql: string,
    predicate: (samples: PromSample[]) => boolean,
    options?: WaitForOptions,
  ): Promise<PromSample[]>;
  /** Active scrape targets and their health, to see why a scrape fails. */
  targets(options?: { signal?: AbortSignal }): Promise<TargetHealth[]>;
  /** Replace the scrape jobs and hot-reload the config (`POST /-/reload`). */
  reloadTargets(scrapeTargets: ScrapeTarget[], options?: { signal?: AbortSignal }): Promise<void>;
  logTail(lines?: number): string;
  /** Stops the server and removes its temp dir. Idempotent. */
  stop(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

function prometheusBinary(): string {
  const override = process.env.CAPSTAN_PROMETHEUS_BIN;
  if (override) return override;
  for (const dir of ['/usr/bin', '/usr/local/bin', ...(process.env.PATH ?? '').split(':')]) {
    if (dir && existsSync(join(dir, 'prometheus'))) return join(dir, 'prometheus');
  }
  throw new PeerError('CAP_ERR_PEER_NOT_FOUND', 'prometheus binary not found (apt package "prometheus")');
}

const seconds = (ms: number) => `${Math.max(1, Math.round(ms))}ms`;

function checkTargets(targets: ScrapeTarget[]): void {
  const seen = new Set<string>();
  for (const t of targets) {
    if (typeof t.job !== 'string' || t.job === '') {
      throw new PeerError('CAP_ERR_PEER_CONFIG', 'every scrape target needs a non-empty job name');
    }
    if (seen.has(t.job)) throw new PeerError('CAP_ERR_PEER_CONFIG', `duplicate scrape job "${t.job}"`);
    seen.add(t.job);
    if (
      !Array.isArray(t.targets) ||
      t.targets.some((a) => typeof a !== 'string' || !/^[^/\s]+:\d+$/.test(a))
    ) {
      throw new PeerError('CAP_ERR_PEER_CONFIG', `job "${t.job}": targets must be host:port strings`);
    }
    if (t.scrapeIntervalMs !== undefined && !(t.scrapeIntervalMs > 0)) {
      throw new PeerError('CAP_ERR_PEER_CONFIG', `job "${t.job}": scrapeIntervalMs must be > 0`);
    }
  }
}

/** Render prometheus.yml. Timeouts equal the interval: Prometheus rejects a timeout above it. */
function renderConfig(targets: ScrapeTarget[], intervalMs: number): string {
  return stringify({
    global: {
      scrape_interval: seconds(intervalMs),
      scrape_timeout: seconds(intervalMs),
      evaluation_interval: seconds(intervalMs),
    },
    scrape_configs: targets.map((t) => ({
      job_name: t.job,
      metrics_path: t.metricsPath ?? '/metrics',
      ...(t.scrapeIntervalMs
        ? { scrape_interval: seconds(t.scrapeIntervalMs), scrape_timeout: seconds(t.scrapeIntervalMs) }
        : {}),
      static_configs: [{ targets: t.targets }],
    })),
  });
}

interface ApiResponse {
  status: 'success' | 'error';
  data?: { resultType: 'vector' | 'scalar' | 'matrix' | 'string'; result: unknown };
  errorType?: string;
  error?: string;
}

/**
 * Start a private Prometheus (Debian's 2.42 by default) that scrapes the given targets, with its TSDB
 * in a temp dir and the web API on a free loopback port. Installs the peer first if needed
 * (`ensurePeers(['prometheus'])`). If it fails to start, the PeerError carries Prometheus's own log.
 */
export async function startPrometheus(options: StartPrometheusOptions = {}): Promise<PrometheusPeer> {
  const intervalMs = options.scrapeIntervalMs ?? 1000;
  if (!(intervalMs > 0)) throw new PeerError('CAP_ERR_PEER_CONFIG', 'scrapeIntervalMs must be > 0');
  const targets = options.scrapeTargets ?? [];
  if (options.rawConfig === undefined) checkTargets(targets);
  options.signal?.throwIfAborted();
  ensurePeers(['prometheus']);
  const binary = prometheusBinary();

  // Port-then-bind races with other processes; one retry covers a port taken in between.
  let lastError: unknown;
  for (let attempt = 0; attempt < 2; attempt++) {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const dir = makeProcessDir('prometheus');
    const configPath = join(dir, 'prometheus.yml');
    writeFileSync(configPath, options.rawConfig ?? renderConfig(targets, intervalMs));
    let peer: PeerProcess;
    try {
      peer = await startPeerProcess({
        name: 'prometheus',
        command: binary,
        dir,
        args: [
          `--config.file=${configPath}`,
          `--storage.tsdb.path=${join(dir, 'data')}`,
          `--web.listen-address=127.0.0.1:${port}`,
          '--web.enable-lifecycle',
          '--log.level=info',
        ],
        readyTimeoutMs: options.readyTimeoutMs ?? 60_000,
        ready: async () => {
          const res = await httpRequest(http, {
            origin: url,
            path: '/-/ready',
            timeouts: { deadlineMs: 2000 },
          });
          await res.body.dump();
          return res.status === 200;
        },
      });
    } catch (err) {
      lastError = err;
      if (err instanceof PeerError && /address already in use/.test(err.logTail)) continue;
      throw err;
    }
    return makePeer(peer, url, port, configPath, intervalMs);
  }
  throw lastError;
}

function makePeer(
  peer: PeerProcess,
  url: string,
  port: number,
  configPath: string,
  intervalMs: number,
): PrometheusPeer {
  const query = async (promql: string, opts: { signal?: AbortSignal } = {}): Promise<PromSample[]> => {
    const res = await httpRequest(http, {
      origin: url,
      method: 'POST',
      path: '/api/v1/query',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ query: promql }).toString(),
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    const body = (await res.body.json()) as ApiResponse;
    if (body.status !== 'success' || !body.data) {
      throw new PeerError(
        'CAP_ERR_PEER_PROMETHEUS_QUERY',
        `query ${JSON.stringify(promql)} failed (HTTP ${res.status}, ${body.errorType}): ${body.error}`,
      );
    }
    const { resultType, result } = body.data;
    if (resultType === 'scalar') {
      const [ts, v] = result as [number, string];
      return [{ labels: {}, value: Number(v), timestamp: ts }];
    }
    if (resultType !== 'vector') {
      throw new PeerError(
        'CAP_ERR_PEER_PROMETHEUS_QUERY',
        `query ${JSON.stringify(promql)} gave a ${resultType}`,
      );
    }
    return (result as Array<{ metric: Record<string, string>; value: [number, string] }>).map((s) => ({
      labels: s.metric,
      value: Number(s.value[1]),
      timestamp: s.value[0],
    }));
  };

  const waitFor = async (
    promql: string,
    predicate: (samples: PromSample[]) => boolean,
    opts: WaitForOptions = {},
  ): Promise<PromSample[]> => {
    const timeoutMs = opts.timeoutMs ?? 30_000;
    const deadline = Date.now() + timeoutMs;
    let last: PromSample[] | undefined;
    let lastError: unknown;
    while (true) {
      opts.signal?.throwIfAborted();
      try {
        last = await query(promql, { signal: opts.signal });
        if (predicate(last)) return last;
        lastError = undefined;
      } catch (err) {
        // A bad query never gets better: fail at once rather than at the deadline.
        if (err instanceof PeerError && /bad_data/.test(err.message)) throw err;
        if (opts.signal?.aborted) throw err;
        lastError = err;
      }
      if (Date.now() >= deadline) break;
      await new Promise((resolve) => setTimeout(resolve, opts.intervalMs ?? 250));
    }
    // The scrape targets' health usually says why (connection refused, bad exposition...).
    const health = await targets().catch(() => []);
    throw new PeerError(
      'CAP_ERR_PEER_PROMETHEUS_TIMEOUT',
      `${JSON.stringify(promql)} did not satisfy the predicate within ${timeoutMs} ms; last result: ` +
        (last ? JSON.stringify(last) : 'none') +
        `; targets: ${JSON.stringify(health)}`,
      '',
      { cause: lastError },
    );
  };

  const targets = async (opts: { signal?: AbortSignal } = {}): Promise<TargetHealth[]> => {
    const res = await httpRequest(http, {
      origin: url,
      path: '/api/v1/targets?state=active',
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    const body = (await res.body.json()) as {
      data?: {
        activeTargets?: Array<{
          labels: Record<string, string>;
          scrapePool: string;
          health: TargetHealth['health'];
          lastError: string;
        }>;
      };
    };
    return (body.data?.activeTargets ?? []).map((t) => ({
      job: t.labels.job ?? t.scrapePool,
      instance: t.labels.instance ?? '',
      health: t.health,
      lastError: t.lastError,
    }));
  };

  const reloadTargets = async (scrapeTargets: ScrapeTarget[], opts: { signal?: AbortSignal } = {}) => {
    checkTargets(scrapeTargets);
    writeFileSync(configPath, renderConfig(scrapeTargets, intervalMs));
    const res = await httpRequest(http, {
      origin: url,
      method: 'POST',
      path: '/-/reload',
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    const text = await res.body.text();
    if (res.status !== 200) {
      throw new PeerError(
        'CAP_ERR_PEER_PROMETHEUS_RELOAD',
        `reload failed (HTTP ${res.status}): ${text}`,
        peer.logTail(),
      );
    }
  };

  return {
    url,
    port,
    dir: peer.dir,
    query,
    waitFor,
    targets,
    reloadTargets,
    logTail: (lines) => peer.logTail(lines),
    stop: () => peer.stop(),
    [Symbol.asyncDispose]: () => peer.stop(),
  };
}
