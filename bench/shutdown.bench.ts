// Shutdown under load: time from SIGTERM to exit, requests drained and requests lost, for a service
// using Capstan's Lifecycle versus the naive `server.close(); process.exit(0)` handler.
import { setTimeout as sleep } from 'node:timers/promises';
import { fixture, spawnJson } from '../test/fixtures/json-process.ts';
import { type Benchmark, type BenchResult, summarize } from './harness.ts';

const CONNECTIONS = 16;

interface Run {
  exitMs: number;
  failed: number;
  lost: number;
  drained: number;
  ok: number;
  exitCode: number | null;
}

async function once(mode: 'capstan' | 'naive'): Promise<Run> {
  const service = spawnJson(fixture('shutdown-service.ts'), [], {
    MODE: mode,
    DRAIN_DELAY_MS: '0', // measure the drain itself; production adds its propagation delay on top
    DRAIN_TIMEOUT_MS: '10000',
    IDLE_GRACE_MS: '1000',
    HANDLER_MS: '20',
  });
  const load = { proc: undefined as ReturnType<typeof spawnJson> | undefined };
  try {
    const { port } = (await service.waitFor((l) => l.event === 'listening')) as { port: number };
    load.proc = spawnJson(fixture('load-client.ts'), [`http://127.0.0.1:${port}`], {
      CONNECTIONS: String(CONNECTIONS),
      DURATION_MS: '20000',
    });
    await load.proc.waitFor((l) => l.event === 'started');
    await sleep(1000);
    const t0 = performance.now();
    service.child.kill('SIGTERM');
    const { code } = await service.exited;
    const exitMs = performance.now() - t0;
    const done = (await load.proc.waitFor((l) => l.event === 'done', 60_000)) as {
      ok: number;
      errors: number;
      non2xx: number;
    };
    const counts = service.lines.find((l) => l.event === 'counts') as { accepted: number; completed: number };
    const stopped = service.lines.find((l) => l.phase === 'stopped') as
      | { servers: Array<{ inFlightAtClose: number; acceptedWhileDraining: number }> }
      | undefined;
    const server = stopped?.servers[0];
    return {
      exitMs,
      failed: done.errors + done.non2xx,
      lost: counts.accepted - counts.completed,
      drained: server ? server.inFlightAtClose + server.acceptedWhileDraining : 0,
      ok: done.ok,
      exitCode: code,
    };
  } finally {
    service.kill();
    load.proc?.kill();
  }
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

const bench: Benchmark = {
  name: 'shutdown',
  description: `SIGTERM under keep-alive load (${CONNECTIONS} connections, 20 ms handler): Capstan Lifecycle vs naive close+exit`,
  async run({ quick, log }) {
    const runs = quick ? 1 : 3;
    const results: BenchResult[] = [];
    for (const [mode, subject] of [
      ['capstan', 'capstan'],
      ['naive', 'naive-close-exit'],
    ] as const) {
      const samples: Run[] = [];
      for (let i = 0; i < runs; i++) {
        const run = await once(mode);
        log(`${subject} run ${i + 1}: ${JSON.stringify(run)}`);
        samples.push(run);
      }
      // Losing nothing is the point of Lifecycle: any failed or lost request is a missed goal.
      const none =
        subject === 'capstan'
          ? { goal: { op: '<=', value: 0, why: 'SIGTERM loses no request' } as const }
          : {};
      const notes = `exit codes ${samples.map((s) => s.exitCode).join(',')}; ${Math.round(mean(samples.map((s) => s.ok)))} ok responses per run`;
      results.push(
        { subject, metric: 'sigterm-to-exit', unit: 'ms', ...summarize(samples.map((s) => s.exitMs)), notes },
        {
          subject,
          metric: 'failed-requests',
          unit: 'requests/run',
          value: mean(samples.map((s) => s.failed)),
          samples: runs,
          ...none,
        },
        {
          subject,
          metric: 'lost-accepted',
          unit: 'requests/run',
          value: mean(samples.map((s) => s.lost)),
          samples: runs,
          ...none,
        },
        {
          subject,
          metric: 'drained-after-close',
          unit: 'requests/run',
          value: mean(samples.map((s) => s.drained)),
          samples: runs,
          notes: 'in flight at listener close + served on open keep-alive connections with Connection: close',
        },
      );
    }
    return results;
  },
  ratios: [
    {
      label: 'SIGTERM-to-exit, Capstan / naive (the price of losing nothing)',
      numerator: { subject: 'capstan', metric: 'sigterm-to-exit' },
      denominator: { subject: 'naive-close-exit', metric: 'sigterm-to-exit' },
    },
  ],
};

export default bench;
