// Nested `node --test` runs of the fixtures here, for shared-cluster*.test.ts.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { isProcessRunning } from '../../../runtime/index.ts';
import type { AttachReport } from './attach.ts';

const fixtures = import.meta.dirname;
const globalSetup = join(import.meta.dirname, '..', '..', 'global-setup.ts');

export interface NestedRun {
  code: number | null;
  stdout: string;
  stderr: string;
  reports: AttachReport[];
}

/**
 * `node --test` of the given fixtures, as `npm run test:shared` runs files (`setup`: with the global setup).
 * This process's own run is not theirs: the variable naming it is removed.
 */
export function nestedRun(
  work: string,
  files: string[],
  options: { setup: boolean; env?: Record<string, string>; onReport?: (r: AttachReport, pid: number) => void },
): Promise<NestedRun> {
  const out = join(mkdtempSync(join(work, 'run-')), 'reports.jsonl');
  const env: NodeJS.ProcessEnv = { ...process.env, SHARED_OUT: out, ...options.env };
  delete env.CAPSTAN_TEST_RUN_DIR;
  // Set for the files a runner starts: a `node --test` seeing it takes itself for one and runs nothing.
  delete env.NODE_TEST_CONTEXT;
  const args = [
    '--conditions=capstan-source',
    '--test',
    '--test-concurrency=2',
    ...(options.setup ? [`--test-global-setup=${globalSetup}`] : []),
    ...files.map((f) => join(fixtures, f)),
  ];
  const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const reports = (): AttachReport[] =>
    existsSync(out)
      ? readFileSync(out, 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as AttachReport)
      : [];
  let poll: NodeJS.Timeout | undefined;
  if (options.onReport) {
    const seen = new Set<string>();
    poll = setInterval(() => {
      for (const r of reports()) {
        if (!seen.has(r.namespace)) {
          seen.add(r.namespace);
          options.onReport!(r, child.pid!);
        }
      }
    }, 200);
  }
  return new Promise((resolve) => {
    child.on('close', (code) => {
      clearInterval(poll);
      resolve({ code, stdout, stderr, reports: reports() });
    });
  });
}

/** Wait (bounded) until none of `pids` runs. */
export async function gone(pids: number[], timeoutMs = 60_000): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  while (pids.some(isProcessRunning) && Date.now() < deadline) await sleep(200);
  return pids.filter(isProcessRunning);
}

