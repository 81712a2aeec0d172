// `capstan run` on real capstanfiles in temp dirs: multi-target builds with shell tools (tar, gzip,
// sha256sum), dependencies once each and in parallel, up-to-date skips, failures that stop the run, Ctrl-C.
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { eventually } from '../testing/index.ts';

const main = join(import.meta.dirname, 'main.ts');
const automation = join(import.meta.dirname, '..', 'automation', 'index.ts');
const children = new Set<ChildProcess>();
let root: string;

before(() => {
  root = mkdtempSync(join(tmpdir(), 'capstan-run-'));
});
after(() => {
  for (const c of children) c.kill('SIGKILL');
  rmSync(root, { recursive: true, force: true });
});

/** A project folder with a capstanfile (its imports point at this checkout's automation area). */
function project(name: string, capstanfile: string, files: Record<string, string> = {}): string {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'capstanfile.ts'), capstanfile.replaceAll('CAPSTAN', automation));
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(join(dir, path, '..'), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  return dir;
}

function run(dir: string, args: string[]) {
  const child = spawn(process.execPath, ['--conditions=capstan-source', main, 'run', ...args], {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (c) => {
    stdout += c;
  });
  child.stderr!.on('data', (c) => {
    stderr += c;
  });
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  return { child, exited, out: () => stdout, err: () => stderr };
}

const RELEASE = `import { deps, namespace, sh, target } from 'CAPSTAN';

/** Bundle the sources into a tarball. */
export const bundle = target({ sources: ['src/**'], outputs: ['out/app.tar'] }, async () => {
  await deps(prepare);
  await sh\`tar -cf out/app.tar -C src .\`;
});

/**
 * Compress and checksum the bundle.
 *
 * The release artefacts are out/app.tar.gz and its SHA256SUMS.
 */
export async function release() {
  await deps(bundle, notes);
  await sh\`gzip -kf out/app.tar\`;
  await sh\`cd out && sha256sum app.tar.gz > SHA256SUMS\`;
}

/** Write the release notes. */
export async function notes() {
  await deps(prepare);
  await sh\`echo "notes for \${'v1 (beta); $(id)'}" > out/NOTES\`;
}

/** Create the output folder. */
export async function prepare() {
  await sh\`mkdir -p out && echo once >> out/prepare.log\`;
}

/** Roll out a release to an environment. */
export const deploy = target({ args: { env: 'string', replicas: 'number', wait: 'duration' } }, async ({ env, replicas, wait }) => {
  await deps(release);
  await sh\`echo \${env} \${replicas} \${wait} > out/deployed\`;
});

export const docs = namespace({
  /** Build the documentation site. */
  async site() {
    await sh\`mkdir -p out && echo site > out/site\`;
  },
});

export default release;
`;

test('a multi-target build: dependencies run once each, the artefacts are right, --list shows the doc comments', async () => {
  const dir = project('release', RELEASE, { 'src/a.txt': 'alpha\n', 'src/b.txt': 'beta\n' });
  const list = run(dir, ['--list']);
  assert.equal(await list.exited, 0, list.err());
  assert.match(list.out(), /^ {2}bundle {2,}Bundle the sources into a tarball\.$/m);
  assert.match(
    list.out(),
    /^ {2}release\* {2,}Compress and checksum the bundle\.$/m,
    'the first paragraph, starred as default',
  );
  assert.match(list.out(), /^ {2}deploy <env> <replicas: number> <wait: duration> {2,}Roll out a release/m);
  assert.match(list.out(), /^ {2}docs:site {2,}Build the documentation site\.$/m);

  const build = run(dir, ['deploy', 'staging', '3', '90s']);
  assert.equal(await build.exited, 0, build.err());
  assert.equal(
    readFileSync(join(dir, 'out/prepare.log'), 'utf8'),
    'once\n',
    'prepare ran once for three dependents',
  );
  assert.equal(readFileSync(join(dir, 'out/deployed'), 'utf8'), 'staging 3 90000\n', 'typed arguments');
  assert.equal(
    readFileSync(join(dir, 'out/NOTES'), 'utf8'),
    'notes for v1 (beta); $(id)\n',
    'an interpolated value is one quoted word',
  );
  execFileSync('sha256sum', ['-c', 'SHA256SUMS'], { cwd: join(dir, 'out') });
  const listed = execFileSync('tar', ['-tzf', join(dir, 'out/app.tar.gz')], { encoding: 'utf8' });
  assert.deepEqual(
    listed
      .split('\n')
      .filter((l) => l.endsWith('.txt'))
      .sort(),
    ['./a.txt', './b.txt'],
  );

  const ns = run(dir, ['DOCS:SITE']);
  assert.equal(await ns.exited, 0, ns.err());
  assert.equal(readFileSync(join(dir, 'out/site'), 'utf8'), 'site\n', 'namespaced, case-insensitive');
});

test('sources/outputs: an up-to-date target is skipped until a source changes; --force runs it anyway', async () => {
  const dir = project('skip', RELEASE, { 'src/a.txt': 'alpha\n' });
  const first = run(dir, ['--verbose', 'bundle']);
  assert.equal(await first.exited, 0, first.err());
  assert.match(first.err(), /▶ bundle/);
  const again = run(dir, ['--verbose', 'bundle']);
  assert.equal(await again.exited, 0, again.err());
  assert.match(again.err(), /bundle: up to date/);
  assert.doesNotMatch(again.err(), /\$ tar/);
  // A source newer than the output: rebuilt.
  const later = new Date(Date.now() + 5_000);
  writeFileSync(join(dir, 'src/a.txt'), 'alpha 2\n');
  utimesSync(join(dir, 'src/a.txt'), later, later);
  const changed = run(dir, ['--verbose', 'bundle']);
  assert.equal(await changed.exited, 0, changed.err());
  assert.match(changed.err(), /\$ tar -cf out\/app.tar/);
  const forced = run(dir, ['--verbose', '--force', 'bundle']);
  assert.equal(await forced.exited, 0, forced.err());
  assert.match(forced.err(), /\$ tar -cf out\/app.tar/);
});

test('independent dependencies run in parallel, and one after another with --serial', async () => {
  // Each waits (bounded) for the other to have started: only a parallel run finishes both quickly and OK.
  const dir = project(
    'parallel',
    `import { deps, sh } from 'CAPSTAN';
/** Left. */
export async function left() { await sh\`touch left.started; for i in $(seq 100); do test -e right.started && exit 0; sleep 0.05; done; exit 1\`; }
/** Right. */
export async function right() { await sh\`touch right.started; for i in $(seq 100); do test -e left.started && exit 0; sleep 0.05; done; exit 1\`; }
/** Both. */
export async function both() { await deps(left, right); }
/** In order. */
export async function ordered() { await deps(first, second); }
/** First. */
export async function first() { await sh\`sleep 0.2; echo first >> order\`; }
/** Second. */
export async function second() { await sh\`echo second >> order\`; }
`,
  );
  const both = run(dir, ['both']);
  assert.equal(await both.exited, 0, both.err());
  const serial = run(dir, ['--serial', 'ordered']);
  assert.equal(await serial.exited, 0, serial.err());
  assert.equal(readFileSync(join(dir, 'order'), 'utf8'), 'first\nsecond\n');
});

test('a failing target stops the run, named with the chain that led to it; its siblings’ commands are stopped', async () => {
  const token = `280.${process.pid}${Date.now() % 100_000}`;
  const dir = project(
    'failing',
    `import { deps, sh } from 'CAPSTAN';
/** Slow. */
export async function slow() { await sh\`sleep ${token}\`; }
/** Broken. */
export async function broken() { await sh\`sleep 0.3; echo "compiler says no" >&2; exit 4\`; }
/** All. */
export async function all() { await deps(slow, broken); await sh\`touch never\`; }
/** Cycle a. */
export async function a() { await deps(b); }
/** Cycle b. */
export async function b() { await deps(a); }
`,
  );
  const failed = run(dir, ['all']);
  // The sleep outlives the test's timeout: a run that waited for it instead of stopping it fails here.
  assert.equal(await failed.exited, 1);
  assert.match(failed.err(), /target broken failed \(via all → broken\): .*exited with 4\ncompiler says no/);
  assert.equal(pgrep(`sleep ${token}`), '', 'the sibling’s command was stopped');
  assert.ok(!existsSync(join(dir, 'never')), 'nothing after the failed dependency ran');
  const cycle = run(dir, ['a']);
  assert.equal(await cycle.exited, 2);
  assert.match(cycle.err(), /dependency cycle: a → b → a/);
});

test('usage errors exit 2 with the reason; Ctrl-C stops the commands and exits 130', async () => {
  const dir = project('usage', RELEASE);
  for (const [args, reason] of [
    [['nope'], /no target nope/],
    [
      ['deploy', 'prod'],
      /deploy takes 3 arguments \(<env: string> <replicas: number> <wait: duration>\), got 1/,
    ],
    [
      ['deploy', 'prod', 'many', 'soon'],
      /<replicas> must be a number, got "many"\n.*<wait> must be a duration, got "soon"/,
    ],
    [['--file', 'missing.ts', 'x'], /no capstanfile at .*missing\.ts/],
  ] as const) {
    const r = run(dir, [...args]);
    assert.equal(await r.exited, 2, `${args.join(' ')}: ${r.err()}`);
    assert.match(r.err(), reason);
  }
  const token = `270.${process.pid}${Date.now() % 100_000}`;
  const hanging = project(
    'hanging',
    `import { sh } from 'CAPSTAN';
/** Hang. */
export async function hang() { await sh\`touch started; sleep ${token}\`; }
`,
  );
  const r = run(hanging, ['hang']);
  await eventually('the command started', () => pgrep(`sleep ${token}`) !== '', { timeoutMs: 30_000 });
  r.child.kill('SIGINT');
  assert.equal(await r.exited, 130, r.err());
  assert.equal(pgrep(`sleep ${token}`), '', 'no command left running');
});

function pgrep(pattern: string): string {
  try {
    return execFileSync('pgrep', ['-f', pattern], { encoding: 'utf8' }).trim();
  } catch {
    return '';
  }
}
