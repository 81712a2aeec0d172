// Correct proxying: streaming both ways, smuggling attempts refused (raw sockets), WebSocket pass-through,
// the idle timeout, HTTP/2 to TLS clients, and the admin port.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { connect as h2connect } from 'node:http2';
import { connect as netConnect } from 'node:net';
import { Readable } from 'node:stream';
import { after, before, test } from 'node:test';
import { Pool } from 'undici';
import { CertificateHolder, createCertAuthority, createLogger } from '../../runtime/index.ts';
import { createLoadBalancer, type LoadBalancer, type LoadBalancerOptions } from './load-balancer.ts';
import { HEALTH_PATH, startBackend, type TestBackend } from './testdata/backends.ts';
import { serveWebSocketEcho } from './testdata/websocket.ts';

const logger = createLogger({ name: 'lb-test', level: 'silent' });
let backend: TestBackend;

before(async () => {
  backend = await startBackend('b0');
  serveWebSocketEcho(backend.server);
});
after(async () => {
  await backend.kill();
});

async function withLb(
  options: Partial<LoadBalancerOptions>,
  fn: (lb: LoadBalancer) => Promise<void>,
): Promise<void> {
  const lb = createLoadBalancer({
    port: 0,
    host: '127.0.0.1',
    logger,
    lifecycle: { drainDelayMs: 0, idleGraceMs: 50 },
    backends: [backend.url],
    healthCheck: { path: HEALTH_PATH, intervalMs: 500 },
    ...options,
  });
  await lb.start();
  try {
    await fn(lb);
  } finally {
    await lb.stop();
  }
}

/** Send raw bytes, return everything the proxy answers before it closes (or 2 s pass). */
function raw(url: string, bytes: string): Promise<string> {
  const { port } = new URL(url);
  return new Promise((resolve) => {
    const socket = netConnect(Number(port), '127.0.0.1');
    let data = '';
    const timer = setTimeout(() => socket.destroy(), 2_000);
    socket.on('data', (c) => {
      data += c.toString('latin1');
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(data);
    });
    socket.write(bytes);
  });
}

test('request smuggling attempts get 400 and never reach the backend', async () => {
  const attempts: Record<string, string> = {
    'Content-Length with Transfer-Encoding':
      'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG',
    'two Content-Lengths':
      'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde',
    'a Content-Length list': 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4, 4\r\n\r\nabcd',
    'obs-fold': 'GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n',
    'bad chunk size':
      'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n',
    'chunked not last': 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n',
    'Transfer-Encoding twice':
      'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    'space before colon': 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n',
    'bare CR in a chunk':
      'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\rabc\r\n0\r\n\r\n',
    'two Host headers': 'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n',
    'HTTP/1.0 with Transfer-Encoding':
      'POST / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    'absolute-form target': 'GET http://evil.example/ HTTP/1.1\r\nHost: a\r\n\r\n',
  };
  await withLb({}, async (lb) => {
    const before = backend.served();
    for (const [name, bytes] of Object.entries(attempts)) {
      // A smuggled second request rides behind each attempt: it must not be served either.
      const answer = await raw(lb.url, `${bytes}GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n`);
      assert.match(answer, /^HTTP\/1\.1 400 /, `${name}: ${answer.slice(0, 80)}`);
      assert.equal(
        answer.match(/HTTP\/1\.1 /g)?.length,
        1,
        `${name}: one answer, then the connection closed`,
      );
      assert.equal(backend.served(), before, `${name}: the backend saw nothing`);
    }
    assert.equal(backend.served(), before, 'the backend saw none of them');
    // No framing doubt here (Node answers it before any handler), so only the request itself is checked.
    assert.match(await raw(lb.url, 'GET / HTTP/1.1\r\n\r\n'), /^HTTP\/1\.1 400 /, 'no Host');
    assert.equal(backend.served(), before);
    assert.equal(backend.hits.get('/smuggled'), undefined);
    // A well-formed request on the same kind of socket goes through.
    assert.match(
      await raw(lb.url, 'GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n'),
      /^HTTP\/1\.1 200 [\s\S]*b0$/,
    );
  });
});

test('bodies stream both ways: a 4 MiB upload is echoed intact, a response arrives before it ends', async () => {
  backend.behaviour = (req, res) => {
    if (req.url === '/echo') {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      req.pipe(res);
      return;
    }
    if (req.url === '/drip') {
      res.writeHead(200);
      res.write('first\n');
      // The rest only once the client has told us (through another request) it saw the first part.
      dripRelease = () => res.end('last\n');
      return;
    }
    if (req.url === '/release') {
      dripRelease?.();
      res.end('released');
      return;
    }
    req.resume();
    res.end('b0');
  };
  let dripRelease: (() => void) | undefined;
  try {
    await withLb({}, async (lb) => {
      const client = new Pool(lb.url, { connections: 2 });
      const payload = randomBytes(4 * 1024 * 1024);
      async function* upload() {
        for (let i = 0; i < payload.length; i += 256 * 1024) yield payload.subarray(i, i + 256 * 1024);
      }
      const res = await client.request({ method: 'POST', path: '/echo', body: Readable.from(upload()) });
      assert.equal(res.statusCode, 200);
      const echoed = Buffer.from(await res.body.arrayBuffer());
      assert.equal(echoed.length, payload.length);
      assert.equal(
        createHash('sha256').update(echoed).digest('hex'),
        createHash('sha256').update(payload).digest('hex'),
      );

      const drip = await client.request({ method: 'GET', path: '/drip' });
      const chunks: string[] = [];
      for await (const chunk of drip.body) {
        chunks.push(String(chunk));
        if (chunks.length === 1) {
          assert.equal(chunks[0], 'first\n', 'the first part arrived while the backend still held the rest');
          const release = await client.request({ method: 'GET', path: '/release' });
          await release.body.dump();
        }
      }
      assert.equal(chunks.join(''), 'first\nlast\n');
      await client.close();
    });
  } finally {
    backend.behaviour = (req, res) => {
      req.resume();
      req.once('end', () => res.end('b0'));
    };
  }
});

test('WebSocket: an echo through the proxy, and a refused upgrade relayed as is', async () => {
  await withLb({}, async (lb) => {
    const ws = new WebSocket(`${lb.url.replace('http', 'ws')}/chat`);
    const received: string[] = [];
    await new Promise<void>((resolve, reject) => {
      ws.onopen = () => {
        ws.send('hello');
        ws.send('x'.repeat(10_000));
      };
      ws.onmessage = (e) => {
        received.push(String(e.data));
        if (received.length === 2) ws.close(1000, 'done');
      };
      ws.onclose = () => resolve();
      ws.onerror = () => reject(new Error('websocket error'));
    });
    assert.deepEqual(received, ['hello', 'x'.repeat(10_000)]);
    const refused = await raw(
      lb.url,
      'GET /chat HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n',
    );
    assert.match(refused, /^HTTP\/1\.1 400 /, 'the echo server wants a key: its 400 comes back');
  });
});

test('idle timeout: a backend that stops sending mid-body is cut off, the client sees a broken response', async () => {
  backend.behaviour = (req, res) => {
    req.resume();
    res.writeHead(200, { 'content-length': '100' });
    res.write('partial');
  };
  try {
    await withLb({ timeouts: { idleMs: 300 } }, async (lb) => {
      const client = new Pool(lb.url);
      const res = await client.request({ method: 'GET', path: '/' });
      assert.equal(res.statusCode, 200);
      await assert.rejects(res.body.text());
      await client.destroy();
    });
  } finally {
    backend.behaviour = (req, res) => {
      req.resume();
      req.once('end', () => res.end('b0'));
    };
  }
});

test('with TLS: HTTP/2 to clients that offer it, HTTP/1.1 to the others', async () => {
  const ca = await createCertAuthority('lb-test-ca');
  const pair = await ca.issue({ commonName: 'localhost', ipAddresses: ['127.0.0.1'], usage: 'server' });
  await withLb({ tls: { certificate: new CertificateHolder(pair) } }, async (lb) => {
    assert.match(lb.url, /^https:/);
    const session = h2connect(lb.url, { ca: ca.certPem });
    const get = (method: string, path: string, body?: string) =>
      new Promise<{ status: number; body: string; headers: Record<string, unknown> }>((resolve, reject) => {
        const stream = session.request({ ':method': method, ':path': path, 'x-test': '1' });
        let text = '';
        let status = 0;
        let headers: Record<string, unknown> = {};
        stream.on('response', (h) => {
          status = Number(h[':status']);
          headers = h;
        });
        stream.on('data', (c) => {
          text += c;
        });
        stream.on('end', () => resolve({ status, body: text, headers }));
        stream.on('error', reject);
        stream.end(body);
      });
    const res = await get('GET', '/');
    assert.equal(res.status, 200);
    assert.equal(res.body, 'b0');
    assert.equal(backend.lastHeaders?.['x-forwarded-proto'], 'https');
    assert.match(
      String(backend.lastHeaders?.host),
      /^127\.0\.0\.1:\d+$/,
      'the backend gets :authority as Host',
    );
    // A request body over HTTP/2 streams to the backend (no Content-Length: undici sends it chunked).
    backend.behaviour = (req, res) => {
      let n = 0;
      req.on('data', (c: Buffer) => {
        n += c.length;
      });
      req.on('end', () =>
        res.end(`got ${n} ${req.headers['transfer-encoding'] ?? req.headers['content-length']}`),
      );
    };
    try {
      const posted = await get('POST', '/upload', 'x'.repeat(100_000));
      assert.equal(posted.status, 200);
      assert.match(posted.body, /^got 100000 /);
    } finally {
      backend.behaviour = (req, res) => {
        req.resume();
        req.once('end', () => res.end('b0'));
      };
    }
    session.close();

    // WebSocket over TLS: the HTTP/1.1 upgrade on the HTTP/2 server's allowHTTP1 side.
    const { Agent } = await import('undici');
    const wsAgent = new Agent({ connect: { ca: ca.certPem } });
    const ws = new WebSocket(`${lb.url.replace('https', 'wss')}/chat`, { dispatcher: wsAgent } as never);
    const echoed = await new Promise<string>((resolve, reject) => {
      ws.onopen = () => ws.send('over tls');
      ws.onmessage = (e) => {
        resolve(String(e.data));
        ws.close();
      };
      ws.onerror = () => reject(new Error('wss error'));
    });
    assert.equal(echoed, 'over tls');
    await wsAgent.close();

    const https = new Pool(lb.url, { connect: { ca: ca.certPem } });
    const h1 = await https.request({ method: 'GET', path: '/' });
    assert.equal(h1.statusCode, 200);
    assert.equal(await h1.body.text(), 'b0');
    await https.close();
  });
});

test('admin port: health and metrics there, every path of the proxy port goes to the backends', async () => {
  await withLb({ admin: { port: 0, host: '127.0.0.1' } }, async (lb) => {
    const client = new Pool(lb.url);
    const proxied = await client.request({ method: 'GET', path: '/metrics' });
    assert.equal(await proxied.body.text(), 'b0', '/metrics on the proxy port is the backend’s');
    await client.close();
    const admin = new Pool(lb.admin!.url);
    const metrics = await admin.request({ method: 'GET', path: '/metrics' });
    const text = await metrics.body.text();
    assert.match(
      text,
      new RegExp(`capstan_lb_backend_requests_total\\{backend="${backend.url}",code="2xx"\\} [1-9]`),
    );
    assert.match(text, new RegExp(`capstan_lb_backend_healthy\\{backend="${backend.url}"\\} 1`));
    assert.match(text, /capstan_lb_backend_request_duration_seconds_bucket/);
    const ready = await admin.request({ method: 'GET', path: '/readyz' });
    assert.equal(ready.statusCode, 200);
    await ready.body.dump();
    await admin.close();
  });
});
