// The KeyValueStore operator (examples/keyvalue-operator/), run as users run it (its own process, with a
// kubeconfig) against a real control plane with a real node: Redis pods run and answer PING, a killed pod
// and a deleted Deployment come back, /scale scales, an image change rolls out one pod at a time, the backup
// Job writes an .rdb and shows in status, and delete takes a last backup behind the finalizer.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import {
  ClusterRole,
  ClusterRoleBinding,
  ConfigMap,
  CronJob,
  crdYaml,
  Deployment,
  EndpointSlice,
  Event,
  findCondition,
  Job,
  type KubeClient,
  Lease,
  Namespace,
  Pod,
  type ResourceType,
  Role,
  RoleBinding,
  rbacManifests,
  Service,
  ServiceAccount,
} from 'capstan/kube';
import { capstanImageSpec } from 'capstan/peers';
import {
  binaryWithLibraries,
  busyboxImageSpec,
  type ControlPlane,
  eventually as eventuallyWithin,
  type ImageFile,
  type ImageSpec,
  startControlPlane,
} from 'capstan/testing';
import { KeyValueStore, type KeyValueStoreObject } from '../examples/keyvalue-operator/crd.ts';
import {
  FINALIZER,
  operator as operatorDefinition,
  STORE_LABEL,
} from '../examples/keyvalue-operator/operator.ts';
import { type JsonProcess, spawnJson } from './fixtures/json-process.ts';

const mainTs = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
const operatorMain = fileURLToPath(new URL('../examples/keyvalue-operator/operator.ts', import.meta.url));
const NS = 'kv';
const IMAGE_A = 'capstan.local/redis:7.0-a';
const IMAGE_B = 'capstan.local/redis:7.0-b';

/**
 * Debian's redis-server and redis-cli (one Redis version only) with busybox for `sh` and `date`: the two tags
 * differ only in a file naming the tag, so "upgrading" from A to B is a real image change with the same Redis.
 */
function redisImage(name: string): ImageSpec {
  const base = busyboxImageSpec(name);
  const files = new Map<string, ImageFile>();
  for (const f of [
    ...base.files,
    ...binaryWithLibraries('/usr/bin/redis-server'),
    ...binaryWithLibraries('/usr/bin/redis-cli'),
    { path: 'etc/capstan-image', content: `${name}\n` },
  ]) {
    files.set(f.path.replace(/^\//, ''), f);
  }
  return { ...base, files: [...files.values()], dirs: [...(base.dirs ?? []), 'data'] };
}

// Outside CI a non-root developer skips these (a node needs root); in CI they run, never skip.
const skip = process.getuid?.() === 0 || process.env['CI'] ? false : 'a node needs root';
let cp: ControlPlane;
let client: KubeClient;
let operator: JsonProcess | undefined;
let operatorKubeconfig = '';
const backups = mkdtempSync('/tmp/capstan-kv-backups-');
const work = mkdtempSync(join(tmpdir(), 'capstan-kv-operator-'));

/**
 * The operator runs as its own ServiceAccount, bound to the least-privilege roles `rbacManifests` derives
 * from the operator definition (what `capstan kube manifests` ships): a verb the operator needs and the
 * roles lack fails the test. The token comes from the TokenRequest API, as the kubelet would mount it.
 */
async function serviceAccountKubeconfig(): Promise<string> {
  const { namespace, name } = operatorDefinition.definition;
  await client.resource(Namespace).create({ metadata: { name: namespace } });
  const types: Record<string, ResourceType<unknown>> = {
    ServiceAccount,
    ClusterRole,
    ClusterRoleBinding,
    Role,
    RoleBinding,
  } as never;
  for (const o of rbacManifests(operatorDefinition)) {
    const type = types[o.kind ?? ''];
    assert.ok(type, `no type for ${o.kind}`);
    await client.resource(type).apply(o, { fieldManager: 'test', force: true });
  }
  const res = await client.request({
    method: 'POST',
    path: `/api/v1/namespaces/${namespace}/serviceaccounts/${name}/token`,
    json: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds: 3600 } },
  });
  const token = (JSON.parse(await res.body.text()) as { status: { token: string } }).status.token;
  const file = join(work, 'kubeconfig');
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      {
        name: 'c',
        cluster: {
          server: cp.server,
          'certificate-authority-data': Buffer.from(cp.caPem).toString('base64'),
        },
      },
    ],
    users: [{ name: name, user: { token } }],
    contexts: [{ name: 'c', context: { cluster: 'c', user: name } }],
    'current-context': 'c',
  };
  writeFileSync(file, JSON.stringify(config), { mode: 0o600 });
  return file;
}

before(
  async () => {
    if (skip) return;
    cp = await startControlPlane({ node: true });
    client = cp.client;
    assert.ok(cp.node);
    await cp.node.loadImage(redisImage(IMAGE_A));
    await cp.node.loadImage(redisImage(IMAGE_B));
    await cp.installCrds([crdYaml(KeyValueStore)]);
    await client.resource(Namespace).create({ metadata: { name: NS } });
    operatorKubeconfig = await serviceAccountKubeconfig();
  },
  { timeout: 20 * 60_000 },
); // the node lock may be held by another test file for minutes
after(async () => {
  operator?.kill();
  await cp?.stop();
  rmSync(backups, { recursive: true, force: true });
  rmSync(work, { recursive: true, force: true });
});

const eventually = <T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 90_000) =>
  eventuallyWithin(what, probe, { timeoutMs, context: () => operator?.stderr() ?? '' });

/** One RESP command over TCP; resolves with the first reply line. */
function redis(host: string, command: string[], timeoutMs = 3_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port: 6379, timeout: timeoutMs });
    let data = '';
    socket.setEncoding('utf8');
    socket.on('connect', () => {
      socket.write(
        `*${command.length}\r\n${command.map((c) => `$${Buffer.byteLength(c)}\r\n${c}\r\n`).join('')}`,
      );
    });
    socket.on('data', (chunk: string) => {
      data += chunk;
      const end = data.indexOf('\r\n');
      if (end >= 0) {
        socket.destroy();
        resolve(data.slice(0, end));
      }
    });
    socket.on('timeout', () => socket.destroy(new Error(`redis ${host}: timeout`)));
    socket.on('error', reject);
  });
}

const stores = () => client.resource(KeyValueStore, NS);
const store = () => stores().get('cache') as Promise<KeyValueStoreObject>;

function condition(s: KeyValueStoreObject, type: string) {
  return findCondition(s.status?.conditions, type);
}

/** The store is Available at its current generation, its rollout complete. */
async function settled(what: string): Promise<KeyValueStoreObject> {
  return eventually(what, async () => {
    const s = await store();
    const ok =
      s.status?.observedGeneration === s.metadata?.generation &&
      condition(s, 'Available')?.status === 'True' &&
      condition(s, 'Progressing')?.status === 'False';
    return ok ? s : undefined;
  });
}

/** Server pods of the store that are Ready and not terminating. */
async function readyPods(): Promise<Pod[]> {
  const { items } = await client
    .resource(Pod, NS)
    .list({ labelSelector: `${STORE_LABEL}=cache,app.kubernetes.io/component=server` });
  return items.filter(
    (p) =>
      !p.metadata?.deletionTimestamp &&
      p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
  );
}

/** Addresses the Service's EndpointSlices list as ready: the pods behind the Service. */
async function serviceEndpoints(): Promise<string[]> {
  const { items } = await client
    .resource(EndpointSlice, NS)
    .list({ labelSelector: 'kubernetes.io/service-name=cache' });
  return items.flatMap((s) =>
    (s.endpoints ?? []).filter((e) => e.conditions?.ready).flatMap((e) => e.addresses ?? []),
  );
}

async function events(reason: string): Promise<number> {
  const { items } = await client.resource(Event, NS).list();
  return items.filter((e) => e.reason === reason && e.regarding?.kind === 'KeyValueStore').length;
}

test('the operator starts as its own process and installs a store: ConfigMap, Service, Deployment; Redis answers PING through the Service', {
  skip,
}, async () => {
  operator = spawnJson(operatorMain, [], {
    KUBECONFIG: operatorKubeconfig,
    PORT: '0',
    LEADER_ELECTION: 'true',
    POD_NAMESPACE: operatorDefinition.definition.namespace,
    LOG_FORMAT: 'json',
  });
  await operator.waitFor((l) => l['msg'] === 'listening', 30_000);
  await stores().create({
    metadata: { name: 'cache' },
    spec: {
      image: IMAGE_A,
      replicas: 2,
      maxMemory: '32mb',
      backup: { schedule: '0 3 * * *', hostPath: backups },
    },
  } as never);
  const s = await settled('store available');
  assert.equal(s.status?.readyReplicas, 2);
  assert.equal(s.status?.image, IMAGE_A);
  assert.ok(s.metadata?.finalizers?.includes(FINALIZER));
  assert.equal(condition(s, 'Degraded')?.status, 'False');
  for (const type of ['Available', 'Progressing', 'Degraded']) {
    assert.equal(condition(s, type)?.observedGeneration, s.metadata?.generation, type);
  }
  const children = [
    await client.resource(ConfigMap, NS).get('cache'),
    await client.resource(Service, NS).get('cache'),
    await client.resource(Deployment, NS).get('cache'),
    await client.resource(CronJob, NS).get('cache-backup'),
  ];
  for (const child of children) {
    const owner = child.metadata?.ownerReferences?.find((o) => o.controller);
    assert.equal(owner?.uid, s.metadata?.uid, `${child.kind} owned by the store`);
  }
  const conf = await client.resource(ConfigMap, NS).get('cache');
  assert.match(conf.data?.['redis.conf'] ?? '', /maxmemory 32mb/);
  // The Service selects exactly the Redis pods, and each answers PING from this machine.
  const endpoints = await eventually('2 endpoints', async () => {
    const e = await serviceEndpoints();
    return e.length === 2 ? e : undefined;
  });
  const pods = (await readyPods()).map((p) => p.status?.podIP);
  assert.deepEqual([...endpoints].sort(), [...pods].sort());
  for (const ip of endpoints) assert.equal(await redis(ip, ['PING']), '+PONG');
  assert.equal(await redis(endpoints[0] ?? '', ['CONFIG', 'GET', 'maxmemory-policy']), '*2');
  assert.ok((await events('Created')) >= 1);
});

test('a killed pod comes back, and a deleted Deployment is applied again', { skip }, async () => {
  const [victim] = await readyPods();
  assert.ok(victim?.metadata?.name);
  await client.resource(Pod, NS).delete(victim.metadata.name, { gracePeriodSeconds: 0 });
  const replaced = await eventually('pod replaced', async () => {
    const pods = await readyPods();
    return pods.length === 2 && !pods.some((p) => p.metadata?.uid === victim.metadata?.uid)
      ? pods
      : undefined;
  });
  for (const p of replaced) assert.equal(await redis(p.status?.podIP ?? '', ['PING']), '+PONG');

  const old = await client.resource(Deployment, NS).get('cache');
  await client.resource(Deployment, NS).delete('cache');
  const again = await eventually('deployment recreated', async () => {
    const d = await client.resource(Deployment, NS).getOptional('cache');
    return d && d.metadata?.uid !== old.metadata?.uid && !d.metadata?.deletionTimestamp ? d : undefined;
  });
  assert.equal(again.spec?.replicas, 2);
  await eventually('Recreated event', async () => ((await events('Recreated')) >= 1 ? true : undefined));
  await settled('available after recreate');
  await eventually('2 pods after recreate', async () =>
    (await readyPods()).length === 2 ? true : undefined,
  );
});

test('scaling through the scale subresource: /scale → spec.replicas → the Deployment → 3 pods', {
  skip,
}, async () => {
  const scale = await stores().getScale('cache');
  assert.equal(scale.spec?.replicas, 2);
  await stores().replaceScale('cache', { ...scale, spec: { replicas: 3 } });
  await eventually('3 ready pods', async () => ((await readyPods()).length === 3 ? true : undefined));
  const s = await settled('available at 3');
  assert.equal(s.spec.replicas, 3);
  const after = await stores().getScale('cache');
  assert.equal(after.status?.replicas, 3);
  assert.equal(after.status?.selector, `${STORE_LABEL}=cache,app.kubernetes.io/component=server`);
});

test('an image change rolls out one pod at a time, never below 3 ready pods, with progress in status', {
  skip,
}, async () => {
  const samples: Array<{ total: number; ready: number; readyNew: number }> = [];
  const progress = new Set<string>();
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const { items } = await client
        .resource(Pod, NS)
        .list({ labelSelector: `${STORE_LABEL}=cache,app.kubernetes.io/component=server` });
      const live = items.filter((p) => !p.metadata?.deletionTimestamp);
      const ready = live.filter((p) =>
        p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
      );
      samples.push({
        total: live.length,
        ready: ready.length,
        readyNew: ready.filter((p) => p.spec?.containers[0]?.image === IMAGE_B).length,
      });
      const s = await store();
      const p = condition(s, 'Progressing');
      if (p?.status === 'True') progress.add(`${s.status?.updatedReplicas}`);
      await sleep(150);
    }
  })();
  try {
    await stores().patch('cache', { spec: { image: IMAGE_B } });
    await eventually('rolled out', async () => {
      const s = await store();
      return s.status?.image === IMAGE_B && condition(s, 'Progressing')?.status === 'False' ? s : undefined;
    });
  } finally {
    sampling = false;
    await sampler;
  }
  const maxTotal = Math.max(...samples.map((s) => s.total));
  const minReady = Math.min(...samples.map((s) => s.ready));
  const seen = [...new Set(samples.map((s) => s.readyNew))].sort();
  assert.ok(maxTotal <= 4, `at most one surge pod: saw ${maxTotal}`);
  assert.ok(minReady >= 3, `maxUnavailable 0: saw ${minReady} ready`);
  assert.deepEqual(seen, [0, 1, 2, 3], 'new pods became ready one by one');
  assert.ok(progress.size >= 1, 'status reported the rollout in progress');
  assert.equal((await readyPods()).length, 3);
  for (const p of await readyPods()) {
    assert.equal(p.spec?.containers[0]?.image, IMAGE_B);
    assert.equal(await redis(p.status?.podIP ?? '', ['PING']), '+PONG');
  }
  assert.ok((await events('Upgrading')) >= 1);
  await eventually('RolloutComplete event', async () =>
    (await events('RolloutComplete')) >= 1 ? true : undefined,
  );
});

test('an image that cannot be pulled: Degraded, while maxUnavailable 0 keeps the old pods serving; fixed, it clears', {
  skip,
}, async () => {
  await stores().patch('cache', { spec: { image: 'capstan.local/redis:missing' } });
  const degraded = await eventually('Degraded', async () => {
    const s = await store();
    const c = condition(s, 'Degraded');
    return c?.status === 'True' && c.observedGeneration === s.metadata?.generation ? s : undefined;
  });
  assert.match(condition(degraded, 'Degraded')?.message ?? '', /ErrImagePull|ImagePullBackOff/);
  assert.equal(condition(degraded, 'Available')?.status, 'True', 'the 3 old pods still serve');
  assert.equal(condition(degraded, 'Progressing')?.status, 'True');
  assert.equal(degraded.status?.image, IMAGE_B, 'status.image stays what every pod runs');
  assert.equal((await readyPods()).length, 3);
  await stores().patch('cache', { spec: { image: IMAGE_B } });
  const healed = await settled('healed');
  assert.equal(condition(healed, 'Degraded')?.status, 'False');
});

test('a backup Job from the CronJob writes an .rdb of Redis and shows in status.lastBackup', {
  skip,
}, async (t) => {
  // What `kubectl create job --from=cronjob/cache-backup` does: a Job of the CronJob's template.
  const cron = await client.resource(CronJob, NS).get('cache-backup');
  const template = structuredClone(cron.spec?.jobTemplate);
  assert.ok(template?.spec);
  const service = await client.resource(Service, NS).get('cache');
  const clusterIp = service.spec?.clusterIP ?? '';
  const env = template.spec.template.spec?.containers[0]?.env ?? [];
  assert.equal(env.find((e) => e.name === 'REDIS_HOST')?.value, clusterIp);
  const routed = await redis(clusterIp, ['PING'], 1_000).catch(() => undefined);
  if (routed !== '+PONG') {
    // No kube-proxy on this node yet: ClusterIPs route nowhere, so point this one Job at a pod of the Service.
    const [ip] = await serviceEndpoints();
    t.diagnostic(`ClusterIP ${clusterIp} not routed (no kube-proxy); the Job uses pod ${ip}`);
    for (const e of env) if (e.name === 'REDIS_HOST') e.value = ip ?? '';
  }
  const pods = await readyPods();
  for (const p of pods) await redis(p.status?.podIP ?? '', ['SET', 'greeting', 'hello']);
  await client.resource(Job, NS).create({
    metadata: {
      name: 'cache-backup-manual',
      labels: template.metadata?.labels ?? {},
      annotations: { 'cronjob.kubernetes.io/instantiate': 'manual' },
    },
    spec: template.spec,
  });
  const s = await eventually('lastBackup', async () => {
    const s = await store();
    return s.status?.lastBackup?.job === 'cache-backup-manual' ? s : undefined;
  });
  assert.ok(s.status?.lastBackup?.completionTime);
  const files = readdirSync(backups).filter((f) => /^cache-.*\.rdb$/.test(f));
  assert.equal(files.length, 1, `backup files: ${files.join(', ')}`);
  const rdb = readFileSync(`${backups}/${files[0]}`);
  assert.equal(rdb.subarray(0, 5).toString(), 'REDIS', 'an RDB file');
  assert.ok(rdb.includes('greeting'), 'holds the key written before');
  await eventually('BackupCompleted event', async () =>
    (await events('BackupCompleted')) >= 1 ? true : undefined,
  );
});

test('delete: the finalizer takes a last backup, then the store and its children go', { skip }, async (t) => {
  const before = readdirSync(backups).length;
  const uid = (await store()).metadata?.uid ?? '';
  const service = await client.resource(Service, NS).get('cache');
  const routed =
    (await redis(service.spec?.clusterIP ?? '', ['PING'], 1_000).catch(() => undefined)) === '+PONG';
  await stores().delete('cache');
  await eventually(
    'store gone',
    async () => ((await stores().getOptional('cache')) ? undefined : true),
    180_000,
  );
  const job = await client.resource(Job, NS).get(`cache-final-${uid.slice(0, 8)}`);
  assert.equal(job.metadata?.ownerReferences, undefined, 'the last backup outlives the store');
  if (routed) {
    assert.ok(job.status?.succeeded, 'final backup Job succeeded');
    assert.equal(readdirSync(backups).length, before + 1);
    assert.equal(await events('FinalBackupCompleted'), 1);
  } else {
    // Without kube-proxy the Job cannot reach the ClusterIP: it fails, and a failed last backup must not
    // keep a store from being deleted.
    t.diagnostic('ClusterIP not routed (no kube-proxy): the final backup fails, the delete goes on');
    assert.ok(job.status?.failed, 'final backup Job failed');
    assert.equal(readdirSync(backups).length, before);
    assert.equal(await events('FinalBackupFailed'), 1);
  }
  await eventually('children collected', async () =>
    (await client.resource(Deployment, NS).getOptional('cache')) ? undefined : true,
  );
  operator?.child.kill('SIGTERM');
  const { code } = await (operator as JsonProcess).exited;
  assert.equal(code, 0, operator?.stderr());
});

test('in the cluster: the operator image (capstanImageSpec) deployed with `capstan kube manifests` runs a store', {
  skip,
}, async () => {
  // The program users ship: the operator module bundled onto the Node base layer, loaded into the node.
  const image = await capstanImageSpec({ entry: operatorMain, conditions: ['capstan-source'] });
  assert.ok(cp.node);
  await cp.node.loadImage(image);
  const gen = spawnSync(
    process.execPath,
    [
      '--conditions=capstan-source',
      mainTs,
      'kube',
      'manifests',
      operatorMain,
      '--image',
      image.name,
      '--image-pull-policy',
      'Never',
      '--replicas',
      '1',
    ],
    { encoding: 'utf8', timeout: 60_000 },
  );
  assert.equal(gen.status, 0, gen.stderr);
  assert.ok(cp.assets.kubectl);
  const apply = spawnSync(
    cp.assets.kubectl,
    ['--kubeconfig', cp.kubeconfigPath, 'apply', '--server-side', '--force-conflicts', '-f', '-'],
    { encoding: 'utf8', timeout: 60_000, input: gen.stdout },
  );
  assert.equal(apply.status, 0, apply.stderr);
  const { namespace, name } = operatorDefinition.definition;
  await eventually(
    'operator pod ready',
    async () => {
      const d = await client.resource(Deployment, namespace).get(name);
      return (d.status?.readyReplicas ?? 0) >= 1 ? d : undefined;
    },
    180_000,
  );
  await stores().create({
    metadata: { name: 'incluster' },
    spec: { image: IMAGE_B, replicas: 1, backup: { schedule: '0 3 * * *', hostPath: backups } },
  } as never);
  const s = await eventually(
    'in-cluster store available',
    async () => {
      const s = await stores().get('incluster');
      return condition(s, 'Available')?.status === 'True' && s.status?.observedGeneration === 1
        ? s
        : undefined;
    },
    180_000,
  );
  const host = (s.status?.service ?? '').split(':')[0] ?? '';
  const [ip] = (await client.resource(Pod, NS).list({ labelSelector: `${STORE_LABEL}=incluster` })).items.map(
    (p) => p.status?.podIP,
  );
  assert.equal(await redis(ip ?? '', ['PING']), '+PONG');
  assert.match(host, /^10\./);
  const lease = await eventually('lease held by the pod', async () => {
    const { items } = await client.resource(Pod, namespace).list();
    const l = await client.resource(Lease, namespace).getOptional(name);
    return l?.spec?.holderIdentity && items.some((p) => p.metadata?.name === l.spec?.holderIdentity)
      ? l
      : undefined;
  });
  assert.ok(lease.spec?.holderIdentity);
  await stores().delete('incluster');
  await eventually(
    'in-cluster store gone',
    async () => ((await stores().getOptional('incluster')) ? undefined : true),
    180_000,
  );
});
