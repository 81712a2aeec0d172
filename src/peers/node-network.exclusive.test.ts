// Pods on a real node reach the Kubernetes API the in-cluster way (ServiceAccount token, ca.crt,
// $KUBERNETES_SERVICE_HOST, RBAC) and Services route (kube-proxy, nftables mode). Root only; the host is
// compared before and after, kube-proxy's nftables rules included.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { eventually } from '../testing/index.ts';
import {
  binaryWithLibraries,
  CLUSTER_NETWORK,
  type ControlPlane,
  holdNodeLock,
  nodeFirewallRules,
  nodeHostState,
  startControlPlane,
} from './index.ts';

const isRoot = process.getuid?.() === 0;
// Outside CI a non-root developer skips these; in CI they run (and fail without root), never skip.
const skip = isRoot || process.env.CI ? false : 'a node needs root';
const NODE_IMAGE = 'capstan.local/node-runtime:1';

let cp: ControlPlane;
let stopped = false;
let hold: { release(): void } | undefined;
let beforeState: ReturnType<typeof firewall> | undefined;

/** The machine's packet-filter rules (nftables, legacy iptables) and its nftables tables. */
function firewall() {
  return { ...nodeFirewallRules(), nftTables: nodeHostState().nftTables };
}

/**
 * A program written with Capstan, as an operator would be: capstan/kube's `KubeClient.fromDefault()` (the
 * in-cluster configuration in a pod) lists the ConfigMaps of its namespace. Bundled into one file.
 */
async function bundleKubeClientApp(outfile: string): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'capstan-kube-app-'));
  try {
    const entry = join(work, 'entry.ts');
    writeFileSync(
      entry,
      `import { ConfigMap, KubeClient } from ${JSON.stringify(join(import.meta.dirname, '..', 'kube', 'index.ts'))};
const kube = await KubeClient.fromDefault();
try {
  const list = await kube.resource(ConfigMap, kube.namespace).list();
  console.log(JSON.stringify({ server: kube.server, namespace: kube.namespace, names: list.items.map((c) => c.metadata.name) }));
} catch (err) {
  console.log(JSON.stringify({ server: kube.server, code: err.code, status: err.status }));
} finally {
  await kube.close();
}
`,
    );
    const { build } = await import('esbuild');
    await build({
      entryPoints: [entry],
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node24',
      conditions: ['capstan-source'],
      // Bundled CommonJS dependencies call require().
      banner: {
        js: "import { createRequire as cr } from 'node:module'; const require = cr(import.meta.url);",
      },
      outfile,
      logLevel: 'silent',
    });
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

let appDir: string | undefined;

before(async () => {
  if (!isRoot) return;
  hold = await holdNodeLock();
  beforeState = firewall();
  appDir = mkdtempSync(join(tmpdir(), 'capstan-kube-app-out-'));
  await bundleKubeClientApp(join(appDir, 'kube-client.mjs'));
  cp = await startControlPlane({
    node: {
      images: [
        {
          name: NODE_IMAGE,
          files: [
            ...binaryWithLibraries(process.execPath, '/usr/local/bin/node'),
            { path: 'app/kube-client.mjs', from: join(appDir, 'kube-client.mjs') },
          ],
          dirs: ['etc'],
          cmd: ['/usr/local/bin/node'],
        },
      ],
    },
  });
});

after(async () => {
  if (!stopped) await cp?.stop();
  hold?.release();
  if (appDir) rmSync(appDir, { recursive: true, force: true });
});

function kubectl(args: string[], input?: string): string {
  const r = spawnSync(cp.assets.kubectl!, ['--kubeconfig', cp.kubeconfigPath, ...args], {
    encoding: 'utf8',
    ...(input !== undefined ? { input } : {}),
  });
  if (r.status !== 0) throw new Error(`kubectl ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

function apply(ns: string, ...objects: object[]): void {
  kubectl(['-n', ns, 'apply', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }));
}

/** Poll `check` until it returns a value; a generous deadline that only a hang misses. */
const until = <T>(what: string, check: () => T | undefined, timeoutMs = 120_000) =>
  eventually(what, check, { timeoutMs });

/**
 * A namespace whose `default` ServiceAccount exists: with the ServiceAccount admission plugin on (a node),
 * a pod created before the controller manager made it is refused, as in any cluster.
 */
async function namespace(name: string): Promise<string> {
  kubectl(['create', 'namespace', name]);
  await until('default ServiceAccount', () =>
    kubectl(['-n', name, 'get', 'sa', 'default']) ? true : undefined,
  );
  return name;
}

async function running(ns: string, pod: string): Promise<void> {
  await until(`${pod} Running`, () =>
    kubectl(['-n', ns, 'get', 'pod', pod, '-o', 'jsonpath={.status.phase}']) === 'Running' ? true : undefined,
  );
}

function pod(name: string, image: string, command: string[], labels: Record<string, string> = {}) {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, labels },
    spec: {
      terminationGracePeriodSeconds: 0,
      containers: [{ name: 'main', image, imagePullPolicy: 'Never', command }],
    },
  };
}

// What an operator's client does in a pod: the ServiceAccount's token, the cluster CA and the namespace from
// the projected volume, the apiserver at $KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT, certificate checked.
const IN_CLUSTER_GET = `
const fs = require('node:fs');
const https = require('node:https');
const dir = '/var/run/secrets/kubernetes.io/serviceaccount';
const ns = fs.readFileSync(dir + '/namespace', 'utf8');
const ca = fs.readFileSync(dir + '/ca.crt', 'utf8');
const { KUBERNETES_SERVICE_HOST: host, KUBERNETES_SERVICE_PORT: port } = process.env;
const req = https.get({ host, port, path: '/api/v1/namespaces/' + ns + '/configmaps', ca,
  headers: { authorization: 'Bearer ' + fs.readFileSync(dir + '/token', 'utf8') } }, (res) => {
  let body = '';
  res.on('data', (d) => { body += d; });
  res.on('end', () => console.log(JSON.stringify({ status: res.statusCode, host, port, ns, ca, body: JSON.parse(body) })));
});
req.on('error', (e) => { console.log(JSON.stringify({ error: e.message })); process.exitCode = 1; });
`;

interface InClusterAnswer {
  status: number;
  host: string;
  port: string;
  ns: string;
  ca: string;
  body: { kind: string; message?: string; items?: Array<{ metadata: { name: string } }> };
}

interface CapstanClientAnswer {
  server: string;
  namespace?: string;
  names?: string[];
  code?: string;
  status?: number;
}

test('a pod calls the apiserver with its ServiceAccount token: 403 without RBAC, 200 after a RoleBinding; so does a Capstan program (capstan/kube in-cluster config)', {
  skip,
}, async () => {
  const ns = await namespace('in-cluster');
  apply(
    ns,
    pod('client', NODE_IMAGE, [
      '/usr/local/bin/node',
      '-e',
      "process.on('SIGTERM', () => process.exit(0)); setInterval(() => {}, 1 << 30);",
    ]),
  );
  await running(ns, 'client');
  const call = () =>
    JSON.parse(
      kubectl(['-n', ns, 'exec', 'client', '--', '/usr/local/bin/node', '-e', IN_CLUSTER_GET]),
    ) as InClusterAnswer;

  const capstanClient = () =>
    JSON.parse(
      kubectl(['-n', ns, 'exec', 'client', '--', '/usr/local/bin/node', '/app/kube-client.mjs']),
    ) as CapstanClientAnswer;

  const denied = call();
  // The `kubernetes` Service's ClusterIP and port, from the kubelet; TLS verified against the mounted CA.
  assert.equal(denied.host, CLUSTER_NETWORK.kubernetesServiceIp);
  assert.equal(denied.port, '443');
  assert.equal(denied.ns, ns);
  assert.equal(denied.ca.trim(), cp.caPem.trim());
  // Authenticated as the pod's ServiceAccount (not anonymous), then refused by RBAC.
  assert.equal(denied.status, 403);
  assert.match(denied.body.message ?? '', new RegExp(`system:serviceaccount:${ns}:default`));
  assert.deepEqual(capstanClient(), {
    server: `https://${CLUSTER_NETWORK.kubernetesServiceIp}:443`,
    code: 'CAP_ERR_KUBE_FORBIDDEN',
    status: 403,
  });

  apply(
    ns,
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'Role',
      metadata: { name: 'read-configmaps' },
      rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list'] }],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: 'default-reads-configmaps' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'read-configmaps' },
      subjects: [{ kind: 'ServiceAccount', name: 'default', namespace: ns }],
    },
  );
  const allowed = await until('200 after the RoleBinding', () => {
    const answer = call();
    return answer.status === 200 ? answer : undefined;
  });
  assert.equal(allowed.body.kind, 'ConfigMapList');
  // The controller manager published the cluster CA into the namespace: that is where ca.crt came from.
  assert.ok(allowed.body.items?.some((cm) => cm.metadata.name === 'kube-root-ca.crt'));
  const listed = capstanClient();
  assert.equal(listed.namespace, ns);
  assert.ok(listed.names?.includes('kube-root-ca.crt'), JSON.stringify(listed));
});

test('a ClusterIP Service load-balances over two pods; pods find it through its environment variables', {
  skip,
}, async () => {
  const ns = await namespace('services');
  const httpd = ['sh', '-c', 'mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www'];
  apply(
    ns,
    pod('web-a', cp.node!.images.busybox, httpd, { app: 'web' }),
    pod('web-b', cp.node!.images.busybox, httpd, { app: 'web' }),
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'web' },
      spec: { selector: { app: 'web' }, ports: [{ port: 80, targetPort: 8080 }] },
    },
  );
  await running(ns, 'web-a');
  await running(ns, 'web-b');
  const clusterIp = kubectl(['-n', ns, 'get', 'service', 'web', '-o', 'jsonpath={.spec.clusterIP}']);
  assert.match(clusterIp, /^10\.(9[6-9]|10\d|11[01])\.\d+\.\d+$/, 'a ClusterIP in 10.96.0.0/12');
  // Created after the Service, so the kubelet gives it WEB_SERVICE_HOST/PORT (there is no cluster DNS).
  apply(ns, pod('client', cp.node!.images.busybox, ['sleep', '3600']));
  await running(ns, 'client');
  const env = kubectl(['-n', ns, 'exec', 'client', '--', 'env']);
  assert.match(env, new RegExp(`^WEB_SERVICE_HOST=${clusterIp.replaceAll('.', '\\.')}$`, 'm'));
  assert.match(env, /^WEB_SERVICE_PORT=80$/m);

  // busybox-static's `wget -T` segfaults (Debian 12, 1.35): `timeout` bounds each request instead.
  const seen = new Set<string>();
  await until('both pods answer through the ClusterIP', () => {
    const out = kubectl([
      '-n',
      ns,
      'exec',
      'client',
      '--',
      'sh',
      '-c',
      'for i in $(seq 1 20); do timeout 5 wget -q -O - http://$WEB_SERVICE_HOST:$WEB_SERVICE_PORT/ || echo failed; done',
    ]);
    for (const line of out.split('\n').filter(Boolean)) seen.add(line.trim());
    return seen.has('web-a') && seen.has('web-b') ? true : undefined;
  });
  assert.deepEqual(
    [...seen].filter((l) => l !== 'web-a' && l !== 'web-b'),
    [],
    'only the two pods answer',
  );

  // A pod reaches a Service whose pod is itself (hairpin: kube-proxy masquerades it).
  const self = kubectl([
    '-n',
    ns,
    'exec',
    'web-a',
    '--',
    'sh',
    '-c',
    `for i in $(seq 1 10); do timeout 5 wget -q -O - http://${clusterIp}/ || echo failed; done`,
  ]);
  assert.doesNotMatch(self, /failed/);
});

test('after teardown no nftables or iptables rule is left (kube-proxy tables gone)', { skip }, async () => {
  assert.ok(
    firewall().nftTables?.includes('ip kube-proxy'),
    'kube-proxy programs its table while the node runs',
  );
  await cp.stop();
  stopped = true;
  assert.deepEqual(firewall(), beforeState);
});
