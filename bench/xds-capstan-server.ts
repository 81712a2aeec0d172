// The Capstan side of bench/xds.bench.ts: capstan/traffic's xDS control plane serving the same mesh as
// bench/peers/go_control_plane (service `api`, versions v1 and v2 with one loopback endpoint each, RDS),
// driven by the same stdin protocol: prints "listening <host:port>", then each line "weights <v1> <v2>"
// sets the weights and answers "pushed <n>". Every node gets the mesh (the default snapshot).
// Usage: node --conditions=capstan-source bench/xds-capstan-server.ts <listen host:port> <v1 host:port> <v2 host:port>
import { createInterface } from 'node:readline';
import { createLogger } from '../src/runtime/index.ts';
import { createControlPlane } from '../src/traffic/index.ts';

function hostPort(text: string | undefined): { address: string; port: number } {
  const m = /^(.+):(\d+)$/.exec(text ?? '');
  if (!m) throw new Error(`expected host:port, got ${JSON.stringify(text)}`);
  return { address: m[1]!, port: Number(m[2]) };
}

const [listen, v1, v2] = process.argv.slice(2);
const at = hostPort(listen);
const plane = createControlPlane({
  host: at.address,
  port: at.port,
  admin: { host: '127.0.0.1', port: 0 },
  // stdout carries the protocol: logs go to stderr.
  logger: createLogger({ level: 'warn', destination: 2 }),
  mesh: {
    services: {
      api: {
        versions: { v1: { endpoints: [hostPort(v1)] }, v2: { endpoints: [hostPort(v2)] } },
        routes: [{ weights: { v1: 100, v2: 0 } }],
      },
    },
  },
});
process.stdout.write(`listening ${await plane.start()}\n`);
let pushes = 0;
for await (const line of createInterface({ input: process.stdin })) {
  const m = /^weights (\d+) (\d+)$/.exec(line.trim());
  if (!m) {
    process.stdout.write(`error bad command ${JSON.stringify(line)}\n`);
    continue;
  }
  try {
    plane.setWeights('api', { v1: Number(m[1]), v2: Number(m[2]) });
    process.stdout.write(`pushed ${++pushes}\n`);
  } catch (err) {
    process.stdout.write(
      `error ${(err instanceof Error ? err.message : String(err)).replace(/\s*\n\s*/g, '; ')}\n`,
    );
  }
}
// stdin closed: the bench is done with us.
await plane.stop();
