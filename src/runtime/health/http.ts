import type { CheckState, HealthReport, HealthSource, ProbeKind } from './types.ts';

/** The part of an http/http2 request the health handler reads. */
export interface HealthRequest {
  readonly url?: string | undefined;
  readonly method?: string | undefined;
}

/** The part of an http/http2 (compat) response the health handler writes. */
export interface HealthResponse {
  writeHead(statusCode: number, headers: Record<string, string>): unknown;
  end(chunk: string): unknown;
}

const PATH = /^\/(livez|readyz|healthz)(?:\/([^/]+))?\/?$/;

const PROBE: Record<string, ProbeKind> = { livez: 'liveness', readyz: 'readiness', healthz: 'readiness' };

function send(res: HealthResponse, head: boolean, status: number, type: 'json' | 'text', body: string): void {
  const headers: Record<string, string> = {
    'content-type': type === 'json' ? 'application/json; charset=utf-8' : 'text/plain; charset=utf-8',
    // A cached "ok" from a proxy would hide an outage from the kubelet or the load balancer.
    'cache-control': 'no-store',
    'content-length': String(Buffer.byteLength(body)),
  };
  res.writeHead(status, headers);
  // Node drops a HEAD response's body itself; '' keeps one end() signature for http and http2.
  res.end(head ? '' : body);
}

function publicState(state: CheckState, withhold: boolean): CheckState {
  if (!withhold || state.lastError === null) return state;
  return { ...state, lastError: 'reason withheld' };
}

/** One kube-apiserver style line: `[+]name ok` or `[-]name failed: reason`. */
function line(state: CheckState, withhold: boolean): string {
  if (state.status === 'ok') return `[+]${state.name} ok`;
  const why =
    state.status === 'pending'
      ? 'pending (no result yet)'
      : withhold
        ? 'reason withheld'
        : (state.lastError ?? 'unknown');
  return `[-]${state.name} failed${state.critical ? '' : ' (non-critical)'}: ${why.replace(/\s*\n\s*/g, ' ')}`;
}

function verboseText(endpoint: string, report: HealthReport, withhold: boolean): string {
  const lines: string[] = [];
  if (report.probe === 'readiness') {
    // kube-apiserver shows shutdown as a check of its own; the phase plays that part here.
    lines.push(report.phase === 'serving' ? '[+]phase ok' : `[-]phase failed: ${report.phase}`);
  }
  for (const c of report.checks) lines.push(line(c, withhold));
  for (const name of report.unknownExcludes ?? []) {
    lines.push(`warn: some health checks cannot be excluded: no matches for "${name}"`);
  }
  const passed = report.httpStatus === 200;
  lines.push(
    `${endpoint} check ${passed ? 'passed' : 'failed'}${report.status === 'degraded' ? ' (degraded)' : ''}`,
  );
  return `${lines.join('\n')}\n`;
}

/** Serve one health request for `health`; false when the path is not a health endpoint. */
export function handleHealthRequest(health: HealthSource, req: HealthRequest, res: HealthResponse): boolean {
  const raw = req.url ?? '/';
  const q = raw.indexOf('?');
  let path = q === -1 ? raw : raw.slice(0, q);
  if (health.basePath) {
    if (!path.startsWith(`${health.basePath}/`)) return false;
    path = path.slice(health.basePath.length);
  }
  const match = PATH.exec(path);
  if (!match) return false;
  const endpoint = match[1]!;
  const probe = PROBE[endpoint]!;
  const head = req.method === 'HEAD';
  if (req.method !== undefined && req.method !== 'GET' && !head) {
    const body = 'method not allowed\n';
    res.writeHead(405, {
      allow: 'GET, HEAD',
      'content-type': 'text/plain; charset=utf-8',
      'content-length': String(body.length),
    });
    res.end(body);
    return true;
  }
  const params = new URLSearchParams(q === -1 ? '' : raw.slice(q + 1));
  const verbose = params.has('verbose');
  // Reasons are withheld unless the service opted in: a check's error may quote a secret.
  const withhold = !health.exposeCheckErrors;

  if (match[2] !== undefined) {
    let name: string;
    try {
      name = decodeURIComponent(match[2]);
    } catch {
      send(res, head, 400, 'text', 'bad check name\n');
      return true;
    }
    const state = health.check(name);
    const belongs =
      state !== undefined &&
      (state.kind === 'both' || state.kind === probe || (name === 'eventloop' && probe === 'liveness'));
    if (!state || !belongs) {
      send(res, head, 404, 'text', `no ${endpoint} check named "${name}"\n`);
      return true;
    }
    const status = state.status === 'ok' ? 200 : 503;
    if (verbose) send(res, head, status, 'text', `${line(state, withhold)}\n`);
    else send(res, head, status, 'json', JSON.stringify(publicState(state, withhold)));
    return true;
  }

  const exclude = params
    .getAll('exclude')
    .flatMap((v) => v.split(','))
    .map((v) => v.trim())
    .filter((v) => v.length > 0);
  const report = health.status(probe, { exclude });
  if (verbose) {
    send(res, head, report.httpStatus, 'text', verboseText(endpoint, report, withhold));
  } else {
    const body = withhold ? { ...report, checks: report.checks.map((c) => publicState(c, true)) } : report;
    send(res, head, report.httpStatus, 'json', JSON.stringify(body));
  }
  return true;
}
