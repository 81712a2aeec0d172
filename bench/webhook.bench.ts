// Admission webhook latency over TLS at a fixed rate (issue 11): examples/webhook/pod-policy.ts served by
// capstan/webhook, and the same policy on controller-runtime's webhook server (bench/peers/
// webhook_controller_runtime), each in its own process, from the same certificate files. The load
// generator is this process: an undici Pool of keep-alive TLS connections sending AdmissionReviews at a
// fixed rate, half to the validating path (a plain pod, allowed) and half to the mutating one (a pod asking
// for the sidecar: labelled and injected, a JSON Patch back). Latency is measured from the time a request
// was due, not sent, so a server that falls behind is charged for the queue it causes (no coordinated
// omission). Rounds alternate the subjects, so drift on this shared machine hits both.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';
import { createTestCertificates } from '../src/testing/index.ts';
import { type Benchmark, type BenchResult, buildGoPeer, goModuleVersion, summarize } from './harness.ts';

const here = dirname(fileURLToPath(import.meta.url));
const goDir = join(here, 'peers', 'webhook_controller_runtime');
const capstanServer = join(here, 'webhook-server.ts');

type Subject = 'capstan' | 'controller-runtime';

export function review(uid: string, mutate: boolean): string {
  return JSON.stringify({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid,
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      requestKind: { group: '', version: 'v1', kind: 'Pod' },
      requestResource: { group: '', version: 'v1', resource: 'pods' },
      name: 'web',
      namespace: 'apps',
      operation: 'CREATE',
      userInfo: { username: 'system:serviceaccount:apps:deployer', groups: ['system:authenticated'] },
      object: {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: {
          name: 'web',
          namespace: 'apps',
          labels: { app: 'web', ...(mutate && { 'sidecar.capstan.dev/inject': 'true' }) },
          annotations: { 'kubectl.kubernetes.io/default-container': 'app' },
        },
        spec: {
          containers: [
            {
              name: 'app',
              image: 'registry.example.com/web:1.4.2',
              ports: [{ containerPort: 8080, protocol: 'TCP' }],
              env: [{ name: 'MODE', value: 'production' }],
              resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '256Mi' } },
              securityContext: { runAsUser: 1000, allowPrivilegeEscalation: false },
            },
          ],
          restartPolicy: 'Always',
          serviceAccountName: 'web',
        },
      },
      oldObject: null,
      dryRun: false,
      options: { apiVersion: 'meta.k8s.io/v1', kind: 'CreateOptions' },
    },
  });
}

/** What the Capstan server saw during a round (bench/webhook-server.ts, on SIGUSR2). */
interface LoopStats {
  delayMs: { p50: number; p99: number; max: number };
  gc: { count: number; totalMs: number; maxMs: number };
  heapMb: number;
}

/** A running subject; `loop()` asks the Capstan server for its event-loop delay and GC since the last ask. */
interface Running {
  child: ChildProcess;
  loop(): Promise<LoopStats | undefined>;
}

/** Start a subject's server; resolves once it serves. */
async function startSubject(
  subject: Subject,
  port: number,
  certDir: string,
  goBin: string,
): Promise<Running> {
  const child =
    subject === 'capstan'
      ? spawn(process.execPath, ['--conditions=capstan-source', capstanServer, String(port), certDir], {
          stdio: ['ignore', 'pipe', 'pipe'],
        })
      : spawn(goBin, ['--port', String(port), '--cert-dir', certDir], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (c: string) => {
    stderr += c;
  });
  const waiting: Array<(stats: LoopStats) => void> = [];
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout!.setEncoding('utf8').on('data', (c: string) => {
      out += c;
      if (out.includes('listening')) resolve();
      let nl = out.indexOf('\n');
      while (nl !== -1) {
        const line = out.slice(0, nl);
        out = out.slice(nl + 1);
        if (line.includes('"msg":"loop"')) waiting.shift()?.(JSON.parse(line) as LoopStats);
        nl = out.indexOf('\n');
      }
    });
    child.once('exit', (code) => reject(new Error(`${subject} exited ${code} before listening: ${stderr}`)));
  });
  return {
    child,
    loop: async () => {
      if (subject !== 'capstan') return undefined;
      const stats = new Promise<LoopStats>((resolve) => waiting.push(resolve));
      child.kill('SIGUSR2');
      return stats;
    },
  };
}

async function stopSubject(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  child.kill('SIGTERM');
  await once(child, 'exit');
}

/** Peak RSS of a process, MiB, from /proc (while it runs). */
function peakRssOf(pid: number): number {
  const kb = Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? Number.NaN);
  return kb / 1024;
}

/** CPU time (user + system) a process has used, ms, from /proc (clock ticks of 10 ms). */
function cpuMsOf(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

interface RoundResult {
  latenciesMs: number[];
  errors: number;
  sent: number;
}

/** Send `rate` reviews a second for `seconds`, each timed from when it was due. */
export async function drive(
  url: string,
  ca: string,
  rate: number,
  seconds: number,
  tag: string,
): Promise<RoundResult> {
  const pool = new Pool(url, { connections: 8, pipelining: 1, connect: { ca } });
  const bodies = [review(`${tag}-v`, false), review(`${tag}-m`, true)];
  const latenciesMs: number[] = [];
  let errors = 0;
  const total = rate * seconds;
  const intervalMs = 1000 / rate;
  const inFlight: Promise<void>[] = [];
  const start = performance.now();
  let next = 0;
  const sendOne = async (i: number, due: number) => {
    const mutate = i % 2 === 1;
    try {
      const res = await pool.request({
        method: 'POST',
        path: mutate ? '/mutate--v1-pod?timeout=10s' : '/validate--v1-pod?timeout=10s',
        headers: { 'content-type': 'application/json' },
        body: bodies[i % 2]!,
      });
      const answer = (await res.body.json()) as { response?: { allowed?: boolean; patch?: string } };
      if (res.statusCode !== 200 || answer.response?.allowed !== true || (mutate && !answer.response.patch))
        errors++;
    } catch {
      errors++;
    }
    latenciesMs.push(performance.now() - due);
  };
  while (next < total) {
    const now = performance.now();
    while (next < total && start + next * intervalMs <= now) {
      inFlight.push(sendOne(next, start + next * intervalMs));
      next++;
    }
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  await Promise.all(inFlight);
  await pool.close();
  return { latenciesMs, errors, sent: total };
}

const bench: Benchmark = {
  name: 'webhook',
  description:
    'admission webhook latency over TLS at a fixed rate: capstan/webhook vs controller-runtime (pod policy, validate + mutate)',
  async run({ quick, log }) {
    const goBin = buildGoPeer(goDir, log);
    const crVersion = goModuleVersion(goDir, 'sigs.k8s.io/controller-runtime');
    // 200/s: well above what one cluster's admission traffic usually is, and low enough that on this shared
    // 2-core machine the single-threaded Node server is not starved by the host's other work (at 500/s with
    // the load average at 12-18 it was, and measured the scheduler rather than the webhook; Go's threads get
    // more of a contended CPU). The CPU per review is reported beside the latency for that reason.
    const rate = quick ? 100 : 200;
    const seconds = quick ? 3 : 10;
    const rounds = quick ? 1 : 2;
    const certs = await createTestCertificates({ hosts: ['127.0.0.1'] });
    const certDir = mkdtempSync(join(tmpdir(), 'capstan-webhook-bench-'));
    writeFileSync(join(certDir, 'tls.crt'), certs.certPem);
    writeFileSync(join(certDir, 'tls.key'), certs.keyPem);
    const subjects: Subject[] = ['controller-runtime', 'capstan'];
    const samples = new Map<
      Subject,
      { latencies: number[]; errors: number; sent: number; rss: number; cpuUs: number[]; loops: LoopStats[] }
    >(subjects.map((s) => [s, { latencies: [], errors: 0, sent: 0, rss: 0, cpuUs: [], loops: [] }]));
    try {
      const { freePort } = await import('../src/runtime/index.ts');
      for (let round = 0; round < rounds; round++) {
        const order = round % 2 === 0 ? subjects : [...subjects].reverse();
        for (const subject of order) {
          const port = await freePort();
          const running = await startSubject(subject, port, certDir, goBin);
          const { child } = running;
          try {
            const url = `https://127.0.0.1:${port}`;
            // Warm-up: connections, TLS sessions, JIT.
            await drive(url, certs.caPem, rate, 1, `warm-${subject}`);
            await running.loop();
            const cpuBefore = cpuMsOf(child.pid!);
            const result = await drive(url, certs.caPem, rate, seconds, `${subject}-${round}`);
            const cpuUs = ((cpuMsOf(child.pid!) - cpuBefore) * 1000) / result.sent;
            const loop = await running.loop();
            const s = samples.get(subject)!;
            s.latencies.push(...result.latenciesMs);
            s.errors += result.errors;
            s.sent += result.sent;
            s.rss = Math.max(s.rss, peakRssOf(child.pid!));
            s.cpuUs.push(cpuUs);
            if (loop) s.loops.push(loop);
            const sum = summarize(result.latenciesMs);
            log(
              `${subject} round ${round + 1}: p50 ${sum.p50.toFixed(2)} ms, p99 ${sum.p99.toFixed(2)} ms, ${cpuUs.toFixed(0)} µs CPU a review, ${result.errors} errors of ${result.sent}${
                loop
                  ? `; event-loop delay p99 ${loop.delayMs.p99} ms, max ${loop.delayMs.max} ms; GC ${loop.gc.count} pauses, ${loop.gc.totalMs} ms in all, longest ${loop.gc.maxMs} ms; heap ${loop.heapMb} MB`
                  : ''
              }`,
            );
          } finally {
            await stopSubject(child);
          }
        }
      }
    } finally {
      rmSync(certDir, { recursive: true, force: true });
    }
    const results: BenchResult[] = [];
    for (const subject of subjects) {
      const s = samples.get(subject)!;
      if (s.errors > 0)
        throw new Error(
          `${subject}: ${s.errors} of ${s.sent} reviews failed or were not what the policy answers`,
        );
      const sum = summarize(s.latencies);
      const what =
        subject === 'capstan'
          ? 'capstan/webhook createWebhookServer'
          : `controller-runtime ${crVersion} webhook.Server`;
      const notes = `${rate} reviews/s for ${seconds} s × ${rounds}, 8 keep-alive TLS connections, half validate half mutate (JSON Patch); ${what}`;
      results.push(
        { subject, metric: 'latency_p50', unit: 'ms', ...sum, value: sum.p50, peakRssMb: s.rss, notes },
        {
          subject,
          metric: 'latency_p99',
          unit: 'ms',
          ...sum,
          value: sum.p99,
          notes,
          ...(subject === 'capstan' && { goal: { op: '<', value: 5, why: 'issue 11' } }),
        },
        ...(s.loops.length > 0
          ? [
              {
                subject,
                metric: 'event_loop_delay_p99',
                unit: 'ms',
                ...summarize(s.loops.map((l) => l.delayMs.p99)),
                notes: `the server's event-loop delay during a round (perf_hooks monitorEventLoopDelay, 1 ms resolution): the p99 of each round, summarized over rounds; max ${Math.max(...s.loops.map((l) => l.delayMs.max))} ms`,
              },
              {
                subject,
                metric: 'gc_pause_max',
                unit: 'ms',
                ...summarize(s.loops.map((l) => l.gc.maxMs)),
                notes: `the longest GC pause of each round (PerformanceObserver 'gc'); ${s.loops.map((l) => `${l.gc.count} pauses, ${l.gc.totalMs} ms`).join('; ')}`,
              },
            ]
          : []),
        {
          subject,
          metric: 'cpu_per_review',
          unit: 'µs',
          ...summarize(s.cpuUs),
          notes: `the server process's user + system CPU over a round, per review (10 ms ticks; steadier than latency on a shared machine)`,
        },
      );
    }
    return results;
  },
  ratios: [
    {
      label: 'webhook p99 latency: Capstan / controller-runtime',
      numerator: { subject: 'capstan', metric: 'latency_p99' },
      denominator: { subject: 'controller-runtime', metric: 'latency_p99' },
      goal: { op: '<=', value: 1.5, why: 'issue 11' },
    },
    {
      label: 'webhook CPU per review: Capstan / controller-runtime',
      numerator: { subject: 'capstan', metric: 'cpu_per_review' },
      denominator: { subject: 'controller-runtime', metric: 'cpu_per_review' },
    },
    {
      label: 'webhook p50 latency: Capstan / controller-runtime',
      numerator: { subject: 'capstan', metric: 'latency_p50' },
      denominator: { subject: 'controller-runtime', metric: 'latency_p50' },
    },
  ],
};

export default bench;
