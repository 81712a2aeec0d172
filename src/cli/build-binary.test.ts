// `capstan build-binary` for real: the executables it writes run with an empty environment (no PATH, so
// no Node to find) from a folder without node_modules.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

const main = join(import.meta.dirname, 'main.ts');
const automation = join(import.meta.dirname, '..', 'automation', 'index.ts');
let dir: string;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'capstan-binary-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

function capstan(args: string[]) {
  return spawnSync(process.execPath, ['--conditions=capstan-source', main, 'build-binary', ...args], {
    encoding: 'utf8',
    timeout: 240_000,
  });
}

/** Run an executable with nothing in its environment, from a folder that has no node_modules. */
function bare(path: string, args: string[]) {
  return spawnSync(path, args, { env: {}, cwd: dir, encoding: 'utf8', timeout: 60_000 });
}

test('the capstan CLI as one executable: --version, --help and a command work with no Node and no node_modules', () => {
  const built = capstan(['-o', dir]);
  assert.equal(built.status, 0, built.stderr);
  const binary = join(dir, 'capstan');
  assert.equal(built.stdout.trim(), binary);
  assert.ok(statSync(binary).mode & 0o100, 'executable');
  assert.equal(bare(binary, ['--version']).stdout.trim(), '0.1.0');
  assert.match(bare(binary, ['--help']).stdout, /^Usage: capstan/m);
  const fanned = bare(binary, [
    'parallel',
    '-k',
    '--no-summary',
    '--',
    '/bin/echo',
    'item',
    ':::',
    'a',
    'b c',
  ]);
  assert.equal(fanned.status, 0, fanned.stderr);
  assert.equal(fanned.stdout, 'item a\nitem b c\n');
  const yaml = join(dir, 'deploy.yaml');
  writeFileSync(yaml, '# replicas of the web tier\nspec:\n  replicas: 2 # two for now\n');
  const got = bare(binary, ['yaml', 'get', yaml, 'spec.replicas']);
  assert.equal(got.status, 0, got.stderr);
  assert.equal(got.stdout.trim(), '2');
});

test('a team’s own tool: --entry and --name; a program that cannot run as one file is refused with the reason', () => {
  const tool = join(dir, 'ops-tool.ts');
  writeFileSync(
    tool,
    `import { fanOut } from ${JSON.stringify(automation)};
async function main(): Promise<void> {
  const hosts = process.argv.slice(2);
  const report = await fanOut(hosts, async (host) => host.toUpperCase(), { concurrency: 2 });
  for (const o of report.outcomes) if (o.status === 'ok') console.log(o.value);
}
void main();
`,
  );
  const built = capstan(['--entry', tool, '--name', 'ops-tool', '-o', join(dir, 'bin')]);
  assert.equal(built.status, 0, built.stderr);
  const run = bare(join(dir, 'bin', 'ops-tool'), ['web-1', 'db-1']);
  assert.equal(run.status, 0, run.stderr);
  assert.equal(run.stdout, 'WEB-1\nDB-1\n');
  assert.equal(run.stderr, '', 'no experimental-feature warning');

  const awaiting = join(dir, 'awaiting.ts');
  writeFileSync(awaiting, 'await new Promise((r) => setTimeout(r, 1));\nconsole.log("done");\n');
  const refused = capstan(['--entry', awaiting, '-o', dir]);
  assert.equal(refused.status, 1);
  assert.match(refused.stderr, /cannot bundle .*awaiting\.ts/);
  assert.match(refused.stderr, /move top-level await into an async main\(\)/);
  const missing = capstan(['--entry', join(dir, 'nope.ts'), '-o', dir]);
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /cannot bundle .*nope\.ts/);
});
