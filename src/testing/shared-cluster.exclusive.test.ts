// The run's shared cluster with a node: its global teardown compares the host with before the node and
// fails the run when it differs. A nested `node --test` run starts that node, so this file needs the
// machine's node to itself (`*.exclusive.test.ts`). Root only.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, test } from 'node:test';
import { holdNodeLock, hostSnapshot, nodeLockPath } from '../peers/index.ts';
import type { AttachReport } from './testdata/shared-cluster/attach.ts';
import { gone, nestedRun } from './testdata/shared-cluster/nested-run.ts';

const work = mkdtempSync(join(tmpdir(), 'capstan-shared-test-'));
after(() => rmSync(work, { recursive: true, force: true }));

test('a host change the shared node does not put back fails the run at its teardown', {
  skip: process.getuid?.() === 0 || process.env.CI ? false : 'a node needs root',
}, async () => {
  // Our hold keeps other nodes off the host between our snapshots; the run's node runs inside it (the
  // owner token reaches the daemon through the runner's and the test file's environment).
  const hold = await holdNodeLock();
  const before = hostSnapshot();
  let run: Awaited<ReturnType<typeof nestedRun>> | undefined;
  try {
    run = await nestedRun(work, ['a.fixture.ts', 'b.fixture.ts'], {
      setup: true,
      env: { SHARED_NODE: '1', SHARED_ACTION: 'b:probe-interface' },
    });
  } finally {
    if (existsSync('/sys/class/net/capstanprobe0')) execFileSync('ip', ['link', 'delete', 'capstanprobe0']);
    hold.release();
  }
  assert.equal(run.code, 1, `${run.stdout}\n${run.stderr}`);
  assert.match(
    run.stderr,
    /the host differs after the shared node: interfaces: new capstanprobe0/,
    `${run.stdout}\n${run.stderr}`,
  );
  // Nothing else differed: the node itself was put back.
  assert.equal(run.stderr.match(/the host differs/g)?.length, 1, run.stderr);
  const [a, b] = run.reports as [AttachReport, AttachReport];
  assert.equal(a.daemon, b.daemon, 'one node for the run');
  assert.deepEqual(await gone([a.daemon, ...a.processes], 5_000), []);
  assert.deepEqual(hostSnapshot(), before);
  const lockDir = dirname(nodeLockPath());
  assert.ok(!existsSync(lockDir) || readdirSync(lockDir).length > 0, `${lockDir} was left empty`);
});
