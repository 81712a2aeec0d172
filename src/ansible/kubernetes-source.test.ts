// The Kubernetes source against the shared cluster with its node: the node and running pods of the test's
// namespace as hosts, grouped by their labels, read by the real ansible-inventory, and a command run in each
// pod through Ansible's kubectl connection.
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { eventually, runAnsible, useSharedCluster } from 'capstan/testing';
import { kubernetesSource } from './kubernetes-source.ts';
import { inventoryWrapperScript } from './script.ts';

test('nodes and running pods are hosts; labels make groups; Ansible reaches the pods with kubectl', async (t) => {
  const cluster = await useSharedCluster(t, { node: true });
  const image = cluster.node!.images.busybox;
  for (const [name, labels] of [
    ['web-a', 'app=web,tier=front'],
    ['web-b', 'app=web,tier=front'],
    ['cache-a', 'app=cache'],
  ] as const) {
    cluster.kubectl([
      'run',
      name,
      `--image=${image}`,
      '--image-pull-policy=Never',
      '--restart=Never',
      `--labels=${labels}`,
      '--',
      'sleep',
      '3600',
    ]);
  }
  // One that never runs (its image does not exist): listed by the apiserver, but not a host.
  cluster.kubectl([
    'run',
    'broken',
    '--image=capstan.local/none:1',
    '--image-pull-policy=Never',
    '--restart=Never',
  ]);
  await eventually(
    'three pods Running',
    () => {
      const phases = cluster.kubectl(['get', 'pods', '-o', 'jsonpath={.items[*].status.phase}']).split(' ');
      return phases.filter((p) => p === 'Running').length === 3;
    },
    { timeoutMs: 120_000 },
  );

  const source = kubernetesSource({
    name: 'kubernetes',
    kubeconfig: cluster.kubeconfigPath,
    namespace: cluster.namespace,
  });
  const hosts = await source.collect({ signal: AbortSignal.timeout(60_000) });
  const node = hosts.find((h) => h.kind === 'node');
  assert.equal(node?.name, cluster.node!.name);
  assert.equal(node?.vars?.['ansible_host'], cluster.node!.ip);
  assert.equal(node?.labels?.['kubernetes.io/hostname'], cluster.node!.name);
  const pods = hosts.filter((h) => h.kind === 'pod');
  const ns = cluster.namespace;
  assert.deepEqual(pods.map((p) => p.name).sort(), [`cache-a.${ns}`, `web-a.${ns}`, `web-b.${ns}`]);
  const web = pods.find((p) => p.name === `web-a.${ns}`)!;
  assert.deepEqual(web.labels, { app: 'web', tier: 'front' });
  assert.equal(web.vars?.['ansible_connection'], 'kubernetes.core.kubectl');
  assert.equal(web.vars?.['ansible_kubectl_pod'], 'web-a');
  assert.equal(web.vars?.['ansible_kubectl_namespace'], ns);
  assert.equal(web.vars?.['ansible_kubectl_kubeconfig'], cluster.kubeconfigPath);
  assert.equal(web.vars?.['k8s_node'], cluster.node!.name);
  assert.match(String(web.vars?.['k8s_pod_ip']), /^\d+\.\d+\.\d+\.\d+$/);

  const dir = mkdtempSync(join(tmpdir(), 'capstan-ansible-kube-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const configFile = join(dir, 'inventory.yaml');
  writeFileSync(
    configFile,
    [
      'sources:',
      '  - type: kubernetes',
      `    kubeconfig: ${cluster.kubeconfigPath}`,
      `    namespace: ${ns}`,
      'groups:',
      '  - name: k8s_nodes',
      '    kind: node',
      '  - name: app_$1',
      '    label: app',
      '  - name: frontend',
      '    labels: { tier: front }',
    ].join('\n'),
  );
  const script = join(dir, 'inventory.sh');
  writeFileSync(script, inventoryWrapperScript({ configFile }));
  chmodSync(script, 0o755);
  const inv = JSON.parse((await runAnsible(['-i', script, '--list'], { tool: 'ansible-inventory' })).stdout);
  assert.deepEqual(inv.k8s_nodes.hosts, [cluster.node!.name]);
  assert.deepEqual(inv.app_web.hosts.sort(), [`web-a.${ns}`, `web-b.${ns}`]);
  assert.deepEqual(inv.app_cache.hosts, [`cache-a.${ns}`]);
  assert.deepEqual(inv.frontend.hosts.sort(), [`web-a.${ns}`, `web-b.${ns}`]);

  // busybox has no Python: `raw` runs a shell command through kubectl exec, as every module would travel.
  assert.ok(cluster.kubectlPath, 'the kube asset folder has kubectl');
  const env = {
    ANSIBLE_LOAD_CALLBACK_PLUGINS: '1',
    ANSIBLE_STDOUT_CALLBACK: 'json',
    PATH: `${dirname(cluster.kubectlPath!)}:${process.env['PATH'] ?? ''}`,
  };
  const r = await runAnsible(['-i', script, 'app_web', '-m', 'raw', '-a', 'cat /etc/hostname'], { env });
  const ran = JSON.parse(r.stdout).plays[0].tasks[0].hosts as Record<string, { rc: number; stdout: string }>;
  assert.deepEqual(Object.keys(ran).sort(), [`web-a.${ns}`, `web-b.${ns}`]);
  for (const [host, result] of Object.entries(ran)) {
    assert.equal(result.rc, 0);
    assert.equal(result.stdout.trim(), host.split('.')[0]);
  }
});
