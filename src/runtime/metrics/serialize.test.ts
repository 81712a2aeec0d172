// The event-loop promise of a large exposition, checked in bytes rather than milliseconds: however large
// the registry, no synchronous run of the serializer writes more than `sliceBytes` plus one metric's
// header and one series' lines.
// A run is observed from outside: a setImmediate ticker advances once per event-loop turn, and every
// chunk is charged to the turn it arrived in.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import { Counter, Gauge, Histogram, MetricsRegistry, metricsHandler } from './index.ts';

const DEFAULT_SLICE_BYTES = 256 * 1024;
/** Longest series' lines plus a metric header: a run may end one series past its byte budget. */
const SERIES_SLACK = 4 * 1024;

/** `metrics` × 1000 counter and gauge series plus `metrics` × 10 histogram series (14 lines each). */
function bigRegistry(metrics: number, options: ConstructorParameters<typeof MetricsRegistry>[0] = {}) {
  const reg = new MetricsRegistry({ maxSeriesPerMetric: Number.POSITIVE_INFINITY, ...options });
  for (let m = 0; m < metrics; m++) {
    const Kind = m % 2 === 0 ? Counter : Gauge;
    const metric = new Kind({
      name: `slice_test_${m}`,
      help: 'Series for the slice bound.',
      labelNames: ['route', 'code'],
      registers: [reg],
    });
    for (let i = 0; i < 1000; i++) metric.inc({ route: `/api/v1/resource/${i}`, code: '200' }, i + m);
  }
  const h = new Histogram({
    name: 'slice_test_seconds',
    help: 'Histogram series (14 lines each).',
    labelNames: ['route'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [reg],
  });
  for (let i = 0; i < metrics * 10; i++) h.observe({ route: `/api/v1/resource/${i}` }, i / 100);
  return reg;
}

/** Counts event-loop turns: `tick` advances once per turn, in the check phase, until stopped. */
function loopTicker(): { readonly tick: number; stop(): void } {
  let tick = 0;
  let on = true;
  const spin = () => {
    tick++;
    if (on) setImmediate(spin);
  };
  setImmediate(spin);
  return {
    get tick() {
      return tick;
    },
    stop() {
      on = false;
    },
  };
}

/** Bytes of each synchronous run of an exposition consumed without ever waiting on anything else. */
async function syncRuns(chunks: AsyncIterable<Uint8Array>): Promise<{ runs: number[]; total: number }> {
  const ticker = loopTicker();
  const byTick = new Map<number, number>();
  let total = 0;
  try {
    for await (const c of chunks) {
      byTick.set(ticker.tick, (byTick.get(ticker.tick) ?? 0) + c.length);
      total += c.length;
    }
  } finally {
    ticker.stop();
  }
  return { runs: [...byTick.values()], total };
}

describe('exposition slices', () => {
  test('no synchronous run writes more than sliceBytes, however slow the clock', async () => {
    // A time slice that never ends stands for a machine fast enough to never reach it: only the byte
    // bound is left. A time-only serializer writes all 101k series in one run here.
    const reg = bigRegistry(100, { sliceMs: 60_000 });
    const { runs, total } = await syncRuns(reg.expose());
    assert.ok(total > 6_000_000, `exposition of ${total} bytes`);
    const largest = Math.max(...runs);
    assert.ok(
      largest <= DEFAULT_SLICE_BYTES + SERIES_SLACK,
      `largest synchronous run wrote ${largest} bytes (bound ${DEFAULT_SLICE_BYTES} + one series)`,
    );
    // The number of yields grows with the registry: at least one per budget's worth of output.
    assert.ok(runs.length >= Math.ceil(total / (DEFAULT_SLICE_BYTES + SERIES_SLACK)), `${runs.length} runs`);
  });

  test('the bound scales with the registry: 10× the series, 10× the runs, the same largest run', async () => {
    const sliceBytes = 32 * 1024;
    const small = await syncRuns(bigRegistry(10, { sliceMs: 60_000, sliceBytes }).expose());
    const large = await syncRuns(bigRegistry(100, { sliceMs: 60_000, sliceBytes }).expose());
    for (const { runs, total } of [small, large]) {
      assert.ok(Math.max(...runs) <= sliceBytes + SERIES_SLACK, `largest run ${Math.max(...runs)} bytes`);
      assert.ok(runs.length >= Math.ceil(total / (sliceBytes + SERIES_SLACK)), `${runs.length} runs`);
    }
    assert.ok(large.runs.length >= 8 * small.runs.length, `${small.runs.length} → ${large.runs.length} runs`);
  });

  test('sliceBytes must be positive', () => {
    assert.throws(() => new MetricsRegistry({ sliceBytes: 0 }), { code: 'CAP_ERR_RUNTIME_METRICS_INVALID' });
  });

  test('/metrics writes at most two slices per event-loop turn and the whole exposition', async () => {
    // Over HTTP the handler may also wait for 'drain' in the middle of a slice, so one turn can hold the
    // rest of one slice and the whole next one: 2 × the bound, still independent of the registry's size.
    const reg = bigRegistry(100);
    const expected = await reg.metricsString();
    const handler = metricsHandler(reg);
    let writes: Map<number, number> | undefined;
    let ticker: ReturnType<typeof loopTicker> | undefined;
    const server = createServer((req, res) => {
      const t = loopTicker();
      const byTick = new Map<number, number>();
      ticker = t;
      writes = byTick;
      const write = res.write.bind(res) as (chunk: Uint8Array) => boolean;
      res.write = ((chunk: Uint8Array) => {
        byTick.set(t.tick, (byTick.get(t.tick) ?? 0) + chunk.length);
        return write(chunk);
      }) as typeof res.write;
      res.once('close', () => t.stop());
      handler(req, res);
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      const { port } = server.address() as AddressInfo;
      const body = await new Promise<string>((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port, path: '/metrics' }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
          res.on('error', reject);
        });
        req.on('error', reject);
        req.end();
      });
      assert.equal(body, expected);
      const runs = [...writes!.values()];
      const largest = Math.max(...runs);
      assert.ok(
        largest <= 2 * (DEFAULT_SLICE_BYTES + SERIES_SLACK),
        `largest write per turn ${largest} bytes`,
      );
      assert.ok(runs.length >= Math.ceil(body.length / (2 * (DEFAULT_SLICE_BYTES + SERIES_SLACK))));
    } finally {
      ticker?.stop();
      server.closeAllConnections();
      server.close();
    }
  });
});
