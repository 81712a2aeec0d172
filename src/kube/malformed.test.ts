// What the client does with answers the real apiserver never sends (garbage, truncated streams, events
// without a type) or sends only in states a test cannot reach on demand: a small local HTTP server plays
// the apiserver here. Everything the apiserver can do for real is tested against it in client.test.ts
// and watcher.test.ts.
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { ConfigMap, KubeClient, KubeError, type WatcherNotice, watcher } from 'capstan/kube';
import { freePort } from 'capstan/runtime';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;
let handler: Handler = (_req, res) => res.end();
const requests: string[] = [];
const server = createServer((req, res) => {
  requests.push(`${req.method} ${req.url}`);
  handler(req, res);
});
let kube: KubeClient;

before(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  kube = new KubeClient(
    { server: `http://127.0.0.1:${port}`, namespace: 'default' },
    { http: { retry: false } },
  );
});
after(async () => {
  await kube.close();
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

const status = (code: number, reason: string, message: string) =>
  JSON.stringify({ apiVersion: 'v1', kind: 'Status', status: 'Failure', code, reason, message });

function answer(code: number, body: string, type = 'application/json'): Handler {
  return (_req, res) => {
    res.writeHead(code, { 'content-type': type });
    res.end(body);
  };
}

const isKube = (code: string, extra?: (e: KubeError) => void) => (e: unknown) => {
  assert.ok(e instanceof KubeError, String(e));
  assert.equal(e.code, code, e.message);
  extra?.(e);
  return true;
};

describe('answers that are not what the API promises', () => {
  const cms = () => kube.resource(ConfigMap, 'default');

  test('a 2xx body that is not JSON fails with CAP_ERR_KUBE_DECODE', async () => {
    handler = answer(200, '<html>proxy login</html>', 'text/html');
    await assert.rejects(cms().get('a'), isKube('CAP_ERR_KUBE_DECODE'));
  });

  test('an error status maps to its code, with the Status reason; a non-Status body keeps its text', async () => {
    handler = answer(409, status(409, 'AlreadyExists', 'configmaps "a" already exists'));
    await assert.rejects(
      cms().create({ metadata: { name: 'a' } }),
      isKube('CAP_ERR_KUBE_CONFLICT', (e) => {
        assert.equal(e.status, 409);
        assert.equal(e.reason, 'AlreadyExists');
        assert.match(e.message, /already exists/);
      }),
    );
    handler = answer(500, '<h1>Internal</h1>', 'text/html');
    await assert.rejects(
      cms().list(),
      isKube('CAP_ERR_KUBE_API', (e) => {
        assert.equal(e.reason, '');
        assert.match(e.message, /500 <h1>Internal/);
      }),
    );
  });

  test('a watch line that is not JSON, or an event without a type, fails with CAP_ERR_KUBE_DECODE', async () => {
    handler = answer(200, '{"type":"ADDED","object":{}}\n{not json}\n');
    const seen: string[] = [];
    await assert.rejects(
      (async () => {
        for await (const e of cms().watch()) seen.push(e.type);
      })(),
      isKube('CAP_ERR_KUBE_DECODE'),
    );
    assert.deepEqual(seen, ['ADDED']);
    handler = answer(200, '{"object":{}}\n');
    await assert.rejects(
      (async () => {
        for await (const _ of cms().watch()) {
        }
      })(),
      isKube('CAP_ERR_KUBE_DECODE'),
    );
  });

  test('an object cut off mid-stream fails the watch; the watcher reconnects from the last version', async () => {
    const watches: string[] = [];
    handler = (req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      if (url.searchParams.get('watch') !== 'true') {
        // The list.
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ kind: 'ConfigMapList', metadata: { resourceVersion: '10' }, items: [] }));
        return;
      }
      watches.push(url.searchParams.get('resourceVersion') ?? '');
      res.writeHead(200, { 'content-type': 'application/json' });
      if (watches.length === 1) {
        const cm = { metadata: { name: 'a', namespace: 'default', resourceVersion: '11' } };
        res.write(`${JSON.stringify({ type: 'ADDED', object: cm })}\n{"type":"MODIFIED","obj`);
        // The connection dies mid-object.
        setTimeout(() => res.destroy(), 20);
        return;
      }
      const cm = { metadata: { name: 'a', namespace: 'default', resourceVersion: '12' } };
      res.end(`${JSON.stringify({ type: 'MODIFIED', object: cm })}\n`);
    };
    const stop = new AbortController();
    const notices: WatcherNotice[] = [];
    const versions: string[] = [];
    for await (const e of watcher(cms(), {
      signal: stop.signal,
      backoff: { initialMs: 10, maxMs: 10 },
      onNotice: (n) => notices.push(n),
    })) {
      if (e.type === 'apply') versions.push(e.object.metadata?.resourceVersion ?? '');
      if (versions.length === 2) stop.abort();
    }
    assert.deepEqual(versions, ['11', '12']);
    assert.deepEqual(watches, ['10', '11']);
    const reconnect = notices.find((n) => n.type === 'reconnecting');
    assert.ok(reconnect, JSON.stringify(notices));
    assert.ok(reconnect.error instanceof KubeError);
    assert.ok(['CAP_ERR_KUBE_CONNECT', 'CAP_ERR_KUBE_DECODE'].includes(reconnect.error.code));
  });

  test('a watcher the apiserver forbids ends with CAP_ERR_KUBE_FORBIDDEN instead of retrying forever', async () => {
    requests.length = 0;
    handler = answer(403, status(403, 'Forbidden', 'configmaps is forbidden: User "x" cannot list'));
    await assert.rejects(
      (async () => {
        for await (const _ of watcher(cms(), { backoff: { initialMs: 10 } })) {
        }
      })(),
      isKube('CAP_ERR_KUBE_FORBIDDEN', (e) => assert.equal(e.reason, 'Forbidden')),
    );
    assert.equal(requests.length, 1);
  });

  test('an apiserver that cannot be reached fails with CAP_ERR_KUBE_CONNECT', async () => {
    const port = await freePort();
    await using dead = new KubeClient(
      { server: `http://127.0.0.1:${port}`, namespace: 'default' },
      { http: { retry: false } },
    );
    await assert.rejects(dead.resource(ConfigMap, 'default').list(), isKube('CAP_ERR_KUBE_CONNECT'));
  });

  test('calls the client cannot make fail with CAP_ERR_KUBE_USAGE before any request', async () => {
    requests.length = 0;
    const all = kube.resource(ConfigMap);
    assert.throws(() => all.objectPath('a'), isKube('CAP_ERR_KUBE_USAGE'));
    await assert.rejects(all.get('a'), isKube('CAP_ERR_KUBE_USAGE'));
    await assert.rejects(all.create({ metadata: { name: 'a' } }), isKube('CAP_ERR_KUBE_USAGE'));
    await assert.rejects(cms().replace({ metadata: {} }), isKube('CAP_ERR_KUBE_USAGE'));
    await assert.rejects(
      cms().apply({ metadata: { name: 'a', namespace: 'other' } }),
      isKube('CAP_ERR_KUBE_USAGE'),
    );
    assert.deepEqual(requests, []);
  });
});
