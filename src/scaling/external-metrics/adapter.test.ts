// The adapter on its own, over real TLS on loopback, with a front-proxy CA of the test's: what it answers
// to the aggregation layer's calls, and to every call it must refuse. The same adapter behind the real
// apiserver is external-metrics.test.ts.
import assert from 'node:assert/strict';
import { request } from 'node:https';
import { after, before, describe, test } from 'node:test';
import { createCertAuthority, createLogger } from '../../runtime/index.ts';
import { ScalingError, ScalingErrorCode } from '../errors.ts';
import {
  createExternalMetricsAdapter,
  defineExternalMetric,
  type ExternalMetricsAdapter,
  issueExternalMetricsServingCertificate,
  type RequestAttributes,
} from '../index.ts';

interface Answer {
  status: number;
  body: Record<string, unknown> & {
    reason?: string;
    message?: string;
    items?: Array<Record<string, unknown>>;
  };
}

type Pair = { certPem: string; keyPem: string };

describe('External Metrics adapter (TLS on loopback, no apiserver)', () => {
  let adapter: ExternalMetricsAdapter;
  let servingCa = '';
  let frontProxy: Pair;
  let rogue: Pair;
  let wrongName: Pair;
  const asked: RequestAttributes[] = [];
  const depths: Record<string, number> = { work: 7, slow: 0.25 };

  function call(
    path: string,
    init: { client?: Pair | null; user?: string | null; method?: string; groups?: string[] } = {},
  ) {
    const client = init.client === undefined ? frontProxy : init.client;
    const headers: Record<string, string | string[]> = {};
    if (init.user !== null)
      headers['X-Remote-User'] = init.user ?? 'system:serviceaccount:kube-system:horizontal-pod-autoscaler';
    if (init.groups) headers['X-Remote-Group'] = init.groups;
    headers['X-Remote-Extra-Scopes%2Fa'] = 'one';
    return new Promise<Answer>((resolve, reject) => {
      const req = request(
        `${adapter.url}${path}`,
        {
          method: init.method ?? 'GET',
          ca: servingCa,
          // The aggregation layer checks the certificate against the Service's DNS name, not the address.
          servername: 'capstan-external-metrics.metrics.svc',
          agent: false,
          headers,
          ...(client ? { cert: client.certPem, key: client.keyPem } : {}),
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8').on('data', (c: string) => {
            text += c;
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : {} }));
        },
      );
      req.on('error', reject);
      req.end();
    });
  }

  before(async () => {
    const [ca, proxyCa, rogueCa] = await Promise.all([
      createCertAuthority('serving-ca'),
      createCertAuthority('front-proxy-ca'),
      createCertAuthority('rogue-ca'),
    ]);
    servingCa = ca.certPem;
    [frontProxy, rogue, wrongName] = await Promise.all([
      proxyCa.issue({ commonName: 'front-proxy-client', usage: 'client' }),
      rogueCa.issue({ commonName: 'front-proxy-client', usage: 'client' }),
      proxyCa.issue({ commonName: 'someone-else', usage: 'client' }),
    ]);
    const serving = await issueExternalMetricsServingCertificate(ca, { namespace: 'metrics' });
    adapter = createExternalMetricsAdapter({
      serving,
      port: 0,
      host: '127.0.0.1',
      readTimeoutMs: 300,
      logger: createLogger({ name: 'adapter', level: 'silent' }),
      lifecycle: { drainDelayMs: 0 },
      authentication: {
        clientCaPem: proxyCa.certPem,
        allowedNames: ['front-proxy-client'],
        usernameHeaders: ['X-Remote-User'],
        groupHeaders: ['X-Remote-Group'],
        extraHeaderPrefixes: ['X-Remote-Extra-'],
      },
      authorizer: async (attributes) => {
        asked.push(attributes);
        const allowed = attributes.user.name !== 'mallory';
        return { allowed, reason: allowed ? '' : 'mallory is not bound to any role' };
      },
      metrics: [
        defineExternalMetric('queue_depth', async ({ selector }) => {
          const queue = selector.exactValue('queue');
          if (!queue)
            throw new ScalingError(ScalingErrorCode.usage, 'queue_depth needs labelSelector queue=<name>');
          if (queue === 'slow') await new Promise((r) => setTimeout(r, 2_000));
          const depth = depths[queue];
          return depth === undefined ? [] : [{ value: depth, labels: { queue } }];
        }),
        defineExternalMetric('broken', async () => {
          throw new ScalingError(ScalingErrorCode.source, 'RabbitMQ refused the connection');
        }),
      ],
    });
    await adapter.start();
  });

  after(() => adapter?.stop());

  test('discovery: the group, its version and every metric as a resource', async () => {
    const apis = await call('/apis');
    assert.equal(apis.status, 200);
    assert.deepEqual(apis.body['groups'], [
      {
        name: 'external.metrics.k8s.io',
        versions: [{ groupVersion: 'external.metrics.k8s.io/v1beta1', version: 'v1beta1' }],
        preferredVersion: { groupVersion: 'external.metrics.k8s.io/v1beta1', version: 'v1beta1' },
      },
    ]);
    const list = await call('/apis/external.metrics.k8s.io/v1beta1');
    assert.equal(list.status, 200);
    assert.equal(list.body['kind'], 'APIResourceList');
    const resources = list.body['resources'] as Array<{ name: string; namespaced: boolean; kind: string }>;
    assert.deepEqual(
      resources.map((r) => [r.name, r.namespaced, r.kind]),
      [
        ['queue_depth', true, 'ExternalMetricValueList'],
        ['broken', true, 'ExternalMetricValueList'],
      ],
    );
    assert.equal((await call('/openapi/v2')).status, 200);
    const unknown = await call('/apis/other.example.com/v1');
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.reason, 'NotFound');
  });

  test('values: an ExternalMetricValueList with the labels, a Quantity and an RFC 3339 time', async () => {
    asked.length = 0;
    const answer = await call(
      '/apis/external.metrics.k8s.io/v1beta1/namespaces/team-a/queue_depth?labelSelector=queue%3Dwork',
      {
        groups: ['system:serviceaccounts', 'system:authenticated'],
      },
    );
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.equal(answer.body['kind'], 'ExternalMetricValueList');
    assert.equal(answer.body['apiVersion'], 'external.metrics.k8s.io/v1beta1');
    const [item] = answer.body.items ?? [];
    assert.equal(item?.['metricName'], 'queue_depth');
    assert.deepEqual(item?.['metricLabels'], { queue: 'work' });
    assert.equal(item?.['value'], '7');
    assert.match(String(item?.['timestamp']), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    // The authorizer saw the user as the front proxy named it, and the metric as a resource in the namespace.
    assert.deepEqual(asked, [
      {
        user: {
          name: 'system:serviceaccount:kube-system:horizontal-pod-autoscaler',
          groups: ['system:serviceaccounts', 'system:authenticated'],
          extra: { 'scopes/a': ['one'] },
        },
        verb: 'list',
        namespace: 'team-a',
        resource: 'queue_depth',
      },
    ]);
    const none = await call(
      '/apis/external.metrics.k8s.io/v1beta1/namespaces/team-a/queue_depth?labelSelector=queue%3Dabsent',
    );
    assert.equal(none.status, 200);
    assert.deepEqual(none.body.items, []);
  });

  test('bad requests: 4xx with a reason, never a crash', async () => {
    const base = '/apis/external.metrics.k8s.io/v1beta1/namespaces/team-a';
    const cases: Array<[string, { method?: string }, number, string, RegExp]> = [
      [
        `${base}/no_such_metric`,
        {},
        404,
        'NotFound',
        /external metric "no_such_metric" not found: this adapter serves queue_depth, broken/,
      ],
      [
        `${base}/queue_depth?labelSelector=queue%3D%3D%3Dwork`,
        {},
        400,
        'BadRequest',
        /invalid label selector/,
      ],
      [`${base}/queue_depth?labelSelector=queue+in+work`, {}, 400, 'BadRequest', /expected "\(" after "in"/],
      [`${base}/queue_depth`, {}, 400, 'BadRequest', /needs labelSelector queue=<name>/],
      [
        '/apis/external.metrics.k8s.io/v1beta1/namespaces/Not_A_Namespace/queue_depth',
        {},
        400,
        'BadRequest',
        /invalid namespace/,
      ],
      [
        `${base}/queue_depth?labelSelector=queue%3Dwork`,
        { method: 'POST' },
        405,
        'MethodNotAllowed',
        /read-only/,
      ],
      [
        `${base}/queue_depth?labelSelector=queue%3Dwork`,
        { method: 'DELETE' },
        405,
        'MethodNotAllowed',
        /read-only/,
      ],
    ];
    for (const [path, init, status, reason, message] of cases) {
      const answer = await call(path, init);
      assert.equal(answer.status, status, path);
      assert.equal(answer.body['kind'], 'Status');
      assert.equal(answer.body.reason, reason, path);
      assert.match(String(answer.body.message), message, path);
    }
  });

  test('a source that fails or overruns: 503 with the reason, and the adapter goes on', async () => {
    const base = '/apis/external.metrics.k8s.io/v1beta1/namespaces/team-a';
    const broken = await call(`${base}/broken`);
    assert.equal(broken.status, 503);
    assert.equal(broken.body.reason, 'ServiceUnavailable');
    assert.match(String(broken.body.message), /RabbitMQ refused the connection/);
    const slow = await call(`${base}/queue_depth?labelSelector=queue%3Dslow`);
    assert.equal(slow.status, 503);
    assert.match(String(slow.body.message), /no answer within 300 ms/);
    assert.equal((await call(`${base}/queue_depth?labelSelector=queue%3Dwork`)).status, 200);
  });

  test('authentication: only the front proxy, with its certificate, allowed name and a user', async () => {
    const path =
      '/apis/external.metrics.k8s.io/v1beta1/namespaces/team-a/queue_depth?labelSelector=queue%3Dwork';
    const cases: Array<[Parameters<typeof call>[1], RegExp]> = [
      [{ client: null }, /no client certificate/],
      [{ client: rogue }, /not signed by the requestheader client CA/],
      [{ client: wrongName }, /"someone-else" is not an allowed front-proxy name/],
      [{ user: null }, /no user in X-Remote-User/],
    ];
    asked.length = 0;
    for (const [init, reason] of cases) {
      const answer = await call(path, init);
      assert.equal(answer.status, 401, String(reason));
      assert.equal(answer.body.reason, 'Unauthorized');
      assert.match(String(answer.body.message), reason);
    }
    // Nothing unauthenticated reached the authorizer (or a source).
    assert.deepEqual(asked, []);
    const denied = await call(path, { user: 'mallory' });
    assert.equal(denied.status, 403);
    assert.equal(denied.body.reason, 'Forbidden');
    assert.match(
      String(denied.body.message),
      /user "mallory" cannot list resource "queue_depth" in API group "external.metrics.k8s.io" in the namespace "team-a": mallory is not bound/,
    );
    // Health stays open, for kubelet probes.
    assert.equal((await call('/healthz', { client: null })).status, 200);
  });

  test('metrics: requests by metric and status, source reads timed; unknown names share one label', async () => {
    const text = await new Promise<string>((resolve, reject) => {
      const req = request(
        `${adapter.url}/metrics`,
        { ca: servingCa, servername: 'capstan-external-metrics.metrics.svc', agent: false },
        (res) => {
          let body = '';
          res.setEncoding('utf8').on('data', (c: string) => {
            body += c;
          });
          res.on('end', () => resolve(body));
        },
      );
      req.on('error', reject);
      req.end();
    });
    const value = (series: string) => {
      const line = text.split('\n').find((l) => l.startsWith(`${series} `));
      return line === undefined ? Number.NaN : Number(line.slice(series.length + 1));
    };
    assert.ok(value('capstan_external_metrics_requests_total{metric="queue_depth",code="200"}') >= 2, text);
    assert.ok(value('capstan_external_metrics_requests_total{metric="unknown",code="404"}') >= 1, text);
    assert.ok(value('capstan_external_metrics_requests_total{metric="broken",code="503"}') >= 1, text);
    assert.ok(value('capstan_external_metrics_requests_total{metric="queue_depth",code="401"}') >= 4, text);
    assert.ok(value('capstan_external_metrics_requests_total{metric="discovery",code="200"}') >= 2, text);
    assert.ok(value('capstan_external_metrics_read_seconds_count{metric="broken"}') >= 1, text);
    assert.doesNotMatch(text, /no_such_metric/);
  });
});

test('createExternalMetricsAdapter refuses a configuration that cannot work', async () => {
  const ca = await createCertAuthority('c');
  const serving = await ca.issue({ commonName: 'x', usage: 'server' });
  const metric = defineExternalMetric('m', async () => []);
  const authorizer = async () => ({ allowed: true, reason: '' });
  const authentication = {
    clientCaPem: ca.certPem,
    allowedNames: [],
    usernameHeaders: ['X-Remote-User'],
    groupHeaders: [],
    extraHeaderPrefixes: [],
  };
  assert.throws(
    () => createExternalMetricsAdapter({ serving, metrics: [metric, metric], authentication, authorizer }),
    {
      code: ScalingErrorCode.config,
      message: /"m" is defined twice/,
    },
  );
  assert.throws(() => createExternalMetricsAdapter({ serving, metrics: [metric], authorizer }), {
    code: ScalingErrorCode.config,
    message: /needs `kube` or `authentication`/,
  });
  assert.throws(() => createExternalMetricsAdapter({ serving, metrics: [metric], authentication }), {
    code: ScalingErrorCode.config,
    message: /needs `kube` or an `authorizer`/,
  });
  for (const name of ['', 'Queue', 'queue/depth', '-q', `q${'x'.repeat(260)}`]) {
    assert.throws(() => defineExternalMetric(name, async () => []), { code: ScalingErrorCode.config }, name);
  }
  assert.throws(
    () =>
      createExternalMetricsAdapter({
        serving: { certPem: 'x', keyPem: 'y' },
        metrics: [],
        authentication,
        authorizer,
      }),
    {
      code: 'CAP_ERR_RUNTIME_TLS_INVALID',
    },
  );
});

test('front-proxy settings from a loader: read at start, followed on a timer, a failed read keeps the ones in use', async () => {
  const [ca, proxyCa] = await Promise.all([
    createCertAuthority('serving-ca'),
    createCertAuthority('front-proxy-ca'),
  ]);
  const [proxy, other] = await Promise.all([
    proxyCa.issue({ commonName: 'front-proxy-client', usage: 'client' }),
    proxyCa.issue({ commonName: 'other-proxy', usage: 'client' }),
  ]);
  const serving = await issueExternalMetricsServingCertificate(ca, { namespace: 'metrics' });
  const settings = (allowed: string) => ({
    clientCaPem: proxyCa.certPem,
    allowedNames: [allowed],
    usernameHeaders: ['X-Remote-User'],
    groupHeaders: [],
    extraHeaderPrefixes: [],
  });
  let current: string | Error = 'front-proxy-client';
  let loads = 0;
  await using adapter = createExternalMetricsAdapter({
    serving,
    port: 0,
    host: '127.0.0.1',
    logger: createLogger({ name: 'adapter', level: 'silent' }),
    lifecycle: { drainDelayMs: 0 },
    authenticationRefreshMs: 100,
    authentication: async () => {
      loads++;
      if (current instanceof Error) throw current;
      return settings(current);
    },
    authorizer: async () => ({ allowed: true, reason: '' }),
    metrics: [],
  });
  await adapter.start();
  const status = (client: Pair) =>
    new Promise<number>((resolve, reject) => {
      const req = request(
        `${adapter.url}/apis`,
        {
          ca: ca.certPem,
          servername: 'capstan-external-metrics.metrics.svc',
          agent: false,
          cert: client.certPem,
          key: client.keyPem,
          headers: { 'X-Remote-User': 'u' },
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      );
      req.on('error', reject);
      req.end();
    });
  const eventually = async (client: Pair, want: number) => {
    let last = 0;
    for (let i = 0; i < 100 && last !== want; i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, 50));
      last = await status(client);
    }
    return last;
  };
  assert.equal(await status(proxy), 200);
  assert.equal(await status(other), 401);
  // The apiserver's front proxy is now named other-proxy: followed without a restart.
  current = 'other-proxy';
  assert.equal(await eventually(other, 200), 200);
  assert.equal(await status(proxy), 401);
  // The settings cannot be read: the ones in use stay, and an explicit refresh says why.
  current = new Error('configmaps "extension-apiserver-authentication" is forbidden');
  const before = loads;
  await assert.rejects(adapter.refreshAuthentication(), /forbidden/);
  for (let i = 0; i < 100 && loads < before + 3; i++) await new Promise((r) => setTimeout(r, 50));
  assert.ok(loads >= before + 3, `the timer read ${loads - before} times`);
  assert.equal(await status(other), 200);
});
