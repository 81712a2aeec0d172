// The Capstan side of bench/webhook.bench.ts: examples/webhook/pod-policy.ts's webhook served by
// createWebhookServer from the certificate files the Go peer reads too. `node bench/webhook-server.ts
// <port> <cert-dir>`; logs JSON ("listening" once it serves), stops on SIGTERM.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
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
await server.start();
server.handleSignals();
