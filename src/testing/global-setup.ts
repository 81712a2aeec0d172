// The run-wide half of useSharedCluster, for `node --test --test-global-setup=<this module>` (Node 24's
// test runner imports it in the runner process, before the first test file and after the last one):
// globalSetup opens the run (its folder is named in the environment every test file inherits);
// globalTeardown stops the run's shared clusters and fails the run if a daemon died or the host differs
// after the shared node.

import { closeSharedRun, openSharedRun } from '../peers/index.ts';

let run: string | undefined;

/** Open the test run's shared-cluster folder (nothing starts until a test asks for the cluster). */
export function globalSetup(): void {
  run = openSharedRun();
}

/**
 * Stop the run's shared clusters. Problems are printed and set the exit code, not thrown: Node 24's
 * runner swallows an error thrown here (the run exits 1 without a word) and then calls this again.
 */
export function globalTeardown(): void {
  if (run === undefined) return;
  const problems = closeSharedRun(run);
  run = undefined;
  if (problems.length > 0) {
    process.stderr.write(`\n✖ capstan shared cluster (global teardown):\n  ${problems.join('\n  ')}\n`);
    process.exitCode = 1;
  }
}
