// Leader election and the Manager against a real kube-apiserver and etcd (one control plane for the file).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Health, Lifecycle } from '../runtime/index.ts';
import { type ControlPlane, eventually as eventuallyWithin, startControlPlane } from '../testing/index.ts';
import { Action } from './action.ts';
import { ConfigMap, Lease, Namespace } from './builtin.ts';
import { KubeClient } from './client.ts';
import { controller } from './controller.ts';
import { KubeError, KubeErrorCode } from './errors.ts';
import { Manager } from './manager.ts';

let cp: ControlPlane;
let admin: KubeClient;

before(async () => {
  cp = await startControlPlane();
  admin = await KubeClient.fromKubeconfig({ path: cp.kubeconfigPath });
});

after(async () => {
  await admin?.close();
  await cp?.stop();
});

const TIMING = { leaseDurationMs: 3_000, renewDeadlineMs: 2_000, retryPeriodMs: 500 };

const eventually = <T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 30_000,
) => eventuallyWithin(what, probe, { timeoutMs, intervalMs: 50 });

interface Replica {
  identity: string;
  manager: Manager;
  client: KubeClient;
  stop: AbortController;
  done: Promise<unknown>;
}

/** One operator replica: a Manager with leader election and a controller noting who reconciled what. */
async function replica(ns: string, identity: string, reconciledBy: Map<string, string[]>): Promise<Replica> {
  const client = await KubeClient.fromKubeconfig({ path: cp.kubeconfigPath });
  const manager = new Manager({
    client,
    leaderElection: { name: 'mirror-operator', namespace: ns, identity, ...TIMING },
    controllers: { drainTimeoutMs: 2_000 },
  });
  manager.add(
    controller(ConfigMap)
      .inNamespace(ns)
      .withLabelSelector({ watched: 'yes' })
      .build(async (request) => {
        const list = reconciledBy.get(request.name) ?? [];
        list.push(identity);
        reconciledBy.set(request.name, list);
        return Action.awaitChange();
      }),
  );
  const stop = new AbortController();
  const done = manager.run(stop.signal).then(
    () => 'stopped',
    (err: unknown) => err,
  );
  return { identity, manager, client, stop, done };
}

async function holder(ns: string): Promise<string | undefined> {
  const lease = await admin.resource(Lease, ns).getOptional('mirror-operator');
  return lease?.spec?.holderIdentity || undefined;
}

test('two replicas: exactly one reconciles; when the leader stops, the other takes over', async () => {
  const ns = 'election';
  await admin.resource(Namespace).create({ metadata: { name: ns } });
  const reconciledBy = new Map<string, string[]>();
  const a = await replica(ns, 'replica-a', reconciledBy);
  const b = await replica(ns, 'replica-b', reconciledBy);
  try {
    const configMaps = admin.resource(ConfigMap, ns);
    for (let i = 0; i < 5; i++) {
      await configMaps.create({ metadata: { name: `before-${i}`, labels: { watched: 'yes' } } });
    }
    await eventually('all 5 reconciled', () => (reconciledBy.size === 5 ? true : undefined));
    await sleep(1_500); // several renew periods: a second leader would show up now
    const leader = await holder(ns);
    assert.ok(leader === 'replica-a' || leader === 'replica-b');
    const reconcilers = new Set([...reconciledBy.values()].flat());
    assert.deepEqual([...reconcilers], [leader], 'only the lease holder reconciled');
    assert.equal(a.manager.isLeader, leader === 'replica-a');
    assert.equal(b.manager.isLeader, leader === 'replica-b');
    const lease = await admin.resource(Lease, ns).get('mirror-operator');
    assert.equal(lease.spec?.leaseDurationSeconds, 3);

    // The leader stops cleanly: it releases the lease, the standby takes over without waiting it out.
    const [first, second] = leader === 'replica-a' ? [a, b] : [b, a];
    const stoppedAt = Date.now();
    first.stop.abort();
    assert.equal(await first.done, 'stopped');
    await eventually('standby leads', async () =>
      (await holder(ns)) === second.identity ? true : undefined,
    );
    const takeoverMs = Date.now() - stoppedAt;
    assert.ok(
      takeoverMs < TIMING.leaseDurationMs + 2 * TIMING.retryPeriodMs,
      `takeover took ${takeoverMs} ms`,
    );
    const transitions = (await admin.resource(Lease, ns).get('mirror-operator')).spec?.leaseTransitions;
    assert.ok((transitions ?? 0) >= 1);

    await configMaps.create({ metadata: { name: 'after', labels: { watched: 'yes' } } });
    await eventually('new leader reconciles', () => (reconciledBy.get('after') ? true : undefined));
    assert.deepEqual(reconciledBy.get('after'), [second.identity]);
    // The new leader relisted and reconciled everything once more; the old one did nothing since.
    assert.ok(reconciledBy.get('before-0')?.includes(second.identity));
    console.log(`takeover after a clean stop: ${takeoverMs} ms`);
  } finally {
    a.stop.abort();
    b.stop.abort();
    await Promise.all([a.done, b.done]);
    await Promise.all([a.client.close(), b.client.close()]);
  }
});

test('the leader process is SIGKILLed: the other replica takes over within the lease duration', async () => {
  const ns = 'election-kill';
  await admin.resource(Namespace).create({ metadata: { name: ns } });
  await admin.resource(ConfigMap, ns).create({ metadata: { name: 'thing', labels: { watched: 'yes' } } });
  const child = spawn(
    process.execPath,
    ['--conditions=capstan-source', new URL('./testdata/leader-replica.ts', import.meta.url).pathname],
    {
      env: { ...process.env, KUBECONFIG_PATH: cp.kubeconfigPath, NAMESPACE: ns, IDENTITY: 'child' },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const reconciledBy = new Map<string, string[]>();
  let b: Replica | undefined;
  try {
    await eventually(
      'the child leads',
      async () => ((await holder(ns)) === 'child' ? true : undefined),
      60_000,
    );
    b = await replica(ns, 'replica-b', reconciledBy);
    await sleep(1_500);
    assert.equal(reconciledBy.size, 0, 'the standby does not reconcile');
    const killedAt = Date.now();
    child.kill('SIGKILL');
    await exited;
    await eventually('b leads', async () => ((await holder(ns)) === 'replica-b' ? true : undefined));
    await eventually('b reconciles', () => (reconciledBy.get('thing') ? true : undefined));
    const takeoverMs = Date.now() - killedAt;
    // The lease was not released: b waits it out (3 s from its last sight of a renewal), plus one retry.
    assert.ok(takeoverMs >= 1_000, `took over after ${takeoverMs} ms: before the lease could expire`);
    assert.ok(
      takeoverMs < TIMING.leaseDurationMs + 3 * TIMING.retryPeriodMs + 1_000,
      `took ${takeoverMs} ms`,
    );
    console.log(`takeover after SIGKILL of the leader: ${takeoverMs} ms (lease 3 s)`);
  } finally {
    child.kill('SIGKILL');
    b?.stop.abort();
    await b?.done;
    await b?.client.close();
  }
});

test('a leader whose lease is taken stops reconciling and run() rejects with LEASE_LOST', async () => {
  const ns = 'election-lost';
  await admin.resource(Namespace).create({ metadata: { name: ns } });
  const reconciledBy = new Map<string, string[]>();
  const a = await replica(ns, 'replica-a', reconciledBy);
  try {
    const health = new Health();
    a.manager.attach({ health });
    await eventually('a leads', async () => ((await holder(ns)) === 'replica-a' ? true : undefined));
    await eventually('alive', () => (health.check('kube-manager')?.status === 'ok' ? true : undefined));
    // Someone else writes the lease (a replica that judged it expired, or an operator by hand).
    const leases = admin.resource(Lease, ns);
    const lease = await leases.get('mirror-operator');
    await leases.replace({
      ...lease,
      spec: {
        ...lease.spec,
        holderIdentity: 'thief',
        renewTime: new Date().toISOString().replace('Z', '000Z'),
      },
    });
    const outcome = await Promise.race([a.done, sleep(TIMING.renewDeadlineMs + 3_000).then(() => 'timeout')]);
    assert.ok(
      outcome instanceof KubeError && outcome.code === KubeErrorCode.leaseLost,
      `run() ended with ${String(outcome)}`,
    );
    assert.equal(a.manager.isLeader, false);
    // Liveness fails, so the kubelet restarts the container (controller-runtime exits instead).
    const live = await eventually('liveness fails', () => {
      const check = health.check('kube-manager');
      return check?.status === 'failing' ? check : undefined;
    });
    assert.equal(live.lastErrorCode, KubeErrorCode.leaseLost);
    health.close();
    await admin.resource(ConfigMap, ns).create({ metadata: { name: 'unseen', labels: { watched: 'yes' } } });
    await sleep(1_000);
    assert.equal(reconciledBy.get('unseen'), undefined, 'no reconcile after losing the lease');
    assert.equal(await holder(ns), 'thief', 'a lost lease is not released over the new holder');
  } finally {
    a.stop.abort();
    await a.done;
    await a.client.close();
  }
});

test('Manager.attach: readiness once caches synced; lifecycle shutdown drains and releases the lease', async () => {
  const ns = 'election-attach';
  await admin.resource(Namespace).create({ metadata: { name: ns } });
  const client = await KubeClient.fromKubeconfig({ path: cp.kubeconfigPath });
  const health = new Health();
  const lifecycle = new Lifecycle({ drainDelayMs: 0 });
  const seen: string[] = [];
  const manager = new Manager({
    client,
    leaderElection: { name: 'mirror-operator', namespace: ns, identity: 'solo', ...TIMING },
  });
  manager.add(
    controller(ConfigMap)
      .inNamespace(ns)
      .build(async (request) => {
        seen.push(request.name);
        return Action.awaitChange();
      }),
  );
  try {
    await admin.resource(ConfigMap, ns).create({ metadata: { name: 'one' } });
    manager.attach({ health, lifecycle });
    await eventually('ready', () => (health.check('kube-controllers')?.status === 'ok' ? true : undefined));
    assert.equal(manager.isLeader, true);
    await eventually('reconciled', () => (seen.includes('one') ? true : undefined));
    const report = await lifecycle.shutdown('test');
    assert.equal(report.exitCode, 0, JSON.stringify(report.jobs));
    assert.deepEqual(
      report.jobs.map((job) => [job.name, job.outcome]),
      [['kube-manager', 'done']],
    );
    assert.equal(await holder(ns), undefined, 'released on shutdown');
  } finally {
    health.close();
    await client.close();
  }
});
