// The autoscaler file: a good one becomes entries (sources made from them), a bad one is refused with every
// problem at once, each with its place; secrets from the environment never appear in a message.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseAutoscalerConfig, ScalingError, ScalingErrorCode, sourceFor } from './index.ts';

const good = `
autoscalers:
  - name: worker
    scaleTargetRef: deployment/worker
    namespace: jobs
    minReplicas: 2
    maxReplicas: 20
    pollingInterval: 5
    behavior:
      scaleDown: { stabilizationWindowSeconds: 60 }
    metric:
      target: 10
      rabbitmq: { queue: jobs, managementUrlFromEnv: RABBIT_MGMT }
  - name: api
    scaleTargetRef: { kind: statefulset, name: api }
    maxReplicas: 8
    metric:
      target: 0.5
      targetType: Value
      prometheus:
        url: http://127.0.0.1:9090
        query: sum(rate(http_requests_total[1m]))
        emptyValue: 0
`;

function problemsOf(text: string, env: Record<string, string> = {}): string[] {
  try {
    parseAutoscalerConfig(text, env);
  } catch (err) {
    assert.ok(err instanceof ScalingError, String(err));
    assert.equal(err.code, ScalingErrorCode.config);
    assert.equal(err.message.split('\n').length, err.problems.length + 1, 'one line per problem');
    return [...err.problems];
  }
  assert.fail('accepted');
}

test('a good file: entries with defaults, URLs from the environment, sources made from them', async () => {
  const entries = parseAutoscalerConfig(good, { RABBIT_MGMT: 'http://u:secret@127.0.0.1:15672' });
  assert.equal(entries.length, 2);
  const [worker, api] = entries;
  assert.deepEqual(worker!.spec, {
    name: 'worker',
    scaleTargetRef: 'deployment/worker',
    namespace: 'jobs',
    minReplicas: 2,
    maxReplicas: 20,
    pollingIntervalMs: 5000,
    behavior: { scaleDown: { stabilizationWindowSeconds: 60 } },
    metric: { target: 10 },
  });
  assert.deepEqual(worker!.source, {
    type: 'rabbitmq',
    options: { queue: 'jobs', managementUrl: 'http://u:secret@127.0.0.1:15672' },
  });
  assert.equal(api!.spec.pollingIntervalMs, 15_000);
  assert.deepEqual(api!.spec.metric, { target: 0.5, targetType: 'Value' });
  const source = sourceFor(worker!);
  assert.ok(!source.description.includes('secret'), source.description);
  await source.close();
  const prom = sourceFor(api!);
  assert.match(prom.description, /prometheus http:\/\/127\.0\.0\.1:9090 query sum\(rate/);
  await prom.close();
});

test('a bad file: every problem listed, with its place', () => {
  const problems = problemsOf(
    `
autoscalers:
  - name: Worker
    scaleTargetRef: worker
    minReplicas: 5
    maxReplicas: 2
    pollingInterval: 0
    metric:
      target: -1
      rabbitmq: { queue: jobs, amqpUrlFromEnv: MISSING_URL }
  - name: two
    scaleTargetRef: deployment/two
    maxReplicas: 3
    maxReplica: 4
    metric:
      target: 1
  - name: three
    scaleTargetRef: deployment/three
    maxReplicas: 3
    metric:
      target: 1
      rabbitmq: { queue: q, managementUrl: "ftp://x" }
      prometheus: { url: http://p, query: up }
`,
  );
  // zod's shape problems come first and alone (unknown key): fix those, then the rest is checked.
  assert.deepEqual(problems, ['autoscalers[1]: Unrecognized key: "maxReplica"']);

  const semantic = problemsOf(
    `
autoscalers:
  - name: Worker
    scaleTargetRef: worker
    minReplicas: 5
    maxReplicas: 2
    pollingInterval: 0
    metric:
      target: -1
      rabbitmq: { queue: jobs, amqpUrlFromEnv: MISSING_URL }
  - name: two
    scaleTargetRef: deployment/two
    maxReplicas: 3
    metric:
      target: 1
  - name: two
    scaleTargetRef: deployment/three
    maxReplicas: 3
    metric:
      target: 1
      prometheus: { url: "ftp://user:pw@x", query: up }
`,
  );
  const want = [
    'autoscalers[0].metric.rabbitmq.amqpUrlFromEnv: MISSING_URL is not set',
    'autoscalers[0].name',
    'autoscalers[0].scaleTargetRef',
    'autoscalers[0].minReplicas (5) is above maxReplicas (2)',
    'autoscalers[0].metric.target',
    'autoscalers[0].pollingInterval',
    'autoscalers[1].metric: give exactly one source',
    'autoscalers[2].name: "two" is used twice',
    'autoscalers[2].metric.prometheus.url: a http: or https: URL, got ftp:',
  ];
  assert.equal(semantic.length, want.length, semantic.join('\n'));
  for (const w of want)
    assert.ok(
      semantic.some((p) => p.startsWith(w)),
      `${w}\nin:\n${semantic.join('\n')}`,
    );
  assert.ok(!semantic.join('\n').includes('pw'), 'no password in the report');
});

test('not YAML, no autoscalers, wrong types', () => {
  assert.match(problemsOf('autoscalers: [')[0]!, /./);
  assert.deepEqual(problemsOf('autoscalers: []'), [
    'autoscalers: Too small: expected array to have >=1 items',
  ]);
  const typed = problemsOf(
    'autoscalers:\n  - name: a\n    scaleTargetRef: deployment/a\n    maxReplicas: "3"\n    metric: { target: 1 }\n',
  );
  assert.equal(typed.length, 1);
  assert.match(typed[0]!, /^autoscalers\[0\]\.maxReplicas: .*expected number/);
});
