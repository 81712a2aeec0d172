// handleSignals() in a real child process: exit codes, phase order and the forced exit on a second signal.
import assert from 'node:assert/strict';
import http from 'node:http';
import { test } from 'node:test';
import { fixture, type JsonProcess, spawnJson } from '../../../test/fixtures/json-process.ts';

const service = fixture('shutdown-service.ts');

async function startService(env: NodeJS.ProcessEnv): Promise<{ proc: JsonProcess; port: number }> {
  const proc = spawnJson(service, [], { MODE: 'capstan', ...env });
  const line = await proc.waitFor((l) => l.event === 'listening');
  return { proc, port: line.port as number };
}

/** Start GET /hang; `done` settles when the client sees a response or an error. */
function hang(port: number): { done: Promise<unknown> } {
  const req = http.get({ host: '127.0.0.1', port, path: '/hang', agent: false });
  const done = new Promise((resolve) => {
    req.on('response', resolve);
    req.on('error', resolve);
  });
  return { done };
}

const phases = (proc: JsonProcess) => proc.lines.filter((l) => l.event === 'phase').map((l) => l.phase);

test('one SIGTERM: phases in order, hooks run, exit 0', async () => {
  const { proc } = await startService({});
  try {
    proc.child.kill('SIGTERM');
    const { code, signal } = await proc.exited;
    assert.equal(signal, null);
    assert.equal(code, 0, proc.stderr());
    assert.deepEqual(phases(proc), ['stopping', 'draining', 'closing', 'stopped']);
    assert.deepEqual(
      proc.lines.find((l) => l.event === 'counts'),
      { event: 'counts', accepted: 0, completed: 0 },
    );
  } finally {
    proc.kill();
  }
});

test('a request past the drain deadline: exit code 1 and the request is cut', async () => {
  const { proc, port } = await startService({ DRAIN_TIMEOUT_MS: '300' });
  try {
    const client = hang(port);
    await proc.waitFor((l) => l.event === 'hang');
    proc.child.kill('SIGTERM');
    const { code } = await proc.exited;
    await client.done;
    assert.equal(code, 1, proc.stderr());
    const stopped = proc.lines.find((l) => l.phase === 'stopped') as { servers: Array<{ cut: number }> };
    assert.equal(stopped.servers[0]!.cut, 1);
    assert.deepEqual(
      proc.lines.find((l) => l.event === 'counts'),
      { event: 'counts', accepted: 1, completed: 0 },
    );
  } finally {
    proc.kill();
  }
});

for (const [signal, expected] of [
  ['SIGTERM', 143],
  ['SIGINT', 130],
] as const) {
  test(`a second ${signal} during the drain forces exit ${expected} without running hooks`, async () => {
    const { proc, port } = await startService({ DRAIN_TIMEOUT_MS: '60000' });
    try {
      const client = hang(port);
      await proc.waitFor((l) => l.event === 'hang');
      proc.child.kill(signal);
      await proc.waitFor((l) => l.phase === 'draining');
      proc.child.kill(signal);
      const { code } = await proc.exited;
      await client.done;
      assert.equal(code, expected, proc.stderr());
      assert.deepEqual(phases(proc), ['stopping', 'draining']);
      assert.equal(
        proc.lines.some((l) => l.event === 'counts'),
        false,
        'hooks must not run on a forced exit',
      );
    } finally {
      proc.kill();
    }
  });
}
