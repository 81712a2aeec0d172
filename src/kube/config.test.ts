import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { defaultKubeConfig, inClusterConfig, isInCluster, KubeClient, loadKubeconfig } from 'capstan/kube';
import { stringify } from 'yaml';

const dir = mkdtempSync(join(tmpdir(), 'capstan-kubeconfig-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const b64 = (s: string) => Buffer.from(s).toString('base64');

function write(name: string, doc: unknown): string {
  const path = join(dir, name);
  writeFileSync(path, typeof doc === 'string' ? doc : stringify(doc));
  return path;
}

const main = {
  apiVersion: 'v1',
  kind: 'Config',
  clusters: [
    {
      name: 'one',
      cluster: { server: 'https://one.example:6443', 'certificate-authority-data': b64('CA ONE') },
    },
    {
      name: 'two',
      cluster: {
        server: 'https://two.example:6443/prefix',
        'certificate-authority': 'ca-two.pem',
        'tls-server-name': 'api.two',
      },
    },
  ],
  users: [
    { name: 'cert', user: { 'client-certificate-data': b64('CERT'), 'client-key-data': b64('KEY') } },
    { name: 'token', user: { token: 'abc', as: 'someone' } },
  ],
  contexts: [
    { name: 'first', context: { cluster: 'one', user: 'cert', namespace: 'team' } },
    { name: 'second', context: { cluster: 'two', user: 'token' } },
  ],
  'current-context': 'first',
};

describe('kubeconfig', () => {
  test('the current context: server, CA, client certificate, namespace', async () => {
    const path = write('main', main);
    const config = await loadKubeconfig({ path });
    assert.equal(config.server, 'https://one.example:6443');
    assert.equal(config.caPem, 'CA ONE');
    assert.equal(config.certPem, 'CERT');
    assert.equal(config.keyPem, 'KEY');
    assert.equal(config.namespace, 'team');
    assert.equal(config.token, undefined);
  });

  test('another context: a CA file relative to the kubeconfig, token, impersonation, default namespace', async () => {
    write('ca-two.pem', 'CA TWO');
    const path = write('main', main);
    const config = await loadKubeconfig({ path, context: 'second' });
    assert.equal(config.server, 'https://two.example:6443/prefix');
    assert.equal(config.caPem, 'CA TWO');
    assert.equal(config.tlsServerName, 'api.two');
    assert.equal(config.token, 'abc');
    assert.equal(config.impersonateUser, 'someone');
    assert.equal(config.namespace, 'default');
  });

  test('KUBECONFIG lists merge (the first file that sets a value wins); missing entries are skipped', async () => {
    const extra = write('extra', {
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'three', cluster: { server: 'http://127.0.0.1:1' } }],
      users: [{ name: 'basic', user: { username: 'u', password: 'p' } }],
      contexts: [{ name: 'third', context: { cluster: 'three', user: 'basic' } }],
      'current-context': 'third',
    });
    const path = write('main', main);
    const env = { KUBECONFIG: [join(dir, 'missing'), path, extra].join(':') };
    assert.equal((await loadKubeconfig({ env })).server, 'https://one.example:6443');
    const third = await loadKubeconfig({ env, context: 'third' });
    assert.equal(third.username, 'u');
    assert.equal(third.password, 'p');
    assert.equal((await defaultKubeConfig({ env })).server, 'https://one.example:6443');
  });

  test('what cannot be used fails with CAP_ERR_KUBE_CONFIG', async () => {
    const path = write('main', main);
    await assert.rejects(loadKubeconfig({ path, context: 'nope' }), { code: 'CAP_ERR_KUBE_CONFIG' });
    await assert.rejects(loadKubeconfig({ path: join(dir, 'absent') }), { code: 'CAP_ERR_KUBE_CONFIG' });
    const broken = write('broken', 'clusters: [ {');
    await assert.rejects(loadKubeconfig({ path: broken }), { code: 'CAP_ERR_KUBE_CONFIG' });
    const noContext = write('no-context', { ...main, 'current-context': '' });
    await assert.rejects(loadKubeconfig({ path: noContext }), { code: 'CAP_ERR_KUBE_CONFIG' });
    const badFile = write('bad-ca', {
      ...main,
      clusters: [
        { name: 'one', cluster: { server: 'https://x', 'certificate-authority': '/nonexistent/ca' } },
      ],
    });
    await assert.rejects(loadKubeconfig({ path: badFile }), { code: 'CAP_ERR_KUBE_CONFIG' });
    assert.throws(() => new KubeClient({ server: 'not a url', namespace: '' }), {
      code: 'CAP_ERR_KUBE_CONFIG',
    });
    assert.throws(() => new KubeClient({ server: 'ftp://x', namespace: '' }), {
      code: 'CAP_ERR_KUBE_CONFIG',
    });
  });
});

describe('in-cluster', () => {
  test('service host and port, the mounted CA, namespace and token file', () => {
    const sa = mkdtempSync(join(dir, 'sa-'));
    writeFileSync(join(sa, 'token'), 'tok');
    writeFileSync(join(sa, 'ca.crt'), 'CLUSTER CA');
    writeFileSync(join(sa, 'namespace'), 'ops\n');
    const env = { KUBERNETES_SERVICE_HOST: '10.0.0.1', KUBERNETES_SERVICE_PORT: '443' };
    assert.equal(isInCluster({ env, dir: sa }), true);
    const config = inClusterConfig({ env, dir: sa });
    assert.deepEqual(config, {
      server: 'https://10.0.0.1:443',
      tokenFile: join(sa, 'token'),
      namespace: 'ops',
      caPem: 'CLUSTER CA',
    });
    assert.equal(
      inClusterConfig({
        env: { KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '443' },
        dir: sa,
      }).server,
      'https://[fd00::1]:443',
    );
  });

  test('outside a pod: isInCluster is false and inClusterConfig fails with CAP_ERR_KUBE_CONFIG', () => {
    assert.equal(isInCluster({ env: {}, dir }), false);
    assert.throws(() => inClusterConfig({ env: {} }), { code: 'CAP_ERR_KUBE_CONFIG' });
    assert.throws(
      () =>
        inClusterConfig({
          env: { KUBERNETES_SERVICE_HOST: 'h', KUBERNETES_SERVICE_PORT: '1' },
          dir: join(dir, 'none'),
        }),
      { code: 'CAP_ERR_KUBE_CONFIG' },
    );
  });
});
