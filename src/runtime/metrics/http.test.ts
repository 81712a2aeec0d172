import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import {
  Counter,
  Gauge,
  instrumentHttpServer,
  MetricsRegistry,
  metricsHandler,
  OPENMETRICS_CONTENT_TYPE,
  TEXT_CONTENT_TYPE,
} from './index.ts';
import { parseSamples, promtoolCheck } from './testdata/promtool.ts';

// Prometheus 2.42's scrape Accept header, verbatim.
const PROMETHEUS_ACCEPT =
  'application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1';

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

function call(
  port: number,
  path: string,
  options: { method?: string; headers?: Record<string, string> } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: options.method ?? 'GET',
        headers: options.headers ?? {},
        signal: AbortSignal.timeout(30_000),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

async function listen(server: Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

async function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
}

describe('metrics over HTTP', () => {
  const reg = new MetricsRegistry({ maxSeriesPerMetric: Number.POSITIVE_INFINITY });
  let server: Server;
  let port: number;
  const release = deferred();

  before(async () => {
    const c = new Counter({ name: 'web_hits_total', help: 'Hits.', labelNames: ['page'], registers: [reg] });
    for (let i = 0; i < 20_000; i++) c.inc({ page: `/p/${i}` }, i % 7);
    new Gauge({ name: 'web_temp_celsius', help: 'Temp.', unit: 'celsius', registers: [reg] }).set(21.5);
    let calls = 0;
    reg.registerCollector({
      name: 'upstream',
      intervalMs: 10,
      timeoutMs: 120_000,
      describe: () => [{ name: 'upstream_items', help: 'Items upstream.', type: 'gauge' }],
      async collect() {
        calls++;
        if (calls > 1) await release.promise; // the source hangs from the second read on
        return [{ name: 'upstream_items', value: 42 }];
      },
    });
    // Wait (bounded) until the first read is cached and the second one hangs.
    const deadline = Date.now() + 10_000;
    while (calls < 2 || reg.collectorStatus()[0]!.collections < 1) {
      if (Date.now() > deadline) throw new Error('collector did not start');
      await new Promise((r) => setTimeout(r, 5));
    }
    server = createServer((req, res) => {
      if (reg.handle(req, res)) return;
      res.writeHead(404).end('not here\n');
    });
    port = await listen(server);
  });

  after(async () => {
    release.resolve();
    await closeServer(server);
    await reg.close();
  });

  test('text 0.0.4 by default, streamed, valid for promtool, with cached collector values', async () => {
    const r = await call(port, '/metrics');
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], TEXT_CONTENT_TYPE);
    const text = r.body.toString('utf8');
    const samples = parseSamples(text);
    assert.equal(samples.get('web_hits_total{page="/p/19999"}'), String(19_999 % 7));
    assert.equal(samples.get('upstream_items'), '42');
    assert.ok(reg.collectorStatus()[0]!.collecting, 'the source was still hanging during the scrape');
    const check = await promtoolCheck(text);
    assert.equal(check.code, 0, check.output);
  });

  test("Prometheus's Accept header gets OpenMetrics with # EOF", async () => {
    const r = await call(port, '/metrics', { headers: { accept: PROMETHEUS_ACCEPT } });
    assert.equal(r.headers['content-type'], OPENMETRICS_CONTENT_TYPE);
    const body = r.body.toString('utf8');
    assert.ok(body.endsWith('# EOF\n'));
    assert.match(body, /^# UNIT web_temp_celsius celsius$/m);
    assert.match(body, /^# TYPE web_hits counter$/m);
  });

  test('text preferred over OpenMetrics by q-value gets text; a plain browser Accept gets text', async () => {
    const a = await call(port, '/metrics', {
      headers: { accept: 'application/openmetrics-text;q=0.2,text/plain;q=0.9' },
    });
    assert.equal(a.headers['content-type'], TEXT_CONTENT_TYPE);
    const b = await call(port, '/metrics', { headers: { accept: 'text/html,*/*;q=0.8' } });
    assert.equal(b.headers['content-type'], TEXT_CONTENT_TYPE);
    const c = await call(port, '/metrics', { headers: { accept: 'application/openmetrics-text;q=0' } });
    assert.equal(c.headers['content-type'], TEXT_CONTENT_TYPE);
  });

  test('gzip when accepted; the body inflates to the same exposition', async () => {
    const plain = await call(port, '/metrics');
    const zipped = await call(port, '/metrics', { headers: { 'accept-encoding': 'br, gzip;q=0.8' } });
    assert.equal(zipped.headers['content-encoding'], 'gzip');
    assert.ok(zipped.body.length < plain.body.length / 3);
    const a = parseSamples(gunzipSync(zipped.body).toString('utf8'));
    const b = parseSamples(plain.body.toString('utf8'));
    assert.equal(a.size, b.size);
    const refused = await call(port, '/metrics', { headers: { 'accept-encoding': 'gzip;q=0' } });
    assert.equal(refused.headers['content-encoding'], undefined);
  });

  test('HEAD has headers and no body, POST is 405, other paths fall through', async () => {
    const head = await call(port, '/metrics', { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.body.length, 0);
    const post = await call(port, '/metrics', { method: 'POST' });
    assert.equal(post.status, 405);
    assert.equal(post.headers.allow, 'GET, HEAD');
    const other = await call(port, '/metricsx');
    assert.equal(other.status, 404);
    const query = await call(port, '/metrics?name[]=x');
    assert.equal(query.status, 200);
  });
});

describe('metricsHandler', () => {
  test('a metric whose collect() throws turns the scrape into a 500, not a truncated 200', async () => {
    const reg = new MetricsRegistry();
    // Enough series ahead of the broken metric to span several chunks and slices.
    const c = new Counter({ name: 'before_total', help: 'b', labelNames: ['i'], registers: [reg] });
    for (let i = 0; i < 5000; i++) c.inc({ i: String(i) });
    new Gauge({
      name: 'broken',
      help: 'b',
      registers: [reg],
      collect() {
        throw new Error('sensor unplugged');
      },
    });
    const server = createServer(metricsHandler(reg));
    const port = await listen(server);
    try {
      const r = await call(port, '/anything');
      assert.equal(r.status, 500);
      assert.match(r.body.toString(), /sensor unplugged/);
    } finally {
      await closeServer(server);
    }
  });
});

describe('instrumentHttpServer', () => {
  test('counts requests by method and status class, times them, tracks in-flight', async () => {
    const reg = new MetricsRegistry();
    let inFlightSeen = -1;
    const server = createServer(async (req, res) => {
      if (reg.handle(req, res)) return;
      if (req.url === '/slow') {
        inFlightSeen = Number(parseSamples(await reg.metrics()).get('http_server_requests_in_flight'));
      }
      res.writeHead(req.url === '/missing' ? 404 : req.url === '/boom' ? 503 : 200).end('x');
    });
    const detach = instrumentHttpServer(server, reg);
    const port = await listen(server);
    try {
      for (let i = 0; i < 3; i++) await call(port, '/ok');
      await call(port, '/ok', { method: 'POST' });
      await call(port, '/missing');
      await call(port, '/boom', { method: 'DELETE' });
      await call(port, '/ok', { method: 'PROPFIND' });
      await call(port, '/slow');
      await call(port, '/metrics'); // ignored by default
      const out = parseSamples(await reg.metrics());
      assert.equal(out.get('http_server_requests_total{method="GET",code="2xx"}'), '4');
      assert.equal(out.get('http_server_requests_total{method="POST",code="2xx"}'), '1');
      assert.equal(out.get('http_server_requests_total{method="GET",code="4xx"}'), '1');
      assert.equal(out.get('http_server_requests_total{method="DELETE",code="5xx"}'), '1');
      assert.equal(out.get('http_server_requests_total{method="OTHER",code="2xx"}'), '1');
      assert.equal(out.get('http_server_request_duration_seconds_count{method="GET",code="2xx"}'), '4');
      assert.equal(out.get('http_server_requests_in_flight'), '0');
      assert.equal(inFlightSeen, 1);
      // A second server shares the same metrics instead of failing on duplicate names.
      const other = createServer((_req, res) => res.end());
      instrumentHttpServer(other, reg)();
      detach();
      await call(port, '/ok');
      const after = parseSamples(await reg.metrics());
      assert.equal(after.get('http_server_requests_total{method="GET",code="2xx"}'), '4');
      const check = await promtoolCheck(await reg.metrics());
      assert.equal(check.code, 0, check.output);
    } finally {
      await closeServer(server);
    }
  });

  test('a client that hangs up is counted as aborted', async () => {
    const reg = new MetricsRegistry();
    const arrived = deferred();
    const server = createServer((_req, _res) => {
      arrived.resolve(); // never answers
    });
    instrumentHttpServer(server, reg);
    const port = await listen(server);
    try {
      const req = request({ host: '127.0.0.1', port, path: '/hang' });
      req.on('error', () => {});
      req.end();
      await arrived.promise;
      req.destroy();
      const deadline = Date.now() + 10_000;
      let out = parseSamples(await reg.metrics());
      while (!out.has('http_server_requests_total{method="GET",code="aborted"}') && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 10));
        out = parseSamples(await reg.metrics());
      }
      assert.equal(out.get('http_server_requests_total{method="GET",code="aborted"}'), '1');
      assert.equal(out.get('http_server_requests_in_flight'), '0');
    } finally {
      await closeServer(server);
    }
  });
});
