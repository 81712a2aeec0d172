// The Docker source against a real dockerd (a private one, busybox:local containers), read by the real
// Ansible through the wrapper and reached with its docker connection.
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DockerClient } from 'capstan/docker';
import { createTestContainer, type DockerPeer, runAnsible, startDocker } from 'capstan/testing';
import { parseInventoryConfig } from './config.ts';
import { dockerSource } from './docker-source.ts';
import { AnsibleError, AnsibleErrorCode } from './errors.ts';
import { buildInventory } from './run.ts';
import { inventoryWrapperScript } from './script.ts';

describe('docker source (real dockerd)', () => {
  let docker: DockerPeer;
  let client: DockerClient;
  let dir: string;

  before(async () => {
    docker = await startDocker();
    client = new DockerClient({ host: docker.dockerHost });
    dir = mkdtempSync(join(tmpdir(), 'capstan-ansible-docker-'));
    const sleep = ['sleep', '600'];
    await createTestContainer(client, sleep, {
      name: 'web-1',
      labels: { app: 'web', env: 'prod' },
      start: true,
    });
    await createTestContainer(client, sleep, {
      name: 'db-1',
      labels: { app: 'db', env: 'prod' },
      start: true,
    });
    await createTestContainer(client, sleep, { name: 'batch-1', labels: { app: 'batch' } });
  });
  after(async () => {
    await client?.close();
    await docker?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('running containers are hosts reached by docker exec; labels group them; all: true adds stopped ones', async () => {
    const signal = AbortSignal.timeout(30_000);
    const running = await dockerSource({ name: 'docker', host: docker.dockerHost }).collect({ signal });
    assert.deepEqual(running.map((h) => h.name).sort(), ['db-1', 'web-1']);
    const web = running.find((h) => h.name === 'web-1')!;
    assert.equal(web.kind, 'container');
    assert.deepEqual(web.labels, { app: 'web', env: 'prod' });
    assert.equal(web.vars?.['ansible_connection'], 'docker');
    assert.equal(web.vars?.['ansible_host'], 'web-1');
    assert.equal(web.vars?.['ansible_docker_extra_args'], `-H ${docker.dockerHost}`);
    assert.equal(web.vars?.['docker_image'], docker.image);
    assert.equal(web.vars?.['docker_state'], 'running');

    const all = await dockerSource({ name: 'docker', host: docker.dockerHost, all: true }).collect({
      signal,
    });
    assert.deepEqual(all.map((h) => h.name).sort(), ['batch-1', 'db-1', 'web-1']);
    const filtered = await dockerSource({ name: 'd', host: docker.dockerHost, labels: ['app=db'] }).collect({
      signal,
    });
    assert.deepEqual(
      filtered.map((h) => h.name),
      ['db-1'],
    );
    // Without `host`, DOCKER_HOST is the daemon, as for the Docker CLI Ansible runs.
    const fromEnv = await dockerSource({ name: 'd', env: { DOCKER_HOST: docker.dockerHost } }).collect({
      signal,
    });
    assert.deepEqual(fromEnv.map((h) => h.name).sort(), ['db-1', 'web-1']);
    assert.equal(fromEnv[0]!.vars?.['ansible_docker_extra_args'], undefined);
  });

  test('a daemon that is not there: the inventory fails naming the source', async () => {
    const config = await parseInventoryConfig(
      `sources:\n  - type: docker\n    name: build-host\n    host: unix://${join(dir, 'nothing.sock')}\n`,
    );
    await assert.rejects(buildInventory(config), (err: AnsibleError) => {
      assert.ok(err instanceof AnsibleError);
      assert.equal(err.code, AnsibleErrorCode.source);
      assert.match(err.message, /^source build-host \(docker unix:\/\/.*nothing\.sock\): /);
      return true;
    });
  });

  test('Ansible lists the containers in their groups and runs a command in each over the docker connection', async () => {
    const configFile = join(dir, 'inventory.yaml');
    writeFileSync(
      configFile,
      [
        'sources:',
        '  - type: docker',
        `    host: ${docker.dockerHost}`,
        '    group: containers',
        'groups:',
        '  - name: app_$1',
        '    label: app',
        '  - name: prod',
        '    labels: { env: prod }',
      ].join('\n'),
    );
    const script = join(dir, 'inventory.sh');
    writeFileSync(script, inventoryWrapperScript({ configFile }));
    chmodSync(script, 0o755);

    const graph = await runAnsible(['-i', script, '--graph'], { tool: 'ansible-inventory' });
    assert.equal(
      graph.stdout.trim(),
      [
        '@all:',
        '  |--@ungrouped:',
        '  |--@containers:',
        '  |  |--db-1',
        '  |  |--web-1',
        '  |--@app_db:',
        '  |  |--db-1',
        '  |--@prod:',
        '  |  |--db-1',
        '  |  |--web-1',
        '  |--@app_web:',
        '  |  |--web-1',
      ].join('\n'),
    );

    // busybox has no Python, so the ping module cannot run there: `raw` needs only a shell, and still goes
    // through the docker connection (docker -H <daemon> exec) like any module would.
    const env = { ANSIBLE_LOAD_CALLBACK_PLUGINS: '1', ANSIBLE_STDOUT_CALLBACK: 'json' };
    const r = await runAnsible(['-i', script, 'prod', '-m', 'raw', '-a', 'echo "in $(hostname)"'], { env });
    const hosts = JSON.parse(r.stdout).plays[0].tasks[0].hosts as Record<
      string,
      { rc: number; stdout: string }
    >;
    assert.deepEqual(Object.keys(hosts).sort(), ['db-1', 'web-1']);
    for (const [name, result] of Object.entries(hosts)) {
      assert.equal(result.rc, 0);
      // The container's hostname is its id's first 12 characters: the command ran inside it.
      const id = (await client.inspectContainer(name)).Id.slice(0, 12);
      assert.equal(result.stdout.trim(), `in ${id}`);
    }
  });
});
