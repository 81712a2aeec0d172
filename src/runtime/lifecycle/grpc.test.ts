import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { canConnect } from '../net/ports.ts';
import { Lifecycle } from './lifecycle.ts';
import { callEcho, echoClient, echoService as service } from './testdata/echo-grpc.ts';

/** Start a server whose Echo waits for `gate` before answering (or never, when `gate` never settles). */
async function startServer(
  gate: Promise<void>,
  entered: () => void,
): Promise<{ server: grpc.Server; port: number }> {
  const server = new grpc.Server();
  server.addService(service, {
    echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
      entered();
      void gate.then(() => callback(null, Buffer.concat([Buffer.from('echo:'), call.request])));
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  return { server, port };
}

test('gRPC: an in-flight call completes after shutdown begins, then the port refuses', async () => {
  let open!: () => void;
  const gate = new Promise<void>((r) => {
    open = r;
  });
  let signalEntered!: () => void;
  const entered = new Promise<void>((r) => {
    signalEntered = r;
  });
  const { server, port } = await startServer(gate, signalEntered);
  const lifecycle = new Lifecycle({ drainDelayMs: 0, drainTimeoutMs: 30_000 });
  lifecycle.addServer(server, { name: 'grpc' });
  const client = echoClient(port);
  try {
    const inFlight = callEcho(client, 'first');
    await entered;
    const reportPromise = lifecycle.shutdown('test');
    await new Promise((r) => setImmediate(r));
    assert.equal(await canConnect(port), false, 'the port is unbound while the call runs');
    open();
    assert.equal(await inFlight, 'echo:first');
    const report = await reportPromise;
    assert.equal(report.exitCode, 0);
    assert.deepEqual(report.servers[0], {
      name: 'grpc',
      kind: 'grpc',
      inFlightAtClose: 1,
      acceptedWhileDraining: 0,
      idleClosed: 0,
      cut: 0,
      forced: false,
    });
    const late = echoClient(port);
    try {
      await assert.rejects(
        new Promise((resolve, reject) =>
          late.echo(Buffer.from('late'), { deadline: Date.now() + 5000 }, (err: grpc.ServiceError | null) =>
            err ? reject(err) : resolve(undefined),
          ),
        ),
        (err: grpc.ServiceError) =>
          err.code === grpc.status.UNAVAILABLE || err.code === grpc.status.DEADLINE_EXCEEDED,
      );
    } finally {
      late.close();
    }
  } finally {
    client.close();
    server.forceShutdown();
  }
});

test('gRPC: a call still running at the deadline is cancelled and the drain reported as forced', async () => {
  let signalEntered!: () => void;
  const entered = new Promise<void>((r) => {
    signalEntered = r;
  });
  const { server, port } = await startServer(new Promise(() => {}), signalEntered);
  const lifecycle = new Lifecycle({ drainDelayMs: 0, drainTimeoutMs: 300 });
  lifecycle.addServer(server);
  const client = echoClient(port);
  try {
    const inFlight = callEcho(client, 'never');
    await entered;
    const report = await lifecycle.shutdown('test');
    await assert.rejects(inFlight, (err: grpc.ServiceError) =>
      [grpc.status.CANCELLED, grpc.status.UNAVAILABLE, grpc.status.INTERNAL].includes(err.code),
    );
    assert.equal(report.exitCode, 1);
    assert.equal(report.servers[0]!.name, 'grpc-1');
    assert.equal(report.servers[0]!.forced, true);
    assert.equal(report.servers[0]!.inFlightAtClose, 1);
    assert.equal(report.servers[0]!.cut, 1, 'counted from channelz');
    assert.deepEqual(
      report.errors.map((e) => e.code),
      ['CAP_ERR_RUNTIME_LIFECYCLE_DRAIN_TIMEOUT'],
    );
  } finally {
    client.close();
  }
});
