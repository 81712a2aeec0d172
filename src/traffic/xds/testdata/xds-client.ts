// A gRPC client on the real proxyless xDS client (@grpc/grpc-js-xds), in a process of its own because the
// xds: scheme is a global registration. Bootstrap from GRPC_XDS_BOOTSTRAP_CONFIG, target from argv[2]
// (`xds:///api`). Reads one JSON command per line on stdin, answers one JSON line per command on stdout:
//   {"calls": N, "concurrency": C}  →  {"counts": {"v1": n, ...}, "errors": {"<code>": n}}
import { createInterface } from 'node:readline';
import * as grpc from '@grpc/grpc-js';
import { register } from '@grpc/grpc-js-xds';
import { WhoClient, who } from './who.ts';

register();
const target = process.argv[2] ?? 'xds:///api';
const client = new WhoClient(target, grpc.credentials.createInsecure());

async function run(calls: number, concurrency: number) {
  const counts: Record<string, number> = {};
  const errors: Record<string, number> = {};
  let next = 0;
  const worker = async () => {
    while (next < calls) {
      next += 1;
      try {
        const name = await who(client);
        counts[name] = (counts[name] ?? 0) + 1;
      } catch (err) {
        const key = `${(err as grpc.ServiceError).code}: ${(err as Error).message.slice(0, 120)}`;
        errors[key] = (errors[key] ?? 0) + 1;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { counts, errors };
}

for await (const line of createInterface({ input: process.stdin })) {
  if (!line.trim()) continue;
  const command = JSON.parse(line) as { calls: number; concurrency?: number };
  const result = await run(command.calls, command.concurrency ?? 10);
  process.stdout.write(`${JSON.stringify(result)}\n`);
}
client.close();
process.exit(0);
