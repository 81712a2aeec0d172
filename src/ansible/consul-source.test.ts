// The Consul source against a real agent (-dev): nodes registered in its catalog with meta, services, tags,
// grouped by rules and read by the real ansible-inventory.
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type ConsulPeer, runAnsible, startConsul } from 'capstan/testing';
import { consulSource } from './consul-source.ts';
import { inventoryWrapperScript } from './script.ts';

async function register(consul: ConsulPeer, body: unknown): Promise<void> {
  const res = await fetch(`${consul.url}/v1/catalog/register`, { method: 'PUT', body: JSON.stringify(body) });
  assert.equal(res.status, 200, await res.text());
}

describe('consul source (real agent)', () => {
  let consul: ConsulPeer;
  let dir: string;

  before(async () => {
    consul = await startConsul();
    dir = mkdtempSync(join(tmpdir(), 'capstan-ansible-consul-'));
    const pg = (id: string, tags: string[]) => ({
      ID: id,
      Service: 'postgres',
      Tags: tags,
      Port: 5432,
      Meta: { version: '16' },
    });
    await register(consul, {
      Node: 'db-1',
      Address: '10.0.0.1',
      NodeMeta: { env: 'prod' },
      Service: pg('pg-1', ['primary']),
    });
    await register(consul, {
      Node: 'db-2',
      Address: '10.0.0.2',
      NodeMeta: { env: 'prod' },
      Service: pg('pg-2', ['replica']),
    });
    await register(consul, {
      Node: 'web-1',
      Address: '10.0.1.1',
      NodeMeta: { env: 'stage' },
      Service: { ID: 'web-a', Service: 'web', Tags: ['canary'], Port: 8080, Address: '10.0.1.10' },
    });
    await register(consul, {
      Node: 'web-1',
      Address: '10.0.1.1',
      NodeMeta: { env: 'stage' },
      Service: { ID: 'metrics', Service: 'node-exporter', Port: 9100 },
    });
  });
  after(async () => {
    await consul?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('each catalog node is a host with its meta as labels, its services and their tags', async () => {
    const hosts = await consulSource({ name: 'consul', url: consul.url }).collect({
      signal: AbortSignal.timeout(30_000),
    });
    // The agent's own node is in the catalog too, running the consul service.
    assert.deepEqual(hosts.map((h) => h.name).sort(), ['db-1', 'db-2', consul.nodeName, 'web-1'].sort());
    const web = hosts.find((h) => h.name === 'web-1')!;
    assert.equal(web.kind, 'node');
    assert.deepEqual(web.labels, { env: 'stage' });
    assert.deepEqual([...(web.services ?? [])].sort(), ['node-exporter', 'web']);
    assert.deepEqual(web.tags, ['canary']);
    assert.equal(web.vars?.['ansible_host'], '10.0.1.1');
    assert.equal(web.vars?.['consul_datacenter'], consul.datacenter);
    assert.deepEqual(web.vars?.['consul_services'], [
      { id: 'metrics', service: 'node-exporter', address: '10.0.1.1', port: 9100, tags: [], meta: {} },
      { id: 'web-a', service: 'web', address: '10.0.1.10', port: 8080, tags: ['canary'], meta: {} },
    ]);
    const db = hosts.find((h) => h.name === 'db-1')!;
    assert.deepEqual(db.vars?.['consul_node_meta'], { env: 'prod' });
    assert.deepEqual(db.tags, ['primary']);

    const prod = await consulSource({ name: 'c', url: consul.url, nodeMeta: { env: 'prod' } }).collect({
      signal: AbortSignal.timeout(30_000),
    });
    assert.deepEqual(prod.map((h) => h.name).sort(), ['db-1', 'db-2']);
    // CONSUL_HTTP_ADDR as the Consul CLI takes it: host:port without a scheme.
    const fromEnv = await consulSource({
      name: 'c',
      env: { CONSUL_HTTP_ADDR: `127.0.0.1:${consul.httpPort}` },
      nodeMeta: { env: 'stage' },
    }).collect({ signal: AbortSignal.timeout(30_000) });
    assert.deepEqual(
      fromEnv.map((h) => h.name),
      ['web-1'],
    );
  });

  test('ansible-inventory shows the groups the rules make from services, tags and node meta', async () => {
    const configFile = join(dir, 'inventory.yaml');
    writeFileSync(
      configFile,
      [
        'sources:',
        '  - type: consul',
        `    url: ${consul.url}`,
        '    nodeMeta: { env: prod }',
        '  - type: consul',
        '    name: stage',
        `    url: ${consul.url}`,
        '    nodeMeta: { env: stage }',
        'groups:',
        '  - name: service_$1',
        '    serviceRegex: (.+)',
        '  - name: databases',
        '    service: postgres',
        '    vars: { pg_port: 5432 }',
        '  - name: canaries',
        '    tag: canary',
        '  - name: env_$1',
        '    label: env',
        '  - name: staging',
        '    source: stage',
      ].join('\n'),
    );
    const script = join(dir, 'inventory.sh');
    writeFileSync(script, inventoryWrapperScript({ configFile }));
    chmodSync(script, 0o755);
    const inv = JSON.parse(
      (await runAnsible(['-i', script, '--list'], { tool: 'ansible-inventory' })).stdout,
    );
    assert.deepEqual(inv.service_postgres.hosts, ['db-1', 'db-2']);
    assert.deepEqual(inv.service_web.hosts, ['web-1']);
    assert.deepEqual(inv.service_node_exporter.hosts, ['web-1']);
    assert.deepEqual(inv.databases.hosts, ['db-1', 'db-2']);
    assert.deepEqual(inv.canaries.hosts, ['web-1']);
    assert.deepEqual(inv.env_prod.hosts, ['db-1', 'db-2']);
    assert.deepEqual(inv.staging.hosts, ['web-1']);
    assert.equal(inv._meta.hostvars['db-1'].pg_port, 5432);
    assert.equal(inv._meta.hostvars['db-1'].ansible_host, '10.0.0.1');
    assert.equal(inv._meta.hostvars['web-1'].consul_services.length, 2);
  });
});
