// xDS convergence (issue 12): the time from a weight change at the control plane until 100 proxyless gRPC
// clients (@grpc/grpc-js-xds, two client processes of 50, bench/xds-clients.ts) route by the new weights,
// for Capstan's control plane (bench/xds-capstan-server.ts) and go-control-plane
// (bench/peers/go_control_plane: server/v3 and the cache/v3 snapshot cache), serving the same mesh:
// Listener `api` (API listener, RDS over ADS), a RouteConfiguration with weighted clusters v1/v2, both
// Clusters (EDS) and their endpoints, two loopback gRPC backends answering each call with their version.
// Both control planes take the same stdin command (`weights <v1> <v2>`, answered `pushed <n>`).
//
// Each round sets 100/0 and waits until every client routes by it, then changes to 50/50 and then to
// 90/10. A change is timed from just before the command is written to the control plane until the last
// of the 100 clients' channels has taken a route with the new weights: each client reports that moment
// itself (xds-clients.ts wraps the xDS resolver and reads the route it hands the channel). Then real calls
// check the report: SPLIT_CALLS per client, and their split must match the weights within 4 standard
// deviations, with no call failing, or the benchmark fails.
// Why not time the change by calls alone (the first call answered by v2): a call through grpc-js-xds cost
// ~0.9 ms of CPU here (client and backend, busy machine), so each of 100 clients on two cores can call only
// every ~100 ms, and the slowest client's first v2 at 50/50 would come ~7 calls after its switch: sampling
// would be most of the figure.
import { type ChildProcess, fork, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import {
  type Benchmark,
  type BenchResult,
  buildGoPeer,
  goModuleVersion,
  percentile,
  summarize,
} from './harness.ts';
import type { FromClients, ToClients, Version, Weights } from './xds-clients.ts';

const here = dirname(fileURLToPath(import.meta.url));
const CLIENTS = 100;
const CLIENT_PROCESSES = 2;
const SPLIT_CALLS = 10;
const STEP_TIMEOUT_MS = 30_000;

type Subject = 'capstan' | 'go-control-plane';

const wallClock = () => performance.timeOrigin + performance.now();

/** One gRPC backend answering every call to /bench.Echo/Version with its version. */
async function startBackend(version: Version): Promise<{ address: string; server: grpc.Server }> {
  const identity = (b: Buffer) => b;
  const server = new grpc.Server();
  server.addService(
    {
      Version: {
        path: '/bench.Echo/Version',
        requestStream: false,
        responseStream: false,
        requestSerialize: identity,
        requestDeserialize: identity,
        responseSerialize: identity,
        responseDeserialize: identity,
      },
    },
    {
      Version: (_call: grpc.ServerUnaryCall<Buffer, Buffer>, done: grpc.sendUnaryData<Buffer>) =>
        done(null, Buffer.from(version)),
    },
  );
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  return { address: `127.0.0.1:${port}`, server };
}

/** A control plane child speaking the stdin protocol above. */
class ControlPlane {
  readonly #child: ChildProcess;
  readonly #lines: AsyncIterator<string>;
  readonly #exited: Promise<never>;
  /** `host:port` of its xDS server. */
  address = '';

  private constructor(child: ChildProcess, stderr: () => string) {
    this.#child = child;
    this.#lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
    this.#exited = once(child, 'exit').then(([code]) => {
      throw new Error(`control plane exited ${code}; stderr: ${stderr()}`);
    });
    this.#exited.catch(() => {}); // observed by #line; a planned exit is no error
  }

  static async start(command: string, args: string[]): Promise<ControlPlane> {
    const child = spawn(command, args, {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, LOG_LEVEL: 'warn' },
    });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-2000);
    });
    const plane = new ControlPlane(child, () => stderr);
    try {
      const line = await plane.#line(30_000);
      const m = /^listening (\S+)$/.exec(line);
      if (!m) throw new Error(`control plane said ${JSON.stringify(line)}; stderr: ${stderr}`);
      plane.address = m[1]!;
      return plane;
    } catch (err) {
      child.kill('SIGKILL');
      throw err;
    }
  }

  async #line(timeoutMs: number): Promise<string> {
    let timer: NodeJS.Timeout | undefined;
    try {
      const result = await Promise.race([
        this.#lines.next(),
        this.#exited,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`control plane silent for ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
      if (result.done) return await this.#exited;
      return result.value;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Set the weights; returns the wall-clock ms just before the command was written. */
  async setWeights(v1: number, v2: number): Promise<number> {
    const started = wallClock();
    this.#child.stdin!.write(`weights ${v1} ${v2}\n`);
    const line = await this.#line(STEP_TIMEOUT_MS);
    if (!line.startsWith('pushed ')) throw new Error(`control plane answered ${JSON.stringify(line)}`);
    return started;
  }

  /** Peak resident set size so far, MiB (VmHWM of the child). */
  peakRssMb(): number {
    const status = readFileSync(`/proc/${this.#child.pid}/status`, 'utf8');
    return Number(/VmHWM:\s+(\d+)/.exec(status)?.[1]) / 1024;
  }

  async stop(): Promise<void> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return;
    const exited = once(this.#child, 'exit');
    this.#child.stdin!.end();
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  }
}

/** The client processes, addressed together. */
class Clients {
  readonly #children: ChildProcess[];

  private constructor(children: ChildProcess[]) {
    this.#children = children;
  }

  static async start(controlPlane: string): Promise<Clients> {
    const per = CLIENTS / CLIENT_PROCESSES;
    const children = Array.from({ length: CLIENT_PROCESSES }, (_, i) =>
      fork(join(here, 'xds-clients.ts'), [controlPlane, String(per), String(i * per)], {
        stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
      }),
    );
    const clients = new Clients(children);
    try {
      await clients.#all('ready', 90_000);
    } catch (err) {
      await clients.stop();
      throw err;
    }
    return clients;
  }

  /** The next message of `type` from every child (an `error` message or an exit rejects). */
  #all<T extends FromClients['type']>(
    type: T,
    timeoutMs: number,
  ): Promise<Array<Extract<FromClients, { type: T }>>> {
    return Promise.all(
      this.#children.map(
        (child, i) =>
          new Promise<Extract<FromClients, { type: T }>>((resolve, reject) => {
            const done = () => {
              clearTimeout(timer);
              child.off('message', onMessage);
              child.off('exit', onExit);
            };
            const onMessage = (m: FromClients) => {
              if (m.type === type) {
                done();
                resolve(m as Extract<FromClients, { type: T }>);
              } else if (m.type === 'error') {
                done();
                reject(new Error(`client process ${i}: ${m.message}`));
              }
            };
            const onExit = (code: number | null) => {
              done();
              reject(new Error(`client process ${i} exited ${code}`));
            };
            const timer = setTimeout(() => {
              done();
              reject(new Error(`client process ${i}: no ${type} within ${timeoutMs} ms`));
            }, timeoutMs);
            child.on('message', onMessage);
            child.on('exit', onExit);
          }),
      ),
    );
  }

  /** Wait until every client routes by `weights`. */
  async routeBy(weights: Weights): Promise<void> {
    await this.measure(weights, async () => wallClock());
  }

  /**
   * Arm every client to report when it routes by `weights`, run `change` (which returns the wall-clock
   * ms it made the change at), and return each client's delay from the change to its new route.
   */
  async measure(
    weights: Weights,
    change: () => Promise<number>,
  ): Promise<{ delays: number[]; clientCpuMs: number }> {
    const armed = this.#all('armed', 10_000);
    const applied = this.#all('applied', STEP_TIMEOUT_MS + 5_000);
    this.#send({ type: 'await', weights, timeoutMs: STEP_TIMEOUT_MS });
    await armed;
    const changedAt = await change();
    const answers = await applied;
    return {
      delays: answers.flatMap((a) => a.at.map((t) => t - changedAt)),
      clientCpuMs: answers.reduce((n, a) => n + a.cpuMs, 0),
    };
  }

  /** `calls` calls per client: the versions that answered, added up. */
  async split(calls: number): Promise<{ counts: Record<Version, number>; failed: number }> {
    const answers = this.#all('split', STEP_TIMEOUT_MS);
    this.#send({ type: 'split', calls });
    const all = await answers;
    return {
      counts: {
        v1: all.reduce((n, a) => n + a.counts.v1, 0),
        v2: all.reduce((n, a) => n + a.counts.v2, 0),
      },
      failed: all.reduce((n, a) => n + a.failed, 0),
    };
  }

  #send(message: ToClients): void {
    for (const child of this.#children) child.send(message);
  }

  async stop(): Promise<void> {
    await Promise.all(
      this.#children.map(async (child) => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        const exited = once(child, 'exit');
        if (child.connected) child.disconnect();
        const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
        await exited;
        clearTimeout(timer);
      }),
    );
  }
}

interface Change {
  /** The last client routing by the new weights (issue 12's figure). */
  metric: string;
  /** The first client: the control plane's push plus one client's work, less the other clients' CPU. */
  firstMetric: string;
  to: Weights;
}

/** Each round starts from 100/0 (not measured), then these changes, in order. */
const CHANGES: Change[] = [
  { metric: 'converge_to_50_50', firstMetric: 'first_client_to_50_50', to: [50, 50] },
  { metric: 'converge_to_90_10', firstMetric: 'first_client_to_90_10', to: [90, 10] },
];

interface Samples {
  converge: Map<string, number[]>;
  firstClient: Map<string, number[]>;
  medianClient: Map<string, number[]>;
  clientCpuMs: Map<string, number[]>;
  readyMs: number[];
  peakRssMb: number;
}

/** One session: a fresh control plane and fresh clients, `rounds` × every change. */
async function session(
  subject: Subject,
  command: [string, string[]],
  backends: [string, string],
  rounds: number,
  samples: Samples,
  log: (msg: string) => void,
): Promise<void> {
  const plane = await ControlPlane.start(command[0], [...command[1], '127.0.0.1:0', ...backends]);
  let clients: Clients | undefined;
  try {
    const started = performance.now();
    clients = await Clients.start(plane.address);
    samples.readyMs.push(performance.now() - started);
    log(`${subject}: ${CLIENTS} clients ready in ${(performance.now() - started).toFixed(0)} ms`);
    for (let round = 0; round < rounds; round++) {
      await plane.setWeights(100, 0);
      await clients.routeBy([100, 0]);
      for (const change of CHANGES) {
        const { delays, clientCpuMs } = await clients.measure(change.to, () =>
          plane.setWeights(...change.to),
        );
        if (delays.length !== CLIENTS || delays.some((d) => !(d >= 0))) {
          throw new Error(`${subject}: a client took ${change.to.join('/')} before it was set`);
        }
        const converged = Math.max(...delays);
        const medianClient = percentile(delays, 50);
        // Real calls must follow what the clients reported: the split within 4 standard deviations.
        const { counts, failed } = await clients.split(SPLIT_CALLS);
        if (failed > 0) throw new Error(`${subject}: ${failed} calls failed at ${change.to.join('/')}`);
        const n = counts.v1 + counts.v2;
        const p1 = change.to[0] / (change.to[0] + change.to[1]);
        if (Math.abs(counts.v1 - n * p1) > 4 * Math.sqrt(n * p1 * (1 - p1))) {
          throw new Error(
            `${subject}: calls split ${counts.v1}/${counts.v2} at weights ${change.to.join('/')} (beyond 4 sd)`,
          );
        }
        samples.converge.get(change.metric)!.push(converged);
        samples.medianClient.get(change.metric)!.push(medianClient);
        samples.firstClient.get(change.metric)!.push(Math.min(...delays));
        samples.clientCpuMs.get(change.metric)!.push(clientCpuMs);
        log(
          `${subject} round ${round + 1} → ${change.to.join('/')}: all ${CLIENTS} clients in ${converged.toFixed(1)} ms (first ${Math.min(...delays).toFixed(1)} ms, median ${medianClient.toFixed(1)} ms; clients' CPU ${clientCpuMs.toFixed(0)} ms); ${n} calls split ${counts.v1}/${counts.v2}`,
        );
      }
    }
    samples.peakRssMb = Math.max(samples.peakRssMb, plane.peakRssMb());
  } finally {
    await clients?.stop();
    await plane.stop();
  }
}

const bench: Benchmark = {
  name: 'xds',
  description: `xDS convergence: a weight change until all ${CLIENTS} proxyless gRPC clients (@grpc/grpc-js-xds) route by it, Capstan's control plane vs go-control-plane`,
  async run({ quick, log }) {
    const peerDir = join(here, 'peers', 'go_control_plane');
    const goBin = buildGoPeer(peerDir, log);
    const subjects: Array<[Subject, [string, string[]]]> = [
      ['capstan', [process.execPath, ['--conditions=capstan-source', join(here, 'xds-capstan-server.ts')]]],
      ['go-control-plane', [goBin, []]],
    ];
    const sessions = quick ? 1 : 2;
    const rounds = quick ? 3 : 10;
    const v1 = await startBackend('v1');
    const v2 = await startBackend('v2');
    const samples = new Map<Subject, Samples>(
      subjects.map(([s]) => [
        s,
        {
          converge: new Map(CHANGES.map((c) => [c.metric, []])),
          firstClient: new Map(CHANGES.map((c) => [c.metric, []])),
          medianClient: new Map(CHANGES.map((c) => [c.metric, []])),
          clientCpuMs: new Map(CHANGES.map((c) => [c.metric, []])),
          readyMs: [],
          peakRssMb: 0,
        },
      ]),
    );
    try {
      // Alternate the order per session, so drift on a shared machine hits both.
      for (let s = 0; s < sessions; s++) {
        const order = s % 2 === 0 ? subjects : [...subjects].reverse();
        for (const [subject, command] of order) {
          await session(subject, command, [v1.address, v2.address], rounds, samples.get(subject)!, log);
        }
      }
    } finally {
      v1.server.forceShutdown();
      v2.server.forceShutdown();
    }
    const results: BenchResult[] = [];
    for (const [subject] of subjects) {
      const s = samples.get(subject)!;
      for (const change of CHANGES) {
        results.push({
          subject,
          metric: change.metric,
          unit: 'ms',
          ...summarize(s.converge.get(change.metric)!),
          notes: `from the command to the last of ${CLIENTS} clients routing by it; median client ${percentile(s.medianClient.get(change.metric)!, 50).toFixed(1)} ms; the client processes' CPU meanwhile ${percentile(s.clientCpuMs.get(change.metric)!, 50).toFixed(0)} ms; ${CLIENTS} clients ready (all of LDS/RDS/CDS/EDS and a call) in ${percentile(s.readyMs, 50).toFixed(0)} ms${subject === 'go-control-plane' ? `; go-control-plane ${goModuleVersion(peerDir, 'github.com/envoyproxy/go-control-plane')}` : ''}`,
        });
        results.push({
          subject,
          metric: change.firstMetric,
          unit: 'ms',
          ...summarize(s.firstClient.get(change.metric)!),
          notes: 'from the command to the first client routing by it',
        });
      }
      results.push({
        subject,
        metric: 'peak_rss',
        unit: 'MiB',
        value: s.peakRssMb,
        peakRssMb: s.peakRssMb,
        notes: `control plane process serving ${CLIENTS} ADS streams`,
      });
    }
    return results;
  },
  ratios: [
    ...CHANGES.flatMap((c) => [
      {
        label: `xDS → ${c.to.join('/')}, all ${CLIENTS} clients (p50): capstan / go-control-plane`,
        numerator: { subject: 'capstan', metric: c.metric },
        denominator: { subject: 'go-control-plane', metric: c.metric },
      },
      {
        label: `xDS → ${c.to.join('/')}, first client (p50): capstan / go-control-plane`,
        numerator: { subject: 'capstan', metric: c.firstMetric },
        denominator: { subject: 'go-control-plane', metric: c.firstMetric },
      },
    ]),
    {
      label: 'xDS control plane peak RSS: capstan / go-control-plane',
      numerator: { subject: 'capstan', metric: 'peak_rss' },
      denominator: { subject: 'go-control-plane', metric: 'peak_rss' },
    },
  ],
};

export default bench;
