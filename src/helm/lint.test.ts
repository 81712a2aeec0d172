// helm capstan lint against the shared control plane: built-in kinds and a CRD's schema, through the real
// helm and the plugin folder the package ships.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createHelmHome, eventually, type HelmHome, helmBinary, useSharedCluster } from 'capstan/testing';
import { helmEnv } from './env.ts';
import { HelmErrorCode } from './errors.ts';
import { lintChart } from './lint.ts';
import { encryptSecrets, generateSecretsKey, parseSecretsKey } from './secrets.ts';

const shippedPlugin = fileURLToPath(new URL('../../helm-plugin/capstan', import.meta.url));

function chart(work: string, name: string, templates: Record<string, string>): string {
  const dir = join(work, name);
  mkdirSync(join(dir, 'templates'), { recursive: true });
  writeFileSync(join(dir, 'Chart.yaml'), `apiVersion: v2\nname: ${name}\nversion: 0.1.0\n`);
  writeFileSync(join(dir, 'values.yaml'), 'replicas: 2\n');
  for (const [file, text] of Object.entries(templates)) writeFileSync(join(dir, 'templates', file), text);
  return dir;
}

const deployment = (replicas: string, extra = '') => `apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}-web
spec:
  replicas: ${replicas}
  selector:
    matchLabels: { app: web }
  template:
    metadata:
      labels: { app: web }
    spec:
      containers:
        - name: web
          image: nginx:1.27${extra}
`;

describe('helm capstan lint (real helm, shared control plane, server-side dry run)', () => {
  let home: HelmHome;
  let work: string;
  const group = `lint${randomBytes(3).toString('hex')}.capstan.test`;
  const widget = (size: number, color: string) =>
    `apiVersion: ${group}/v1\nkind: Widget\nmetadata:\n  name: {{ .Release.Name }}-w\nspec:\n  size: ${size}\n  color: ${color}\n`;

  before(async () => {
    home = createHelmHome();
    work = mkdtempSync(join(tmpdir(), 'capstan-helm-lint-test-'));
    await home.run(['plugin', 'install', shippedPlugin]);
  });
  after(async () => {
    await home?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  test('a valid chart passes; invalid manifests fail with template, object, field path and reason', async (t) => {
    const cluster = await useSharedCluster(t);
    const crd = {
      apiVersion: 'apiextensions.k8s.io/v1',
      kind: 'CustomResourceDefinition',
      metadata: { name: `widgets.${group}` },
      spec: {
        group,
        scope: 'Namespaced',
        names: { plural: 'widgets', singular: 'widget', kind: 'Widget' },
        versions: [
          {
            name: 'v1',
            served: true,
            storage: true,
            schema: {
              openAPIV3Schema: {
                type: 'object',
                properties: {
                  spec: {
                    type: 'object',
                    required: ['size', 'color'],
                    properties: {
                      size: { type: 'integer', minimum: 1 },
                      color: { type: 'string', enum: ['red', 'blue'] },
                    },
                  },
                },
              },
            },
          },
        ],
      },
    };
    cluster.kubectl(['apply', '-f', '-'], { input: JSON.stringify(crd) });
    t.after(() => {
      cluster.kubectl(['delete', 'crd', `widgets.${group}`, '--wait=false']);
    });
    await eventually(
      'the CRD is served',
      async () => (await cluster.request(`/apis/${group}/v1`)).status === 200,
    );
    const env = { KUBECONFIG: cluster.kubeconfigPath, CAPSTAN_NODE: process.execPath };

    const good = chart(work, 'good', {
      'cm.yaml':
        'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-cfg\ndata:\n  a: "1"\n',
      'deploy.yaml': deployment('{{ .Values.replicas }}'),
      'widget.yaml': widget(3, 'red'),
    });
    const ok = await home.run(['capstan', 'lint', good, '-n', cluster.namespace], { env });
    assert.match(ok.stdout, /3 manifest\(s\) valid on the cluster/);
    // Nothing was stored: a dry run.
    assert.equal(
      (await cluster.request(`/api/v1/namespaces/${cluster.namespace}/configmaps/release-name-cfg`)).status,
      404,
    );

    // Encrypted values are decrypted for the render, as for install; without the key, lint says so.
    const keyText = generateSecretsKey();
    const enc = join(work, 'replicas.enc.yaml');
    writeFileSync(enc, encryptSecrets('replicas: 4\n', parseSecretsKey(keyText)));
    const withKey = await home.run(['capstan', 'lint', good, '-n', cluster.namespace, '-f', enc], {
      env: { ...env, CAPSTAN_HELM_SECRETS_KEY: keyText },
    });
    assert.match(withKey.stdout, /3 manifest\(s\) valid/);
    const noKey = await home.run(['capstan', 'lint', good, '-f', enc], { env, allowFailure: true });
    assert.equal(noKey.code, 1);
    assert.match(noKey.stderr, new RegExp(HelmErrorCode.secretsNoKey));

    const bad = chart(work, 'bad', {
      'cm.yaml':
        'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-cfg\ndatta:\n  a: "1"\n',
      'deploy.yaml': deployment('"three"'),
      'widget.yaml': widget(0, 'green'),
      'gadget.yaml': `apiVersion: ${group}/v1\nkind: Gadget\nmetadata:\n  name: g\n`,
    });
    const failed = await home.run(['capstan', 'lint', bad, '-n', cluster.namespace], {
      env,
      allowFailure: true,
    });
    assert.equal(failed.code, 1, failed.stderr);
    assert.match(failed.stderr, /4 problem|5 problem/);
    assert.match(
      failed.stderr,
      /bad\/templates\/deploy\.yaml: Deployment\/release-name-web: \.?spec\.replicas: .*(string|int)/,
    );
    assert.match(
      failed.stderr,
      /bad\/templates\/cm\.yaml: ConfigMap\/release-name-cfg: \.?datta: field not declared in schema/,
    );
    assert.match(
      failed.stderr,
      /bad\/templates\/widget\.yaml: Widget\/release-name-w: spec\.size: .*greater than or equal to 1/,
    );
    assert.match(failed.stderr, /spec\.color: Unsupported value: "green"/);
    assert.match(failed.stderr, /Gadget\/g: .*serves no kind Gadget \(UnknownKind\)/);
    assert.match(failed.stderr, /CAP_ERR_HELM_LINT_FAILED/);

    // The library gives the same findings as data.
    const report = await lintChart([bad], {
      env: helmEnv({
        ...process.env,
        ...home.env,
        HELM_BIN: helmBinary(),
        KUBECONFIG: cluster.kubeconfigPath,
        HELM_NAMESPACE: cluster.namespace,
      }),
    });
    assert.equal(report.manifests, 4);
    const widgetProblems = report.problems.filter((p) => p.object === 'Widget/release-name-w');
    assert.deepEqual(widgetProblems.map((p) => [p.field, p.reason]).sort(), [
      ['spec.color', 'FieldValueNotSupported'],
      ['spec.size', 'FieldValueInvalid'],
    ]);

    // A namespace that does not exist yet (installed with --create-namespace): validated in default, and said.
    const later = await home.run(['capstan', 'lint', good, '-n', `later-${cluster.namespace}`], { env });
    assert.match(later.stderr, /namespace later-.* does not exist yet/);
    assert.match(later.stdout, /3 manifest\(s\) valid/);
  });

  test("a chart helm cannot render fails with helm's reason; no cluster needed to say so", async () => {
    const broken = chart(work, 'broken', {
      'cm.yaml': 'kind: ConfigMap\nmetadata:\n  name: {{ .Values.name\n',
    });
    const r = await home.run(['capstan', 'lint', broken], {
      env: { CAPSTAN_NODE: process.execPath },
      allowFailure: true,
    });
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(HelmErrorCode.helmFailed));
    assert.match(r.stderr, /parse error|unclosed action/);
    const none = await home.run(['capstan', 'lint', join(work, 'no-such-chart')], {
      env: { CAPSTAN_NODE: process.execPath },
      allowFailure: true,
    });
    assert.equal(none.code, 1);
    assert.match(none.stderr, /no-such-chart/);
  });
});
