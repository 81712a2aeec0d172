import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ApiException, AppsV1Api, CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { isProcessRunning as alive, fetchOnce } from '../runtime/index.ts';
import { peerCatalogue } from './catalogue.ts';
import { type ControlPlane, startControlPlane } from './control-plane.ts';
import { PeerError } from './errors.ts';
import { resolveKubeAssets } from './kube-assets.ts';

const widgetCrd = `
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.test.capstan.dev
spec:
  group: test.capstan.dev
  scope: Namespaced
  names: { plural: widgets, singular: widget, kind: Widget, listKind: WidgetList }
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              required: [size]
              properties:
                size: { type: integer, minimum: 1, maximum: 10 }
                color: { type: string, enum: [red, blue] }
`;

const denyWebhook = {
  apiVersion: 'admissionregistration.k8s.io/v1',
  kind: 'ValidatingWebhookConfiguration',
  metadata: { name: 'capstan-test-deny' },
  webhooks: [
    {
      name: 'deny.test.capstan.dev',
      rules: [{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['configmaps'] }],
      objectSelector: { matchLabels: { 'capstan-test': 'deny' } },
      clientConfig: { service: { name: 'unused', namespace: 'default', path: '/validate' } },
      admissionReviewVersions: ['v1'],
      sideEffects: 'None',
      failurePolicy: 'Fail',
      timeoutSeconds: 10,
    },
  ],
};

function apiStatus(err: unknown): number | undefined {
  return err instanceof ApiException ? err.code : undefined;
}

describe('startControlPlane (real etcd + kube-apiserver)', () => {
  let cp: ControlPlane;
  const reviews: string[] = [];
  const webhookServer = createServer();

  before(async () => {
    cp = await startControlPlane({ crds: [widgetCrd], webhooks: { configurations: [denyWebhook] } });
    const hook = cp.webhook;
    assert.ok(hook);
    webhookServer.setSecureContext({ cert: hook.certPem, key: hook.keyPem });
    webhookServer.on('request', (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const review = JSON.parse(Buffer.concat(chunks).toString()) as {
          request: { uid: string; name: string };
        };
        reviews.push(`${new URL(req.url ?? '/', 'https://webhook').pathname} ${review.request.name}`);
        res.setHeader('content-type', 'application/json');
        res.end(
          JSON.stringify({
            apiVersion: 'admission.k8s.io/v1',
            kind: 'AdmissionReview',
            response: {
              uid: review.request.uid,
              allowed: false,
              status: { code: 403, message: 'denied by the capstan test webhook' },
            },
          }),
        );
      });
    });
    await new Promise<void>((resolve) => webhookServer.listen(hook.port, hook.host, resolve));
  });

  after(async () => {
    webhookServer.close();
    await cp?.stop();
  });

  test('serves an installed CRD: a custom resource is created and read back', async () => {
    const api = cp.kubeConfig.makeApiClient(CustomObjectsApi);
    const target = { group: 'test.capstan.dev', version: 'v1', namespace: 'default', plural: 'widgets' };
    await api.createNamespacedCustomObject({
      ...target,
      body: {
        apiVersion: 'test.capstan.dev/v1',
        kind: 'Widget',
        metadata: { name: 'w1' },
        spec: { size: 3, color: 'red' },
      },
    });
    const got = (await api.getNamespacedCustomObject({ ...target, name: 'w1' })) as {
      metadata: { uid?: string };
      spec: unknown;
    };
    assert.deepEqual(got.spec, { size: 3, color: 'red' });
    assert.ok(got.metadata.uid, 'the apiserver assigned a uid');
    const list = (await api.listNamespacedCustomObject(target)) as { items: unknown[] };
    assert.equal(list.items.length, 1);
  });

  test('rejects a custom resource that breaks its OpenAPI schema with 422', async () => {
    const api = cp.kubeConfig.makeApiClient(CustomObjectsApi);
    const target = { group: 'test.capstan.dev', version: 'v1', namespace: 'default', plural: 'widgets' };
    for (const spec of [{ size: 99 }, { size: 2, color: 'green' }, { color: 'red' }]) {
      await assert.rejects(
        api.createNamespacedCustomObject({
          ...target,
          body: { apiVersion: 'test.capstan.dev/v1', kind: 'Widget', metadata: { name: 'bad' }, spec },
        }),
        (err: unknown) => {
          assert.equal(apiStatus(err), 422, String(err));
          assert.match(String((err as ApiException<string>).body), /spec\.(size|color)/);
          return true;
        },
      );
    }
  });

  test('installCrds rejects a non-structural CRD with the apiserver reason', async () => {
    const bad = {
      apiVersion: 'apiextensions.k8s.io/v1',
      kind: 'CustomResourceDefinition',
      metadata: { name: 'gadgets.test.capstan.dev' },
      spec: {
        group: 'aggregated.capstan.dev',
        scope: 'Namespaced',
        names: { plural: 'gadgets', kind: 'Gadget' },
        // A property without a type is not structural: apiextensions refuses it.
        versions: [
          {
            name: 'v1',
            served: true,
            storage: true,
            schema: { openAPIV3Schema: { type: 'object', properties: { spec: {} } } },
          },
        ],
      },
    };
    await assert.rejects(cp.installCrds([bad]), (err: unknown) => {
      assert.ok(err instanceof PeerError);
      assert.equal(err.code, 'CAP_ERR_PEER_CRD');
      assert.match(err.message, /HTTP 422.*type/s);
      return true;
    });
    await assert.rejects(cp.installCrds(['kind: ConfigMap\napiVersion: v1\n']), { code: 'CAP_ERR_PEER_CRD' });
  });

  test('reports the Kubernetes version pinned in the peer catalogue', async () => {
    const res = await cp.request('/version');
    assert.equal(res.status, 200, res.body);
    const version = JSON.parse(res.body) as { gitVersion: string; major: string; minor: string };
    // Only the catalogue build is stamped by us; KUBEBUILDER_ASSETS binaries carry their own version.
    if (cp.assets.source === 'peer cache')
      assert.equal(version.gitVersion, peerCatalogue().peers.kube?.version);
    assert.match(version.gitVersion, /^v1\.\d+\.\d+/);
    assert.equal(version.major, '1');
  });

  test('authorizes with RBAC: an unprivileged user is forbidden, the admin is not', async () => {
    const asNobody = await cp.request('/api/v1/namespaces/default/configmaps', {
      headers: { 'Impersonate-User': 'nobody@capstan.dev' },
    });
    assert.equal(asNobody.status, 403, asNobody.body);
    const asAdmin = await cp.request('/api/v1/namespaces/default/configmaps');
    assert.equal(asAdmin.status, 200, asAdmin.body);
  });

  test('calls the local webhook server with the generated certificate', async () => {
    const core = cp.kubeConfig.makeApiClient(CoreV1Api);
    await assert.rejects(
      core.createNamespacedConfigMap({
        namespace: 'default',
        body: { metadata: { name: 'denied', labels: { 'capstan-test': 'deny' } }, data: { a: '1' } },
      }),
      (err: unknown) => {
        assert.equal(apiStatus(err), 403, String(err));
        assert.match(String((err as ApiException<string>).body), /denied by the capstan test webhook/);
        return true;
      },
    );
    await core.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name: 'allowed' } } });
    assert.deepEqual(reviews, ['/validate denied']);
  });

  test('runs the aggregation layer: an APIService is proxied with the front-proxy certificate and the caller', async () => {
    // What an aggregated server reads to authenticate the apiserver: published by the apiserver itself.
    const auth = await cp.request(
      '/api/v1/namespaces/kube-system/configmaps/extension-apiserver-authentication',
    );
    assert.equal(auth.status, 200, auth.body);
    const data = (JSON.parse(auth.body) as { data: Record<string, string> }).data;
    const pem = (text: string | undefined) => (text ?? '').replace(/\r\n/g, '\n').trim();
    assert.equal(pem(data['requestheader-client-ca-file']), pem(cp.frontProxy.caPem));
    assert.deepEqual(JSON.parse(data['requestheader-allowed-names'] ?? ''), ['front-proxy-client']);
    assert.deepEqual(JSON.parse(data['requestheader-username-headers'] ?? ''), ['X-Remote-User']);
    assert.deepEqual(JSON.parse(data['requestheader-group-headers'] ?? ''), ['X-Remote-Group']);

    // An aggregated server of our own on loopback, requiring a client certificate from the front-proxy CA.
    const { createCertAuthority } = await import('../runtime/index.ts');
    const ca = await createCertAuthority('test-aggregated-ca');
    const serving = await ca.issue({ commonName: 'agg', dnsNames: ['agg.default.svc'], usage: 'server' });
    const seen: string[] = [];
    const agg = createServer({
      cert: serving.certPem,
      key: serving.keyPem,
      ca: cp.frontProxy.caPem,
      requestCert: true,
      rejectUnauthorized: true,
    });
    agg.on('request', (req, res) => {
      const peer = (req.socket as import('node:tls').TLSSocket).getPeerCertificate();
      seen.push(`${req.url} ${peer.subject?.CN} ${req.headers['x-remote-user']}`);
      res.setHeader('content-type', 'application/json');
      res.end(
        JSON.stringify(
          req.url === '/apis/aggregated.capstan.dev/v1'
            ? {
                kind: 'APIResourceList',
                apiVersion: 'v1',
                groupVersion: 'aggregated.capstan.dev/v1',
                resources: [],
              }
            : { kind: 'Status', apiVersion: 'v1', status: 'Failure', code: 404, reason: 'NotFound' },
        ),
      );
    });
    await new Promise<void>((resolve) => agg.listen(0, '127.0.0.1', resolve));
    const port = (agg.address() as import('node:net').AddressInfo).port;
    try {
      const post = async (path: string, body: unknown) => {
        const res = await cp.request(path, { method: 'POST', body });
        assert.equal(res.status, 201, res.body);
      };
      await post('/api/v1/namespaces/default/services', {
        metadata: { name: 'agg' },
        spec: { ports: [{ name: 'https', port: 443, targetPort: port }] },
      });
      // No node routes a ClusterIP here: the apiserver goes to the endpoint (--enable-aggregator-routing). An
      // IPv4 endpoint may not be loopback; an FQDN one is only checked as a name, and the apiserver dials it.
      await post('/apis/discovery.k8s.io/v1/namespaces/default/endpointslices', {
        metadata: { name: 'agg', labels: { 'kubernetes.io/service-name': 'agg' } },
        addressType: 'FQDN',
        endpoints: [{ addresses: ['127.0.0.1'], conditions: { ready: true } }],
        ports: [{ name: 'https', port }],
      });
      await post('/apis/apiregistration.k8s.io/v1/apiservices', {
        metadata: { name: 'v1.aggregated.capstan.dev' },
        spec: {
          group: 'aggregated.capstan.dev',
          version: 'v1',
          service: { namespace: 'default', name: 'agg', port: 443 },
          caBundle: Buffer.from(ca.certPem).toString('base64'),
          groupPriorityMinimum: 1000,
          versionPriority: 15,
        },
      });
      let last = { status: 0, body: '' };
      for (let i = 0; i < 300 && last.status !== 200; i++) {
        if (i > 0) await sleep(100);
        last = await cp.request('/apis/aggregated.capstan.dev/v1');
      }
      assert.equal(last.status, 200, last.body);
      assert.equal(
        (JSON.parse(last.body) as { groupVersion: string }).groupVersion,
        'aggregated.capstan.dev/v1',
      );
      assert.ok(
        seen.includes('/apis/aggregated.capstan.dev/v1 front-proxy-client capstan-admin'),
        seen.join('\n'),
      );
    } finally {
      await cp.request('/apis/apiregistration.k8s.io/v1/apiservices/v1.aggregated.capstan.dev', {
        method: 'DELETE',
      });
      agg.close();
    }
  });

  test('kubectl of the same release works against the kubeconfig', () => {
    // The kube peer builds kubectl with the apiserver; an envtest asset folder has one too.
    const kubectl = cp.assets.kubectl;
    assert.ok(kubectl, `no kubectl in ${cp.assets.dir} (${cp.assets.source})`);
    const r = spawnSync(kubectl, ['--kubeconfig', cp.kubeconfigPath, 'get', 'widgets', '-o', 'name'], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'widget.test.capstan.dev/w1');
    const version = spawnSync(kubectl, ['--kubeconfig', cp.kubeconfigPath, 'version', '-o', 'json'], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.equal(version.status, 0, version.stderr);
    const v = JSON.parse(version.stdout) as {
      clientVersion: { gitVersion: string };
      serverVersion: { gitVersion: string };
    };
    if (cp.assets.source === 'peer cache')
      assert.equal(v.clientVersion.gitVersion, v.serverVersion.gitVersion);
  });

  test('stop() leaves no process and no folder', async () => {
    const pids = cp.processes.map((p) => p.pid);
    assert.equal(pids.length, 2);
    assert.ok(pids.every(alive));
    assert.ok(existsSync(cp.dir));
    await cp.stop();
    assert.deepEqual(
      pids.filter((pid) => alive(pid)),
      [],
    );
    assert.equal(existsSync(cp.dir), false);
    await cp.stop(); // idempotent
  });
});

/** One GET on a fresh connection: the status and body, or the error's code and message. */
async function probe(
  url: string,
  tls?: { ca: string; cert?: string; key?: string },
): Promise<{ status: number; body: string } | { error: string }> {
  try {
    const res = await fetchOnce(url, { deadlineMs: 10_000, ...(tls ? { tls } : {}) });
    return { status: res.status, body: res.body };
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    return { error: `${cause?.code ?? ''} ${cause?.message ?? (err as Error).message}` };
  }
}

describe('startControlPlane with etcdTls (what `capstan dev cluster` runs)', () => {
  test('etcd refuses plain HTTP, clients without a certificate and Kubernetes certificates; the apiserver works', async () => {
    const cp = await startControlPlane({ etcdTls: true });
    try {
      assert.match(cp.etcd.url, /^https:\/\/127\.0\.0\.1:\d+$/);
      assert.ok(cp.etcd.caPem);
      const health = `${cp.etcd.url}/health`;
      // Plain HTTP to the client URL: no answer from etcd (Go's TLS server says 400, or the connection dies).
      const plain = await probe(health.replace('https://', 'http://'));
      assert.ok(
        !('status' in plain) || (plain.status === 400 && !plain.body.includes('health')),
        JSON.stringify(plain),
      );
      // TLS, etcd verified, but no client certificate: the handshake fails.
      const anonymous = await probe(health, { ca: cp.etcd.caPem });
      assert.ok('error' in anonymous, JSON.stringify(anonymous));
      // (TLS 1.3: etcd's refusal arrives after the client's side of the handshake, as a closed connection.)
      assert.match(anonymous.error, /certificate|handshake|socket|closed|reset/i);
      // Not our own check of etcd's certificate failing: that one passed.
      assert.doesNotMatch(anonymous.error, /UNABLE_TO_|SELF_SIGNED|ERR_TLS_CERT_ALTNAME/);
      // The admin's client certificate (cluster CA) opens the apiserver, not etcd: etcd has a CA of its own.
      const user = cp.kubeConfig.getCurrentUser();
      assert.ok(user?.certData && user.keyData);
      const b64 = (s: string) => Buffer.from(s, 'base64').toString();
      const admin = await probe(health, {
        ca: cp.etcd.caPem,
        cert: b64(user.certData),
        key: b64(user.keyData),
      });
      assert.ok('error' in admin, JSON.stringify(admin));
      // The apiserver's etcd client certificate is accepted, and the apiserver reads and writes through it.
      const pki = join(cp.dir, 'pki');
      const ok = await probe(health, {
        ca: cp.etcd.caPem,
        cert: readFileSync(join(pki, 'apiserver-etcd-client.crt'), 'utf8'),
        key: readFileSync(join(pki, 'apiserver-etcd-client.key'), 'utf8'),
      });
      assert.ok('status' in ok && ok.status === 200 && ok.body.includes('true'), JSON.stringify(ok));
      const core = cp.kubeConfig.makeApiClient(CoreV1Api);
      await core.createNamespace({ body: { metadata: { name: 'over-etcd-tls' } } });
      const names = (await core.listNamespace()).items.map((n) => n.metadata?.name);
      assert.ok(names.includes('default') && names.includes('over-etcd-tls'), String(names));
      if (cp.assets.kubectl) {
        const got = spawnSync(
          cp.assets.kubectl,
          ['--kubeconfig', cp.kubeconfigPath, 'get', 'ns', 'over-etcd-tls'],
          {
            encoding: 'utf8',
            timeout: 60_000,
          },
        );
        assert.equal(got.status, 0, got.stderr);
      }
    } finally {
      await cp.stop();
    }
  });
});

describe('startControlPlane failure paths', () => {
  test('a broken kube-apiserver fails with a PeerError carrying its log, and cleans up', async () => {
    const real = resolveKubeAssets({});
    const assets = mkdtempSync(join(tmpdir(), 'capstan-kube-assets-'));
    const root = join(mkdtempSync(join(tmpdir(), 'capstan-kube-root-')), 'cp');
    try {
      symlinkSync(real.etcd, join(assets, 'etcd'));
      writeFileSync(
        join(assets, 'kube-apiserver'),
        '#!/bin/sh\necho "E1125 broken apiserver: cannot start ($*)" >&2\nexit 3\n',
      );
      chmodSync(join(assets, 'kube-apiserver'), 0o755);
      await assert.rejects(startControlPlane({ assetsDir: assets, dir: root }), (err: unknown) => {
        assert.ok(err instanceof PeerError, String(err));
        assert.equal(err.code, 'CAP_ERR_PEER_EXITED');
        assert.match(
          err.logTail,
          /broken apiserver: cannot start .*--etcd-servers=http:\/\/127\.0\.0\.1:\d+/,
        );
        return true;
      });
      assert.equal(existsSync(root), false, 'the control-plane folder is removed');
    } finally {
      rmSync(assets, { recursive: true, force: true });
      rmSync(join(root, '..'), { recursive: true, force: true });
    }
  });

  test('a port taken between picking and binding is retried with fresh ports, at most 3 times', async () => {
    const real = resolveKubeAssets({});
    const assets = mkdtempSync(join(tmpdir(), 'capstan-kube-assets-'));
    const attempts = join(assets, 'attempts');
    const lines: string[] = [];
    try {
      symlinkSync(real.etcd, join(assets, 'etcd'));
      writeFileSync(
        join(assets, 'kube-apiserver'),
        `#!/bin/sh\necho "$*" >> ${attempts}\necho "failed to listen: bind: address already in use" >&2\nexit 1\n`,
      );
      chmodSync(join(assets, 'kube-apiserver'), 0o755);
      await assert.rejects(startControlPlane({ assetsDir: assets, log: (l) => lines.push(l) }), {
        code: 'CAP_ERR_PEER_EXITED',
      });
      const ports = readFileSync(attempts, 'utf8')
        .trim()
        .split('\n')
        .map((l) => /--secure-port=(\d+)/.exec(l)?.[1]);
      assert.equal(ports.length, 3);
      assert.ok(
        ports.every((p) => p !== undefined),
        'each attempt got a --secure-port',
      );
      assert.equal(lines.filter((l) => l.includes('retrying')).length, 2);
    } finally {
      rmSync(assets, { recursive: true, force: true });
    }
  });

  test('an asset folder without binaries fails before starting anything', async () => {
    const assets = mkdtempSync(join(tmpdir(), 'capstan-kube-assets-'));
    try {
      await assert.rejects(startControlPlane({ assetsDir: assets }), (err: unknown) => {
        assert.ok(err instanceof PeerError);
        assert.equal(err.code, 'CAP_ERR_PEER_ASSETS');
        assert.match(err.message, /etcd.*kube-apiserver/);
        return true;
      });
    } finally {
      rmSync(assets, { recursive: true, force: true });
    }
  });

  test('an aborted signal stops start-up with CAP_ERR_PEER_ABORTED', async () => {
    const controller = new AbortController();
    controller.abort(new Error('test over'));
    await assert.rejects(startControlPlane({ signal: controller.signal }), { code: 'CAP_ERR_PEER_ABORTED' });
  });

  test('invalid YAML in crds or webhooks is refused before anything starts', async () => {
    await assert.rejects(startControlPlane({ crds: ['kind: [unclosed'] }), { code: 'CAP_ERR_PEER_MANIFEST' });
    await assert.rejects(startControlPlane({ webhooks: { configurations: ['a: b: c'] } }), {
      code: 'CAP_ERR_PEER_MANIFEST',
    });
  });
});

describe('startControlPlane with kube-controller-manager', () => {
  test('a Deployment gets a ReplicaSet and namespaces get a default ServiceAccount', async () => {
    await using cp = await startControlPlane({ controllerManager: true });
    assert.equal(cp.processes.length, 3);
    const apps = cp.kubeConfig.makeApiClient(AppsV1Api);
    const core = cp.kubeConfig.makeApiClient(CoreV1Api);
    await apps.createNamespacedDeployment({
      namespace: 'default',
      body: {
        metadata: { name: 'web' },
        spec: {
          replicas: 2,
          selector: { matchLabels: { app: 'web' } },
          template: {
            metadata: { labels: { app: 'web' } },
            spec: { containers: [{ name: 'web', image: 'busybox:local' }] },
          },
        },
      },
    });
    let replicaSets: Array<{ ownerName?: string; replicas?: number }> = [];
    let serviceAccounts: string[] = [];
    for (let i = 0; i < 600; i++) {
      const rs = await apps.listNamespacedReplicaSet({ namespace: 'default' });
      replicaSets = rs.items.map((r) => ({
        ownerName: r.metadata?.ownerReferences?.[0]?.name,
        replicas: r.spec?.replicas,
      }));
      const sa = await core.listNamespacedServiceAccount({ namespace: 'default' });
      serviceAccounts = sa.items.map((s) => s.metadata?.name ?? '');
      if (replicaSets.length > 0 && serviceAccounts.includes('default')) break;
      await sleep(100);
    }
    assert.deepEqual(replicaSets, [{ ownerName: 'web', replicas: 2 }]);
    assert.ok(serviceAccounts.includes('default'));
  });
});

describe('control-plane assets and cleanup on exit', () => {
  test('assets: the option, then CAPSTAN_KUBE_ASSETS, then KUBEBUILDER_ASSETS, then the peer cache; empty means unset', () => {
    const real = resolveKubeAssets({});
    assert.equal(real.source, 'peer cache');
    const saved = { c: process.env.CAPSTAN_KUBE_ASSETS, k: process.env.KUBEBUILDER_ASSETS };
    // Folders laid out like envtest's: the real binaries, linked.
    const folder = () => {
      const dir = mkdtempSync(join(tmpdir(), 'capstan-kube-assets-'));
      symlinkSync(real.etcd, join(dir, 'etcd'));
      symlinkSync(real.kubeApiserver, join(dir, 'kube-apiserver'));
      return dir;
    };
    const [opt, capstan, kubebuilder, empty] = [
      folder(),
      folder(),
      folder(),
      mkdtempSync(join(tmpdir(), 'x-')),
    ];
    try {
      process.env.KUBEBUILDER_ASSETS = kubebuilder;
      process.env.CAPSTAN_KUBE_ASSETS = '';
      assert.deepEqual(
        [resolveKubeAssets({}).source, resolveKubeAssets({}).dir],
        ['KUBEBUILDER_ASSETS', kubebuilder],
      );
      // No kube-controller-manager or kubectl in the folder: not offered, unless asked for.
      assert.equal(resolveKubeAssets({}).kubeControllerManager, undefined);
      assert.equal(resolveKubeAssets({}).kubectl, undefined);
      process.env.CAPSTAN_KUBE_ASSETS = capstan;
      assert.equal(resolveKubeAssets({}).source, 'CAPSTAN_KUBE_ASSETS');
      assert.deepEqual(
        [resolveKubeAssets({ assetsDir: opt }).source, resolveKubeAssets({ assetsDir: opt }).etcd],
        ['option', join(opt, 'etcd')],
      );
      assert.throws(
        () => resolveKubeAssets({ assetsDir: opt, controllerManager: true }),
        (e: unknown) => {
          assert.ok(e instanceof PeerError);
          assert.equal(e.code, 'CAP_ERR_PEER_ASSETS');
          assert.match(e.message, /kube-controller-manager/);
          return true;
        },
      );
      assert.throws(
        () => resolveKubeAssets({ assetsDir: empty }),
        (e: unknown) => {
          assert.ok(e instanceof PeerError && e.code === 'CAP_ERR_PEER_ASSETS');
          assert.match(e.message, /etcd, .*kube-apiserver/);
          return true;
        },
      );
      // The peer cache has the whole release.
      assert.ok(real.kubeControllerManager && real.kubectl);
    } finally {
      for (const [k, v] of [
        ['CAPSTAN_KUBE_ASSETS', saved.c],
        ['KUBEBUILDER_ASSETS', saved.k],
      ] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
      for (const d of [opt, capstan, kubebuilder, empty]) rmSync(d, { recursive: true, force: true });
    }
  });

  test('a process that exits without stop() leaves no etcd, no apiserver and no folder behind', async () => {
    // A child starts a control plane from a KUBEBUILDER_ASSETS folder (envtest's convention), reports what it
    // started, and exits at once.
    const real = resolveKubeAssets({});
    const assets = mkdtempSync(join(tmpdir(), 'capstan-kube-assets-'));
    try {
      symlinkSync(real.etcd, join(assets, 'etcd'));
      symlinkSync(real.kubeApiserver, join(assets, 'kube-apiserver'));
      const script = `
        import { startControlPlane } from ${JSON.stringify(join(import.meta.dirname, 'control-plane.ts'))};
        const cp = await startControlPlane();
        const res = await cp.request('/readyz');
        console.log(JSON.stringify({ source: cp.assets.source, status: res.status, dir: cp.dir,
          pids: cp.processes.map((p) => p.pid) }));
        process.exit(0);
      `;
      const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
        encoding: 'utf8',
        timeout: 180_000,
        env: { ...process.env, KUBEBUILDER_ASSETS: assets, CAPSTAN_KUBE_ASSETS: '' },
      });
      assert.equal(r.status, 0, r.stderr);
      const started = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as {
        source: string;
        status: number;
        dir: string;
        pids: number[];
      };
      assert.equal(started.source, 'KUBEBUILDER_ASSETS');
      assert.equal(started.status, 200);
      assert.equal(started.pids.length, 2);
      // SIGKILL was sent before the child exited; the kernel may still be tearing a large process down (the
      // apiserver maps hundreds of MB), so allow it a bounded moment to be gone.
      for (let i = 0; i < 100 && started.pids.some((pid) => alive(pid)); i++) await sleep(100);
      assert.deepEqual(
        started.pids.filter((pid) => alive(pid)),
        [],
      );
      assert.equal(existsSync(started.dir), false, `${started.dir} removed`);
    } finally {
      rmSync(assets, { recursive: true, force: true });
    }
  });
});
