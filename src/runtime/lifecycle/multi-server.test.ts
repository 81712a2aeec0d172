// One lifecycle, four kinds of server at once (HTTP/1.1, HTTPS, HTTP/2 cleartext, gRPC): one shutdown drains
// the in-flight request of each, closes every listener, and reports each server.
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { createTestCertificates } from '../../testing/index.ts';
import { canConnect } from '../net/ports.ts';
import { Lifecycle } from './lifecycle.ts';
import { callEcho, echoClient, echoService } from './testdata/echo-grpc.ts';

function listen(server: http.Server | https.Server | http2.Http2Server): Promise<number> {
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)),
  );
}

test('one shutdown drains HTTP, HTTPS, HTTP/2 and gRPC servers together; each in-flight request completes', async () => {
  // Every handler waits at the gate, so all four requests are in flight when shutdown begins.
  let open!: () => void;
  const gate = new Promise<void>((r) => {
    open = r;
  });
  let arrived = 0;
  let allArrived!: () => void;
  const everyoneIn = new Promise<void>((r) => {
    allArrived = r;
  });
  const enter = () => {
    if (++arrived === 4) allArrived();
  };
  const handler = (kind: string) => (_req: unknown, res: http.ServerResponse | http2.Http2ServerResponse) => {
    enter();
    void gate.then(() => res.end(`${kind} done`));
  };

  const certs = await createTestCertificates();
  const plain = http.createServer(handler('http'));
  const secure = https.createServer({ key: certs.keyPem, cert: certs.certPem }, handler('https'));
  const h2 = http2.createServer(handler('h2'));
  const rpc = new grpc.Server();
  rpc.addService(echoService, {
    echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
      enter();
      void gate.then(() => callback(null, Buffer.concat([Buffer.from('grpc '), call.request])));
    },
  });

  const lifecycle = new Lifecycle({ drainDelayMs: 0, idleGraceMs: 200, drainTimeoutMs: 30_000 });
  lifecycle
    .addServer(plain, { name: 'http' })
    .addServer(secure, { name: 'https' })
    .addServer(h2, { name: 'h2' })
    .addServer(rpc, { name: 'grpc' });
  const [httpPort, httpsPort, h2Port] = await Promise.all([listen(plain), listen(secure), listen(h2)]);
  const grpcPort = await new Promise<number>((resolve, reject) =>
    rpc.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );

  const get = (mod: typeof http | typeof https, port: number, extra: https.RequestOptions = {}) =>
    new Promise<{ body: string; connection: string | undefined }>((resolve, reject) => {
      mod
        .get({ host: '127.0.0.1', port, path: '/', ...extra }, (res) => {
          let body = '';
          res.setEncoding('utf8').on('data', (c: string) => (body += c));
          res.on('end', () => resolve({ body, connection: res.headers.connection }));
        })
        .on('error', reject);
    });
  const h2Client = http2.connect(`http://127.0.0.1:${h2Port}`);
  h2Client.on('error', () => {});
  const h2Request = new Promise<string>((resolve, reject) => {
    const req = h2Client.request({ ':path': '/' });
    let body = '';
    req.setEncoding('utf8').on('data', (c: string) => (body += c));
    req.on('end', () => resolve(body)).on('error', reject);
  });
  const rpcClient = echoClient(grpcPort);
  try {
    const requests = Promise.all([
      get(http, httpPort),
      get(https, httpsPort, { ca: certs.caPem }),
      h2Request,
      callEcho(rpcClient, 'call'),
    ]);
    await everyoneIn;
    const reportPromise = lifecycle.shutdown('test');
    await new Promise((r) => setTimeout(r, 100));
    // Every listener is closed while its request is still running.
    for (const port of [httpPort, httpsPort, h2Port, grpcPort]) {
      assert.equal(await canConnect(port), false, `port ${port} closed during the drain`);
    }
    open();
    const [fromHttp, fromHttps, fromH2, fromGrpc] = await requests;
    assert.deepEqual(
      [fromHttp.body, fromHttps.body, fromH2, fromGrpc],
      ['http done', 'https done', 'h2 done', 'grpc call'],
    );
    assert.equal(fromHttp.connection, 'close');
    assert.equal(fromHttps.connection, 'close');
    const report = await reportPromise;
    assert.equal(report.exitCode, 0, JSON.stringify(report.errors));
    assert.deepEqual(
      report.servers.map((s) => [s.name, s.kind, s.inFlightAtClose, s.cut, s.forced]),
      [
        ['http', 'http', 1, 0, false],
        ['https', 'https', 1, 0, false],
        ['h2', 'http2', 1, 0, false],
        ['grpc', 'grpc', 1, 0, false],
      ],
    );
  } finally {
    h2Client.destroy();
    rpcClient.close();
    rpc.forceShutdown();
  }
});
