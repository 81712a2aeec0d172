// The body of the fixture test files a/b.fixture.ts, run by shared-cluster*.test.ts in a nested
// `node --test`: attach to the run's shared cluster, report what was seen as one JSON line in
// $SHARED_OUT, then do what $SHARED_ACTION says (`<file>:<action>`, for this file only).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { appendFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { useSharedCluster } from '../../index.ts';

/** What a fixture reports (one JSON line per attach). */
export interface AttachReport {
  file: string;
  pid: number;
  runDir: string;
  server: string;
  namespace: string;
  daemon: number;
  processes: number[];
}

export function attachTests(file: string): void {
  const node = process.env.SHARED_NODE === '1';
  const [actionFile, action] = (process.env.SHARED_ACTION ?? '').split(':');
  const mine = actionFile === file ? action : undefined;
  let first = '';

  test(`${file}: attach`, async (t) => {
    const cluster = await useSharedCluster(t, { node });
    const runDir = process.env.CAPSTAN_TEST_RUN_DIR!;
    const state = JSON.parse(readFileSync(join(runDir, node ? 'node' : 'plain', 'state.json'), 'utf8')) as {
      pid: number;
      processes: Array<{ pid: number }>;
    };
    assert.equal((await cluster.request(`/api/v1/namespaces/${cluster.namespace}`)).status, 200);
    first = cluster.namespace;
    const report: AttachReport = {
      file,
      pid: process.pid,
      runDir,
      server: cluster.server,
      namespace: cluster.namespace,
      daemon: state.pid,
      processes: state.processes.map((p) => p.pid),
    };
    appendFileSync(process.env.SHARED_OUT!, `${JSON.stringify(report)}\n`);
    if (mine === 'kill-daemon') process.kill(state.pid, 'SIGKILL');
    // A change of the host that no node teardown puts back: the run's teardown must see it.
    if (mine === 'probe-interface') execFileSync('ip', ['link', 'add', 'capstanprobe0', 'type', 'bridge']);
    if (mine === 'hang') await sleep(600_000);
  });

  test(`${file}: the previous test's namespace is deleted after it`, { skip: mine !== undefined }, async (t) => {
    const cluster = await useSharedCluster(t, { node });
    assert.notEqual(cluster.namespace, first);
    const res = await cluster.request(`/api/v1/namespaces/${first}`);
    const phase = res.status === 200 ? (JSON.parse(res.body) as { status: { phase: string } }).status.phase : '';
    assert.ok(res.status === 404 || phase === 'Terminating', `${first}: ${res.status} ${phase}`);
  });
}
