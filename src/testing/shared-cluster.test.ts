// The run's shared cluster, without a node (so without root): nested `node --test` runs of the fixtures
// in testdata/shared-cluster, with and without the global setup, and a runner killed hard.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { AttachReport } from './testdata/shared-cluster/attach.ts';
import { gone, nestedRun } from './testdata/shared-cluster/nested-run.ts';

const work = mkdtempSync(join(tmpdir(), 'capstan-shared-test-'));
after(() => rmSync(work, { recursive: true, force: true }));

test('two files of one run share one cluster, each test in a namespace of its own; the run stops it', async () => {
  const run = await nestedRun(work, ['a.fixture.ts', 'b.fixture.ts'], { setup: true });
  assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}`);
  assert.equal(run.reports.length, 2);
  const [a, b] = run.reports as [AttachReport, AttachReport];
  assert.notEqual(a.pid, b.pid, 'the two files ran in two processes');
  assert.equal(a.server, b.server);
  assert.equal(a.daemon, b.daemon, 'one daemon for the run');
  assert.notEqual(a.namespace, b.namespace);
  // The runner's global teardown stopped it: daemon and programs gone, and the run folder.
  assert.deepEqual(await gone([a.daemon, ...a.processes], 5_000), []);
  assert.equal(existsSync(a.runDir), false);
});

test('a file run alone (no global setup) starts the cluster and stops it when it exits', async () => {
  const run = await nestedRun(work, ['a.fixture.ts'], { setup: false });
  assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}`);
  const [a] = run.reports as [AttachReport];
  assert.equal(a.runDir.startsWith(join(tmpdir(), 'capstan-run-')), true);
  assert.deepEqual(await gone([a.daemon, ...a.processes], 5_000), []);
  assert.equal(existsSync(a.runDir), false);
});

test('a shared cluster that dies during the run fails the run at its teardown', async () => {
  const run = await nestedRun(work, ['a.fixture.ts'], {
    setup: true,
    env: { SHARED_ACTION: 'a:kill-daemon' },
  });
  assert.equal(run.code, 1, `${run.stdout}\n${run.stderr}`);
  assert.match(run.stderr, /shared plain cluster's daemon \(pid \d+\) died during the run/);
  const [a] = run.reports as [AttachReport];
  // The programs the killed daemon left are ended by the teardown all the same.
  assert.deepEqual(await gone(a.processes, 5_000), []);
});

test('a runner killed hard: the daemon stops by itself, and the next run removes what is left', async () => {
  const run = await nestedRun(work, ['a.fixture.ts'], {
    setup: true,
    env: { SHARED_ACTION: 'a:hang' },
    onReport: (report, runner) => {
      process.kill(runner, 'SIGKILL');
      process.kill(report.pid, 'SIGKILL');
    },
  });
  assert.equal(run.code, null, 'the runner was killed');
  const [a] = run.reports as [AttachReport];
  // Nobody runs the global teardown: the daemon sees its owner gone and stops its programs.
  assert.deepEqual(await gone([a.daemon, ...a.processes]), []);
  assert.equal(existsSync(a.runDir), true);
  const next = await nestedRun(work, ['none.fixture.ts'], { setup: true });
  assert.equal(next.code, 0, next.stderr);
  assert.equal(existsSync(a.runDir), false, 'the next run removed the crashed run folder');
});
