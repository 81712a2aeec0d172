import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { TrafficError, TrafficErrorCode } from '../errors.ts';
import { registerGrpcDiscovery } from './grpc.ts';
import type { DiscoveryEvent } from './source.ts';
import { staticFileSource } from './static-file.ts';

// One unary method on raw bytes: no proto files needed.
const identity = (b: Buffer) => b;
const whoService = {
  who: {
    path: '/capstan.test.Who/Who',
    requestStream: false,
    responseStream: false,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  },
} satisfies grpc.ServiceDefinition;
const WhoClient = grpc.makeGenericClientConstructor(whoService, 'Who');

const dir = mkdtempSync(join(tmpdir(), 'capstan-grpc-'));
const servers: Array<{ name: string; port: number; server: grpc.Server }> = [];

before(async () => {
  for (const name of ['g0', 'g1', 'g2']) {
    const server = new grpc.Server();
    server.addService(whoService, {
      who: (_call: unknown, callback: grpc.sendUnaryData<Buffer>) => callback(null, Buffer.from(name)),
    });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) =>
        err ? reject(err) : resolve(p),
      ),
    );
    servers.push({ name, port, server });
  }
});
after(() => {
  for (const s of servers) s.server.forceShutdown();
  rmSync(dir, { recursive: true, force: true });
});

function who(client: grpc.Client): Promise<string> {
  return new Promise((resolve, reject) =>
    (client as unknown as { who: (req: Buffer, cb: (err: Error | null, res?: Buffer) => void) => void }).who(
      Buffer.alloc(0),
      (err, res) => (err ? reject(err) : resolve(res!.toString())),
    ),
  );
}

async function count(client: grpc.Client, n: number): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const name = await who(client);
    counts[name] = (counts[name] ?? 0) + 1;
  }
  return counts;
}

test('a grpc-js client resolves capstan-discovery:/// through a source: round robin, then an update', async () => {
  const path = join(dir, 'who.json');
  const write = (ports: number[]) =>
    writeFileSync(path, JSON.stringify(ports.map((port) => ({ address: '127.0.0.1', port }))));
  write([servers[0]!.port, servers[1]!.port]);
  const events: DiscoveryEvent[] = [];
  let wake: (() => void) | undefined;
  const { target, unregister } = registerGrpcDiscovery('who', staticFileSource({ path, pollMs: 0 }), {
    onDiscoveryEvent: (e) => {
      events.push(e);
      wake?.();
    },
  });
  const client = new WhoClient(target, grpc.credentials.createInsecure());
  try {
    // The first calls wait for the first snapshot and the connections; after that round robin alternates.
    await who(client);
    await new Promise<void>((resolve, reject) =>
      client.waitForReady(Date.now() + 10_000, (err) => (err ? reject(err) : resolve())),
    );
    // round_robin uses the subchannels that are READY: wait (bounded) until both answered once.
    const seen = new Set<string>();
    for (let i = 0; i < 200 && seen.size < 2; i++) seen.add(await who(client));
    assert.deepEqual([...seen].sort(), ['g0', 'g1']);
    const even = await count(client, 20);
    assert.deepEqual(even, { g0: 10, g1: 10 });

    write([servers[2]!.port]);
    while (events.filter((e) => e.type === 'snapshot').length < 2) await new Promise<void>((r) => (wake = r));
    // The removed subchannels leave the picker at once; the new one is used as soon as it connects.
    const after = await count(client, 10);
    assert.deepEqual(after, { g2: 10 });
  } finally {
    client.close();
    unregister();
  }
});

test('an unknown name fails calls with UNAVAILABLE; bad names are refused', async () => {
  const client = new WhoClient('capstan-discovery:///nobody', grpc.credentials.createInsecure());
  try {
    await assert.rejects(who(client), (e: { code?: number }) => e.code === grpc.status.UNAVAILABLE);
  } finally {
    client.close();
  }
  assert.throws(
    () => registerGrpcDiscovery('a/b', staticFileSource({ path: 'x' })),
    (e: unknown) => e instanceof TrafficError && e.code === TrafficErrorCode.invalid,
  );
});
