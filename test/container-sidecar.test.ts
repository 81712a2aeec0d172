// The sidecar example, run as users run it (a separate process) against a real dockerd with live restore.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { DockerClient } from 'capstan/docker';
import { createTestContainer, type DockerPeer, startDocker } from 'capstan/testing';
import { type JsonProcess, spawnJson } from './fixtures/json-process.ts';

const example = new URL('../examples/container-sidecar.ts', import.meta.url).pathname;

let docker: DockerPeer;
let client: DockerClient;
before(async () => {
  docker = await startDocker({ liveRestore: true });
  client = new DockerClient({ host: docker.dockerHost });
});
after(async () => {
  await client?.close();
  await docker?.stop();
});

function run(name: string, cmd: string[], labels: Record<string, string>): Promise<string> {
  return createTestContainer(client, cmd, { name, labels, start: true });
}

type Record_ = { msg?: string; container?: string; stream?: string; exitCode?: number; reconciled?: boolean };
const records = (p: JsonProcess) => p.lines as Record_[];

test('the sidecar tails labelled containers (joiners too), reports each death once, survives a daemon restart, stops on SIGTERM', async () => {
  // Output from before the sidecar started is not replayed (it starts from "now").
  const old = await run('side-old', ['sh', '-c', 'echo before-start'], { team: 'side' });
  await client.waitContainer(old);
  const sidecar = spawnJson(example, [], {
    DOCKER_HOST: docker.dockerHost,
    SIDECAR_SELECTOR: 'team=side',
    SIDECAR_GRACE: '300ms',
    LOG_FORMAT: 'json',
  });
  try {
    await sidecar.waitFor((l) => l.msg === 'sidecar started');
    await run('side-a', ['sh', '-c', 'echo a-1; echo a-err >&2; exit 3'], { team: 'side' });
    await run('side-other', ['sh', '-c', 'echo not-mine'], { team: 'other' });
    await sidecar.waitFor((l) => l.msg === 'container died' && l.container === 'side-a');
    // A container that dies while dockerd is down: the daemon never sends its die event.
    const b = await run('side-b', ['sh', '-c', 'echo b-1; sleep 300'], { team: 'side' });
    await sidecar.waitFor((l) => l.msg === 'b-1');
    const pid = (await client.inspectContainer(b)).State.Pid;
    await docker.restart({
      whileDown: async () => {
        process.kill(pid, 'SIGKILL');
        while (existsSync(`/proc/${pid}`)) await new Promise((r) => setTimeout(r, 50));
      },
    });
    await sidecar.waitFor((l) => l.msg === 'container died' && l.container === 'side-b', 60_000);
    await run('side-c', ['sh', '-c', 'echo c-1'], { team: 'side' });
    await sidecar.waitFor((l) => l.msg === 'container died' && l.container === 'side-c', 60_000);
    await sidecar.waitFor((l) => l.msg === 'c-1', 60_000);

    sidecar.child.kill('SIGTERM');
    const { code } = await sidecar.exited;
    assert.equal(code, 0, sidecar.stderr());
    const lines = records(sidecar)
      .filter((r) => r.container && r.msg !== 'container died')
      .map((r) => `${r.container} ${r.stream} ${r.msg}`);
    assert.deepEqual(lines.sort(), [
      'side-a stderr a-err',
      'side-a stdout a-1',
      'side-b stdout b-1',
      'side-c stdout c-1',
    ]);
    const deaths = records(sidecar)
      .filter((r) => r.msg === 'container died')
      .map((r) => `${r.container} ${r.exitCode}${r.reconciled ? ' reconciled' : ''}`);
    assert.deepEqual(deaths.sort(), ['side-a 3', 'side-b 137 reconciled', 'side-c 0']);
    assert.ok(records(sidecar).some((r) => r.msg === 'lifecycle stopped'));
  } finally {
    sidecar.kill();
  }
});

test('the sidecar refuses a bad selector with exit 78, naming the variable', async () => {
  const sidecar = spawnJson(example, [], {
    DOCKER_HOST: docker.dockerHost,
    SIDECAR_SELECTOR: 'not a selector!',
  });
  const { code } = await sidecar.exited;
  assert.equal(code, 78);
  assert.match(sidecar.stderr(), /SIDECAR_SELECTOR/);
});
