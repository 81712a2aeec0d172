// Load balancer throughput (issue 12): requests/s and p50/p99 latency through each proxy at fixed
// concurrency (wrk, 32 connections, one thread), side by side in one run, each proxy round-robining over
// the same two Node backends: `capstan lb` with health checks, outlier ejection and retries on (its
// defaults), a bare undici Pool proxy (the floor of a Node proxy), Go's httputil.ReverseProxy
// (bench/peers/go_reverse_proxy), @fastify/reply-from on fastify and http-proxy (the Node.js peers,
// bench/lb-fastify.ts and bench/lb-http-proxy.ts), nginx and HAProxy from Debian (the ceiling references,
// left out and named when not installed); the backend direct shows what the machine gives without a hop. Rounds alternate the order, so drift on this shared
// machine hits every subject.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Benchmark, type BenchResult, buildGoPeer } from './harness.ts';

const here = dirname(fileURLToPath(import.meta.url));
const cli = join(here, '..', 'src', 'cli', 'main.ts');

type Subject =
  | 'capstan'
  | 'capstan-2-workers'
  | 'undici-bare'
  | 'fastify-reply-from'
  | 'http-proxy'
  | 'go-reverseproxy'
  | 'nginx'
  | 'haproxy'
  | 'direct';

function has(program: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${program}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

async function waitPort(port: number, child: ChildProcess | undefined, name: string): Promise<void> {
  const { canConnect } = await import('../src/runtime/index.ts');
  const end = Date.now() + 30_000;
  while (!(await canConnect(port, '127.0.0.1'))) {
    if (child && child.exitCode !== null)
      throw new Error(`${name} exited ${child.exitCode} before listening`);
    if (Date.now() > end) throw new Error(`${name} did not listen on ${port}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function startProcess(command: string, args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
  const child = spawn(command, args, {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, ...env },
  });
  child.stderr!.on('data', () => {});
  return child;
}

async function stop(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null) return;
  child.kill('SIGKILL');
  await once(child, 'exit');
}

/** wrk's requests/s and latency percentiles (ms) from its `--latency` output. */
function wrk(url: string, seconds: number): { rps: number; p50: number; p99: number; errors: number } {
  const out = execFileSync('wrk', ['-t1', '-c32', `-d${seconds}s`, '--latency', url], { encoding: 'utf8' });
  const ms = (label: string) => {
    const m = new RegExp(`${label}\\s+([\\d.]+)(us|ms|s)`).exec(out);
    if (!m) return Number.NaN;
    return Number(m[1]) * (m[2] === 'us' ? 0.001 : m[2] === 's' ? 1000 : 1);
  };
  const errors =
    Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0) +
    (/Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/
      .exec(out)
      ?.slice(1)
      .reduce((a, b) => a + Number(b), 0) ?? 0);
  return { rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]), p50: ms('50%'), p99: ms('99%'), errors };
}

const bench: Benchmark = {
  name: 'lb',
  description:
    'load balancer requests/s and p50/p99 at 32 connections (wrk): capstan lb (checks, ejection, retries on) vs a bare undici proxy, @fastify/reply-from, http-proxy, Go httputil.ReverseProxy, nginx, HAProxy',
  async run({ quick, log }) {
    if (!has('wrk')) throw new Error('wrk is not installed (apt-get install wrk)');
    const { freePort } = await import('../src/runtime/index.ts');
    const goBin = buildGoPeer(join(here, 'peers', 'go_reverse_proxy'), log);
    const seconds = quick ? 3 : 10;
    const rounds = quick ? 1 : 3;
    const missing = ['nginx', 'haproxy'].filter((p) => !has(p));
    const subjects: Subject[] = [
      'direct',
      'capstan',
      'capstan-2-workers',
      'undici-bare',
      'fastify-reply-from',
      'http-proxy',
      'go-reverseproxy',
      ...(has('nginx') ? (['nginx'] as const) : []),
      ...(has('haproxy') ? (['haproxy'] as const) : []),
    ];
    const ports = [await freePort(), await freePort()];
    const backendsUrls = ports.map((p) => `http://127.0.0.1:${p}`);
    const backends = ports.map((p) =>
      startProcess(process.execPath, [join(here, 'lb-backend.ts'), String(p)]),
    );
    const dir = mkdtempSync(join(tmpdir(), 'capstan-lb-bench-'));
    const samples = new Map<Subject, Array<{ rps: number; p50: number; p99: number }>>(
      subjects.map((s) => [s, []]),
    );
    try {
      for (const [i, p] of ports.entries()) await waitPort(p, backends[i], 'backend');
      for (let round = 0; round < rounds; round++) {
        const order = round % 2 === 0 ? subjects : [...subjects].reverse();
        for (const subject of order) {
          const port = await freePort();
          let child: ChildProcess | undefined;
          let target = `http://127.0.0.1:${port}/`;
          switch (subject) {
            case 'direct':
              target = `${backendsUrls[0]}/`;
              break;
            case 'capstan':
              child = startProcess(
                process.execPath,
                [
                  '--conditions=capstan-source',
                  cli,
                  'lb',
                  '--listen',
                  `127.0.0.1:${port}`,
                  ...backendsUrls.flatMap((b) => ['--backend', b]),
                ],
                { LOG_LEVEL: 'warn' },
              );
              break;
            case 'capstan-2-workers':
              child = startProcess(
                process.execPath,
                [
                  '--conditions=capstan-source',
                  join(here, 'lb-cluster.ts'),
                  'lb',
                  '--listen',
                  `127.0.0.1:${port}`,
                  ...backendsUrls.flatMap((b) => ['--backend', b]),
                ],
                { LOG_LEVEL: 'warn' },
              );
              break;
            case 'undici-bare':
              child = startProcess(process.execPath, [
                join(here, 'lb-bare-undici.ts'),
                String(port),
                ...backendsUrls,
              ]);
              break;
            case 'fastify-reply-from':
            case 'http-proxy':
              child = startProcess(process.execPath, [
                join(here, subject === 'http-proxy' ? 'lb-http-proxy.ts' : 'lb-fastify.ts'),
                String(port),
                ...backendsUrls,
              ]);
              break;
            case 'haproxy': {
              // HAProxy's own defaults plus keep-alive to the backends (http-reuse safe is its default).
              const cfg = join(dir, `haproxy-${round}.cfg`);
              writeFileSync(
                cfg,
                `global\n  maxconn 4096\ndefaults\n  mode http\n  timeout connect 5s\n  timeout client 30s\n  timeout server 30s\n  option http-keep-alive\nfrontend fe\n  bind 127.0.0.1:${port}\n  default_backend be\nbackend be\n  balance roundrobin\n${ports.map((p, i) => `  server b${i} 127.0.0.1:${p}\n`).join('')}`,
              );
              child = startProcess('haproxy', ['-db', '-f', cfg]);
              break;
            }
            case 'go-reverseproxy':
              child = startProcess(goBin, [`127.0.0.1:${port}`, ...backendsUrls]);
              break;
            case 'nginx': {
              const prefix = join(dir, `nginx-${round}`);
              execFileSync('mkdir', ['-p', prefix]);
              writeFileSync(
                join(prefix, 'nginx.conf'),
                `worker_processes auto;\npid ${prefix}/nginx.pid;\nerror_log ${prefix}/error.log;\ndaemon off;\nevents { worker_connections 1024; }\nhttp {\n  access_log off;\n  client_body_temp_path ${prefix}/body; proxy_temp_path ${prefix}/proxy; fastcgi_temp_path ${prefix}/fcgi; uwsgi_temp_path ${prefix}/uwsgi; scgi_temp_path ${prefix}/scgi;\n  upstream backends { ${ports.map((p) => `server 127.0.0.1:${p};`).join(' ')} keepalive 64; }\n  server { listen 127.0.0.1:${port}; location / { proxy_pass http://backends; proxy_http_version 1.1; proxy_set_header Connection ""; } }\n}\n`,
              );
              child = startProcess('nginx', [
                '-p',
                prefix,
                '-c',
                join(prefix, 'nginx.conf'),
                '-e',
                join(prefix, 'error.log'),
              ]);
              break;
            }
          }
          try {
            if (subject !== 'direct') await waitPort(port, child, subject);
            wrk(target, 1); // warm-up: connections, JIT
            const r = wrk(target, seconds);
            if (r.errors > 0) throw new Error(`${subject}: ${r.errors} failed requests`);
            samples.get(subject)!.push(r);
            log(`${subject} round ${round + 1}: ${r.rps.toFixed(0)} req/s, p50 ${r.p50} ms, p99 ${r.p99} ms`);
          } finally {
            await stop(child);
          }
        }
      }
    } finally {
      for (const b of backends) await stop(b);
      rmSync(dir, { recursive: true, force: true });
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const results: BenchResult[] = [];
    const notes = `wrk -t1 -c32 -d${seconds}s × ${rounds} rounds (median), two Node backends round robin; capstan and the Node proxies (bare undici, @fastify/reply-from, http-proxy) one process each, Go, nginx and HAProxy with their defaults (all cores)${missing.length ? `; not run (not installed): ${missing.join(', ')}` : ''}`;
    for (const subject of subjects) {
      const s = samples.get(subject)!;
      const rps = median(s.map((x) => x.rps));
      results.push(
        { subject, metric: 'requests_per_second', unit: 'req/s', value: rps, samples: s.length, notes },
        { subject, metric: 'latency_p50', unit: 'ms', value: median(s.map((x) => x.p50)) },
        { subject, metric: 'latency_p99', unit: 'ms', value: median(s.map((x) => x.p99)) },
      );
    }
    return results;
  },
  ratios: [
    {
      label: 'lb requests/s: capstan / Go httputil.ReverseProxy',
      numerator: { subject: 'capstan', metric: 'requests_per_second' },
      denominator: { subject: 'go-reverseproxy', metric: 'requests_per_second' },
      goal: { op: '>=', value: 1, why: 'issue 12' },
    },
    {
      label: 'lb requests/s: capstan / @fastify/reply-from',
      numerator: { subject: 'capstan', metric: 'requests_per_second' },
      denominator: { subject: 'fastify-reply-from', metric: 'requests_per_second' },
      goal: { op: '>=', value: 1.3, why: 'issue 12: 1.3× the fastest Node.js peer, reply-from here' },
    },
    {
      label: 'lb requests/s: capstan / http-proxy',
      numerator: { subject: 'capstan', metric: 'requests_per_second' },
      denominator: { subject: 'http-proxy', metric: 'requests_per_second' },
    },
    {
      label: 'lb requests/s: capstan / HAProxy (ceiling reference)',
      numerator: { subject: 'capstan', metric: 'requests_per_second' },
      denominator: { subject: 'haproxy', metric: 'requests_per_second' },
    },
    {
      label: 'lb requests/s: capstan in 2 node:cluster workers / one process',
      numerator: { subject: 'capstan-2-workers', metric: 'requests_per_second' },
      denominator: { subject: 'capstan', metric: 'requests_per_second' },
    },
    {
      label: 'lb requests/s: capstan / bare undici proxy',
      numerator: { subject: 'capstan', metric: 'requests_per_second' },
      denominator: { subject: 'undici-bare', metric: 'requests_per_second' },
    },
    {
      label: 'lb p99: capstan / Go httputil.ReverseProxy',
      numerator: { subject: 'capstan', metric: 'latency_p99' },
      denominator: { subject: 'go-reverseproxy', metric: 'latency_p99' },
      goal: { op: '<=', value: 1, why: 'issue 12' },
    },
  ],
};

export default bench;
