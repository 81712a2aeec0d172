// Slow and hostile clients against real sockets: each is cut by the configured limit while another client
// is served. Timeouts are short here (1-2 s) so a cut comes quickly; the tests wait for outcomes (a socket
// the server closed, a status, a refused stream) with deadlines that only a missing limit misses: Node's
// own defaults (headers 60 s, request 300 s, no HTTP/2 timeouts, 2^32-1 streams) would hang each one.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http2 from 'node:http2';
import { type AddressInfo, connect, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import { after, describe, test } from 'node:test';
import { createLogger } from '../log/logger.ts';
import { ServiceErrorCode } from './errors.ts';
import { defaultServerLimits, limitHttp2Server, resolveServerLimits, type ServerLimits } from './limits.ts';
import { createService } from './service.ts';

/** Longer than any limit below, far shorter than Node's defaults. */
const DEADLINE_MS = 20_000;

const quiet = () =>
  createLogger({
    name: 'svc',
    format: 'json',
    destination: new Writable({ write: (_c, _e, cb) => cb() }),
  });

/** Resolves with what the server sent once it closed the socket; rejects if it is still open at the deadline. */
function closedByServer(socket: Socket, what: string): Promise<string> {
  let out = '';
  socket.on('data', (d: Buffer) => {
    out += d.toString('latin1');
  });
  socket.on('error', () => {});
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`${what}: the server did not close the connection in ${DEADLINE_MS} ms`));
    }, DEADLINE_MS);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(out);
    });
  });
}

/** Write `bytes` one byte every 100 ms: over and over, or once when `repeat` is false (or the socket closes). */
function dribble(socket: Socket, bytes: string | Buffer, repeat = true): void {
  const buf = typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes;
  let i = 0;
  const timer = setInterval(() => {
    if (socket.destroyed || !socket.writable || (!repeat && i >= buf.length)) return clearInterval(timer);
    socket.write(buf.subarray(i % buf.length, (i % buf.length) + 1));
    i++;
  }, 100);
  socket.once('close', () => clearInterval(timer));
}

async function connected(port: number): Promise<Socket> {
  const socket = connect({ port, host: '127.0.0.1' });
  await once(socket, 'connect');
  return socket;
}

describe('HTTP/1.1 limits of createService', () => {
  async function service(limits: Partial<ServerLimits>) {
    const svc = createService({
      name: 'svc',
      port: 0,
      host: '127.0.0.1',
      logger: quiet(),
      defaultMetrics: false,
      lifecycle: { drainDelayMs: 0, drainTimeoutMs: 1_000 },
      limits,
      routes: {
        '/upload': async (req, res) => {
          let bytes = 0;
          try {
            for await (const chunk of req) bytes += (chunk as Buffer).length;
          } catch {
            return;
          }
          res.end(`got ${bytes}`);
        },
      },
    });
    const url = await svc.start();
    return { svc, url, port: Number(new URL(url).port) };
  }

  test('headers sent a byte at a time, never finished: 408 and closed after headersTimeoutMs; another client is served', async () => {
    const { svc, url, port } = await service({ headersTimeoutMs: 1_000, requestTimeoutMs: 2_000 });
    try {
      const slow = await connected(port);
      const cut = closedByServer(slow, 'slow headers');
      slow.write('GET /livez HTTP/1.1\r\nHost: x\r\n');
      dribble(slow, 'X-Slow: aaaaaaaaaa\r\n');
      const other = await fetch(`${url}/livez`);
      assert.equal(other.status, 200);
      const out = await cut;
      assert.match(out, /^HTTP\/1\.1 408 /);
    } finally {
      await svc.stop();
    }
  });

  test('a body that never ends: 408 and closed after requestTimeoutMs; another client is served', async () => {
    const { svc, url, port } = await service({ headersTimeoutMs: 1_000, requestTimeoutMs: 2_000 });
    try {
      const slow = await connected(port);
      const cut = closedByServer(slow, 'endless body');
      slow.write('POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\nstart');
      dribble(slow, 'body');
      const other = await fetch(`${url}/upload`, { method: 'POST', body: 'whole' });
      assert.equal(await other.text(), 'got 5');
      const out = await cut;
      assert.match(out, /^HTTP\/1\.1 408 /);
    } finally {
      await svc.stop();
    }
  });

  test('connections past maxConnections are closed on accept; those within are served', async () => {
    const { svc, port } = await service({ maxConnections: 2 });
    try {
      const held = [await connected(port), await connected(port)];
      const extra = await connected(port);
      const out = await closedByServer(extra, 'third connection');
      assert.equal(out, '', 'closed without an answer');
      // The two within the cap still get answers.
      for (const socket of held) {
        const answered = closedByServer(socket, 'held connection');
        socket.write('GET /livez HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
        assert.match(await answered, /^HTTP\/1\.1 200 /);
      }
    } finally {
      await svc.stop();
    }
  });

  test('limits are checked: zero, fractions and headers above the request timeout are refused', () => {
    for (const bad of [
      { headersTimeoutMs: 0 },
      { maxConcurrentStreams: 1.5 },
      { idleTimeoutMs: -1 },
      { headersTimeoutMs: 5_000, requestTimeoutMs: 1_000 },
    ]) {
      assert.throws(
        () => createService({ name: 'svc', port: 0, limits: bad }),
        (err: { code?: string }) => err.code === ServiceErrorCode.invalid,
      );
    }
    assert.deepEqual(resolveServerLimits(), defaultServerLimits);
  });
});

describe('HTTP/2 limits of limitHttp2Server', () => {
  const servers: http2.Http2Server[] = [];
  const held: http2.ServerHttp2Stream[] = [];
  after(() => {
    for (const s of held) s.destroy();
    for (const s of servers) s.close();
  });

  async function h2server(limits: Partial<ServerLimits>): Promise<{ port: number; url: string }> {
    const server = limitHttp2Server(http2.createServer(), limits);
    server.on('stream', (stream, headers) => {
      stream.on('error', () => {});
      const path = headers[':path'];
      if (path === '/hold') {
        held.push(stream);
        return;
      }
      if (path === '/upload') {
        let bytes = 0;
        stream.on('data', (d: Buffer) => (bytes += d.length));
        stream.on('end', () => {
          if (!stream.closed) stream.respond({ ':status': 200 });
          stream.end(`got ${bytes}`);
        });
        return;
      }
      stream.respond({ ':status': 200 });
      stream.end('ok');
    });
    servers.push(server);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as AddressInfo;
    return { port, url: `http://127.0.0.1:${port}` };
  }

  /** One request on a new session: status and body. */
  async function get(url: string, path = '/'): Promise<{ status: number; body: string }> {
    const client = http2.connect(url);
    client.on('error', () => {});
    try {
      const req = client.request({ ':path': path });
      const [headers] = (await once(req, 'response')) as [http2.IncomingHttpHeaders];
      let body = '';
      for await (const chunk of req) body += chunk;
      return { status: Number(headers[':status']), body };
    } finally {
      client.close();
    }
  }

  // Hand-made frames, so a client can do what node:http2's client will not (dribble, exceed the cap).
  const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
  function frame(type: number, flags: number, streamId: number, payload = Buffer.alloc(0)): Buffer {
    const head = Buffer.alloc(9);
    head.writeUIntBE(payload.length, 0, 3);
    head[3] = type;
    head[4] = flags;
    head.writeUInt32BE(streamId, 5);
    return Buffer.concat([head, payload]);
  }
  /** HEADERS (END_STREAM | END_HEADERS) for `GET path`, HPACK literals without indexing: no table state. */
  function getHeaders(streamId: number, path: string): Buffer {
    const lit = (index: number, value: string) =>
      Buffer.concat([Buffer.from([index, value.length]), Buffer.from(value, 'latin1')]);
    const block = Buffer.concat([Buffer.from([0x82, 0x86]), lit(4, path), lit(1, 'localhost')]);
    return frame(0x1, 0x5, streamId, block);
  }
  /** Frames the server sends on `socket`, as they arrive. */
  function serverFrames(socket: Socket): Array<{ type: number; streamId: number; code?: number }> {
    const frames: Array<{ type: number; streamId: number; code?: number }> = [];
    let buf = Buffer.alloc(0);
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 9 && buf.length >= 9 + buf.readUIntBE(0, 3)) {
        const length = buf.readUIntBE(0, 3);
        const type = buf[3]!;
        const streamId = buf.readUInt32BE(5) & 0x7fffffff;
        const payload = buf.subarray(9, 9 + length);
        // RST_STREAM carries its error code first, GOAWAY after the last stream id.
        const code =
          type === 0x3 ? payload.readUInt32BE(0) : type === 0x7 ? payload.readUInt32BE(4) : undefined;
        frames.push({ type, streamId, ...(code === undefined ? {} : { code }) });
        buf = buf.subarray(9 + length);
      }
    });
    return frames;
  }

  async function until(cond: () => boolean, what: string): Promise<void> {
    const deadline = performance.now() + DEADLINE_MS;
    while (!cond()) {
      if (performance.now() > deadline) throw new Error(`${what}: not seen in ${DEADLINE_MS} ms`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  test('a stream whose request body never ends is answered 408 after requestTimeoutMs; another client is served', async () => {
    const { url } = await h2server({ headersTimeoutMs: 1_000, requestTimeoutMs: 2_000 });
    const client = http2.connect(url);
    client.on('error', () => {});
    try {
      const req = client.request({ ':method': 'POST', ':path': '/upload' });
      req.on('error', () => {});
      req.write('start');
      const timer = setInterval(() => req.writable && req.write('x'), 100);
      req.once('close', () => clearInterval(timer));
      const other = await get(url, '/upload');
      assert.equal(other.status, 200);
      const [headers] = (await once(req, 'response', {
        signal: AbortSignal.timeout(DEADLINE_MS),
      })) as [http2.IncomingHttpHeaders];
      assert.equal(headers[':status'], 408);
      await until(() => req.closed, 'the endless stream closed');
    } finally {
      client.destroy();
    }
  });

  test('streams past maxConcurrentStreams in one session are refused (REFUSED_STREAM); another client is served', async () => {
    const { port, url } = await h2server({ maxConcurrentStreams: 2 });
    const socket = await connected(port);
    const frames = serverFrames(socket);
    socket.on('error', () => {});
    try {
      // All in one flight: the client never ACKs the server's SETTINGS, so no client-side cap applies.
      socket.write(
        Buffer.concat([
          PREFACE,
          frame(0x4, 0, 0),
          getHeaders(1, '/hold'),
          getHeaders(3, '/hold'),
          getHeaders(5, '/hold'),
          getHeaders(7, '/hold'),
        ]),
      );
      await until(() => frames.filter((f) => f.type === 0x3).length >= 2, 'two RST_STREAM');
      const resets = frames.filter((f) => f.type === 0x3);
      assert.deepEqual(
        resets.map((f) => [f.streamId, f.code]),
        [
          [5, http2.constants.NGHTTP2_REFUSED_STREAM],
          [7, http2.constants.NGHTTP2_REFUSED_STREAM],
        ],
      );
      assert.equal((await get(url)).body, 'ok');
    } finally {
      socket.destroy();
    }
  });

  test('a session dribbling its first request a byte at a time is cut after headersTimeoutMs; another client is served', async () => {
    const { port, url } = await h2server({ headersTimeoutMs: 1_000, requestTimeoutMs: 2_000 });
    const slow = await connected(port);
    const frames = serverFrames(slow);
    const cut = closedByServer(slow, 'dribbled request headers');
    // Valid all the way: preface, SETTINGS, then one HEADERS frame whose 16 KB header value would take
    // half an hour at this pace (the literal's length is an HPACK integer: 127 + 15873 in 7-bit groups).
    const value = 16_000;
    const block = Buffer.concat([
      Buffer.from([0x82, 0x86, 0x84, 0x00, 6]),
      Buffer.from('x-slow', 'latin1'),
      Buffer.from([0x7f, ((value - 127) & 0x7f) | 0x80, (value - 127) >> 7]),
      Buffer.alloc(value, 'a'),
    ]);
    dribble(slow, Buffer.concat([PREFACE, frame(0x4, 0, 0), frame(0x1, 0x5, 1, block)]), false);
    assert.equal((await get(url)).body, 'ok');
    await cut;
    assert.ok(
      frames.some((f) => f.type === 0x7),
      'GOAWAY before the close',
    );
  });

  test('an idle session is closed with GOAWAY after idleTimeoutMs', async () => {
    const { url } = await h2server({ idleTimeoutMs: 1_000 });
    const client = http2.connect(url);
    client.on('error', () => {});
    let goaway = false;
    client.on('goaway', () => {
      goaway = true;
    });
    try {
      const req = client.request({ ':path': '/' });
      let body = '';
      for await (const chunk of req) body += chunk;
      assert.equal(body, 'ok');
      await until(() => client.closed || client.destroyed, 'the idle session closed');
      assert.ok(goaway, 'the server sent GOAWAY');
    } finally {
      client.destroy();
    }
  });

  test('sessions past maxConnections are closed on accept', async () => {
    const { port } = await h2server({ maxConnections: 1 });
    const first = await connected(port);
    const firstFrames = serverFrames(first);
    first.write(Buffer.concat([PREFACE, frame(0x4, 0, 0)]));
    await until(() => firstFrames.some((f) => f.type === 0x4), 'SETTINGS on the first session');
    const extra = await connected(port);
    assert.equal(await closedByServer(extra, 'second session'), '');
    first.destroy();
  });
});
