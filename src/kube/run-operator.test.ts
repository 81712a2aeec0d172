// runOperator as a program (testdata/operator-program.ts, its own process) against a real apiserver: it reads
// the environment the Deployment sets, leads, reconciles, reports ready, and on SIGTERM drains, releases its
// Lease and exits 0; a manager that fails for good (a kind the apiserver does not serve) exits 1.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type ControlPlane, eventually, startControlPlane } from '../testing/index.ts';
import { ConfigMap, Lease, Namespace } from './builtin.ts';

const program = new URL('./testdata/operator-program.ts', import.meta.url).pathname;
const NS = 'program';
let cp: ControlPlane;

before(async () => {
  cp = await startControlPlane();
  await cp.client.resource(Namespace).create({ metadata: { name: NS } });
});

after(() => cp?.stop());

interface Program {
  child: ChildProcess;
  lines: string[];
  exit: Promise<number | null>;
}

function startProgram(env: Record<string, string>): Program {
  const child = spawn(process.execPath, ['--conditions=capstan-source', program], {
    env: {
      PATH: process.env['PATH'] ?? '',
      KUBECONFIG: cp.kubeconfigPath,
      PORT: '0',
      HOST: '127.0.0.1',
      POD_NAMESPACE: NS,
      POD_NAME: 'program-1',
      WATCH_NAMESPACE: NS,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  let rest = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    const parts = (rest + chunk).split('\n');
    rest = parts.pop() ?? '';
    lines.push(...parts);
  });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => lines.push(chunk));
  const exit = once(child, 'exit').then(([code]) => code as number | null);
  return { child, lines, exit };
}

test('leads, reconciles, is ready; SIGTERM drains, releases the Lease and exits 0', async (t) => {
  const p = startProgram({ LEADER_ELECTION: 'true' });
  t.after(() => p.child.kill('SIGKILL'));
  const url = await eventually('listening', () =>
    p.lines.map((l) => /^listening (\S+)/.exec(l)?.[1]).find((u) => u !== undefined),
  );
  await eventually('ready', async () => ((await fetch(`${url}/readyz`)).status === 200 ? true : undefined));
  await cp.client
    .resource(ConfigMap, NS)
    .create({ metadata: { name: 'one', labels: { stamp: 'yes' } }, data: { a: '1' } });
  await eventually('stamped', async () =>
    (await cp.client.resource(ConfigMap, NS).get('one')).data?.['stamped'] === 'yes' ? true : undefined,
  );
  const lease = await cp.client.resource(Lease, NS).get('program-operator');
  assert.equal(lease.spec?.holderIdentity, 'program-1');
  const sent = Date.now();
  p.child.kill('SIGTERM');
  const code = await p.exit;
  const tookMs = Date.now() - sent;
  assert.equal(code, 0, p.lines.join('\n'));
  const released = await cp.client.resource(Lease, NS).get('program-operator');
  assert.equal(released.spec?.holderIdentity, '', 'the Lease is handed over on a clean stop');
  t.diagnostic(`SIGTERM to exit: ${tookMs} ms`);
});

test('a manager that fails for good (a kind the apiserver does not serve) logs why and exits 1', async (t) => {
  const p = startProgram({ LEADER_ELECTION: 'false', OPERATOR_KIND: 'missing' });
  t.after(() => p.child.kill('SIGKILL'));
  const code = await Promise.race([
    p.exit,
    sleep(60_000, undefined, { ref: false }).then(() => 'timeout' as const),
  ]);
  assert.equal(code, 1, p.lines.join('\n'));
  assert.ok(
    p.lines.some((l) => l.includes('manager stopped; exiting') && l.includes('CAP_ERR_KUBE_NOT_FOUND')),
    p.lines.join('\n'),
  );
});
