import assert from 'node:assert/strict';
import { Resolver } from 'node:dns/promises';
import { existsSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { type ConsulPeer, startConsul } from './consul.ts';

type HealthEntry = {
  Node: { Node: string };
  Service: { ID: string; Service: string; Port: number; Address: string; Tags: string[] };
  Checks: Array<{ Status: string; ServiceID: string }>;
};

async function register(consul: ConsulPeer, id: string, port: number): Promise<void> {
  const res = await fetch(`${consul.url}/v1/agent/service/register`, {
    method: 'PUT',
    body: JSON.stringify({
      ID: id,
      Name: 'web',
      Address: '127.0.0.1',
      Port: port,
      Tags: ['v1'],
      Check: { TTL: '10m', Status: 'passing' },
    }),
  });
  assert.equal(res.status, 200, await res.text());
}

async function health(consul: ConsulPeer, query = ''): Promise<{ index: number; entries: HealthEntry[] }> {
  const res = await fetch(`${consul.url}/v1/health/service/web?passing=true${query}`);
  assert.equal(res.status, 200);
  return { index: Number(res.headers.get('x-consul-index')), entries: (await res.json()) as HealthEntry[] };
}

describe('consul (real Consul agent built from the Go module proxy)', () => {
  let consul: ConsulPeer;

  before(async () => {
    consul = await startConsul();
  });
  after(async () => {
    await consul?.stop();
  });

  test('the agent is the leader of its private datacenter', async () => {
    const leader = (await (await fetch(`${consul.url}/v1/status/leader`)).json()) as string;
    assert.equal(leader, `127.0.0.1:${consul.serverPort}`);
    const self = (await (await fetch(`${consul.url}/v1/agent/self`)).json()) as {
      Config: { Datacenter: string; NodeName: string; Version: string };
    };
    assert.equal(self.Config.Datacenter, 'dc1');
    assert.equal(self.Config.NodeName, consul.nodeName);
    assert.equal(self.Config.Version, '1.16.6');
  });

  test('register a service, read it back, and a blocking query returns on change', async () => {
    await register(consul, 'web-1', 8080);
    // Agent registrations reach the catalog through anti-entropy: poll a bounded number of times.
    let first = await health(consul);
    for (let i = 0; i < 50 && first.entries.length === 0; i++) {
      await new Promise((r) => setTimeout(r, 100));
      first = await health(consul);
    }
    assert.equal(first.entries.length, 1);
    const [entry] = first.entries;
    assert.equal(entry!.Service.ID, 'web-1');
    assert.equal(entry!.Service.Port, 8080);
    assert.deepEqual(entry!.Service.Tags, ['v1']);
    assert.equal(entry!.Node.Node, consul.nodeName);
    assert.ok(entry!.Checks.every((c) => c.Status === 'passing'));
    assert.ok(first.index > 0);

    // A blocking query with the current index waits for a change; register a second instance to cause one.
    // Consul may wake a blocking query early with unchanged data, so loop (bounded) until it carries web-2.
    let index = first.index;
    let seen: string[] = [];
    const pending = health(consul, `&index=${index}&wait=60s`);
    await register(consul, 'web-2', 8081);
    let result = await pending;
    for (let i = 0; i < 10; i++) {
      seen = result.entries.map((e) => e.Service.ID).sort();
      if (seen.length === 2) break;
      index = result.index;
      result = await health(consul, `&index=${index}&wait=60s`);
    }
    assert.deepEqual(seen, ['web-1', 'web-2']);
    assert.ok(result.index > first.index, `index ${result.index} should pass ${first.index}`);

    // With nothing changing, a short blocking query times out and returns the same index.
    const idle = await health(consul, `&index=${result.index}&wait=1s`);
    assert.equal(idle.index, result.index);
    assert.equal(idle.entries.length, 2);
  });

  test('DNS answers SRV and A records for the service on the private port', async () => {
    const resolver = new Resolver({ timeout: 2_000, tries: 3 });
    resolver.setServers([`127.0.0.1:${consul.dnsPort}`]);
    const srv = await resolver.resolveSrv('web.service.consul');
    assert.deepEqual(srv.map((r) => r.port).sort(), [8080, 8081]);
    for (const r of srv) assert.match(r.name, /\.consul$/);
    assert.deepEqual(await resolver.resolve4('web.service.consul'), ['127.0.0.1']);
    await assert.rejects(resolver.resolveSrv('nope.service.consul'), { code: 'ENOTFOUND' });
  });

  test('bad requests are refused and missing keys are 404', async () => {
    const bad = await fetch(`${consul.url}/v1/agent/service/register`, { method: 'PUT', body: '{not json' });
    assert.equal(bad.status, 400);
    await bad.body?.cancel();
    const noName = await fetch(`${consul.url}/v1/agent/service/register`, {
      method: 'PUT',
      body: JSON.stringify({ Port: 1 }),
    });
    assert.equal(noName.status, 400);
    assert.match(await noName.text(), /Missing service name/);
    const missing = await fetch(`${consul.url}/v1/kv/capstan/missing`);
    assert.equal(missing.status, 404);
    await missing.body?.cancel();

    const put = await fetch(`${consul.url}/v1/kv/capstan/config`, { method: 'PUT', body: 'replicas=3' });
    assert.equal((await put.text()).trim(), 'true');
    assert.equal(await (await fetch(`${consul.url}/v1/kv/capstan/config?raw`)).text(), 'replicas=3');
  });

  test('a second agent runs side by side, isolated, and stop removes its folder', async () => {
    const other = await startConsul({ datacenter: 'dc2' });
    try {
      assert.notEqual(other.httpPort, consul.httpPort);
      const services = (await (await fetch(`${other.url}/v1/catalog/services`)).json()) as Record<
        string,
        string[]
      >;
      assert.deepEqual(Object.keys(services), ['consul']);
    } finally {
      await other.stop();
    }
    assert.equal(existsSync(other.dir), false);
    await assert.rejects(fetch(`${other.url}/v1/status/leader`));
  });
});
