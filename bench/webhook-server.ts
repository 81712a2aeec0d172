// The Capstan side of bench/webhook.bench.ts: examples/webhook/pod-policy.ts's webhook served by
// createWebhookServer from the certificate files the Go peer reads too. `node bench/webhook-server.ts
// <port> <cert-dir>`; logs JSON ("listening" once it serves), stops on SIGTERM. On SIGUSR2 it prints one
// JSON line `{"msg":"loop",...}` with the event-loop delay (perf_hooks' histogram, 1 ms resolution) and the
// GC pauses seen since the previous SIGUSR2, then starts both again: the bench brackets a round with two.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import { podPolicy } from '../examples/webhook/pod-policy.ts';
import { createLogger } from '../src/runtime/index.ts';
import { createWebhookServer } from '../src/webhook/index.ts';

const [port, certDir] = process.argv.slice(2);
const server = createWebhookServer(podPolicy({ sidecarImage: 'busybox:local' }), {
  certificate: {
    certPem: readFileSync(join(certDir!, 'tls.crt'), 'utf8'),
    keyPem: readFileSync(join(certDir!, 'tls.key'), 'utf8'),
  },
  port: Number(port),
  host: '127.0.0.1',
  logger: createLogger({ name: 'pod-policy', level: 'info' }),
  lifecycle: { drainDelayMs: 0, idleGraceMs: 100 },
});

const loop = monitorEventLoopDelay({ resolution: 1 });
loop.enable();
let gc = { count: 0, totalMs: 0, maxMs: 0 };
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    gc.count++;
    gc.totalMs += entry.duration;
    gc.maxMs = Math.max(gc.maxMs, entry.duration);
  }
}).observe({ entryTypes: ['gc'] });
process.on('SIGUSR2', () => {
  const ms = (ns: number) => Math.round(ns / 1e4) / 100;
  process.stdout.write(
    `${JSON.stringify({
      msg: 'loop',
      delayMs: { p50: ms(loop.percentile(50)), p99: ms(loop.percentile(99)), max: ms(loop.max) },
      gc: {
        count: gc.count,
        totalMs: Math.round(gc.totalMs * 100) / 100,
        maxMs: Math.round(gc.maxMs * 100) / 100,
      },
      heapMb: Math.round(process.memoryUsage().heapUsed / 2 ** 20),
    })}\n`,
  );
  loop.reset();
  gc = { count: 0, totalMs: 0, maxMs: 0 };
});

await server.start();
server.handleSignals();
