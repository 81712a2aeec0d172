// The peer catalogue is the one place versions are pinned: what it says must be what gets built.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { buildStamp, packageRoot, peerCacheDir, peerCatalogue, peerStatus } from './catalogue.ts';

const catalogue = peerCatalogue();

test('every suite peer is in the catalogue; go.mod files and version stamps agree with the pinned versions', () => {
  for (const name of catalogue.suite) assert.ok(catalogue.peers[name], `suite peer ${name} is catalogued`);
  for (const [name, spec] of Object.entries(catalogue.peers)) {
    if (spec.source === 'apt') continue;
    for (const flag of spec.ldflags ?? []) {
      const stamped = /(?:gitVersion|version\.version)=(\S+)/.exec(flag)?.[1];
      if (stamped) assert.equal(stamped, spec.version, `${name}: ${flag}`);
    }
    if (spec.source !== 'go-module') continue;
    const goMod = readFileSync(resolve(packageRoot(), spec.dir, 'go.mod'), 'utf8');
    const required = new RegExp(
      `^\\s*(?:require\\s+)?${spec.upstream.replaceAll('.', '\\.')}\\s+(\\S+)`,
      'm',
    ).exec(goMod);
    assert.equal(
      required?.[1],
      spec.version,
      `${spec.dir}/go.mod requires ${spec.upstream} at ${spec.version}`,
    );
  }
});

test('the cached Go peers were built from the current sources (the build stamp matches)', () => {
  // `npm test` runs `npm run peers` first, so every suite peer is installed here.
  const status = new Map(peerStatus().map((s) => [s.name, s]));
  for (const name of catalogue.suite) {
    const spec = catalogue.peers[name]!;
    assert.equal(status.get(name)?.installed, true, `${name} installed`);
    if (spec.source === 'apt') continue;
    const stamp = readFileSync(join(peerCacheDir(name), 'bin', '.capstan-build'), 'utf8');
    assert.equal(stamp, buildStamp(name, spec), name);
  }
});

test('the stamp changes with what decides the build: ldflags, version, module files', () => {
  const kube = catalogue.peers.kube;
  assert.ok(kube && kube.source === 'go-module');
  const base = buildStamp('kube', kube);
  assert.notEqual(buildStamp('kube', { ...kube, ldflags: [...(kube.ldflags ?? []), '-X a.b=c'] }), base);
  assert.notEqual(buildStamp('kube', { ...kube, version: 'v0.0.0' }), base);
  assert.notEqual(buildStamp('kube', { ...kube, dir: 'scripts/peers/consul' }), base);
  assert.equal(buildStamp('kube', { ...kube }), base);
});

test('capstan dev peers status lists every peer, installed, with where it lives', () => {
  const r = spawnSync(
    process.execPath,
    [
      '--conditions=capstan-source',
      join(packageRoot(), 'src', 'cli', 'main.ts'),
      'dev',
      'peers',
      'status',
      '--json',
    ],
    { encoding: 'utf8', timeout: 60_000 },
  );
  assert.equal(r.status, 0, r.stderr);
  const rows = JSON.parse(r.stdout) as Array<{
    name: string;
    installed: boolean;
    where: string;
    version: string;
  }>;
  assert.deepEqual(rows.map((x) => x.name).sort(), Object.keys(catalogue.peers).sort());
  for (const row of rows) {
    if (catalogue.suite.includes(row.name)) assert.equal(row.installed, true, row.name);
    assert.equal(row.version, catalogue.peers[row.name]!.version);
  }
  const text = spawnSync(
    process.execPath,
    ['--conditions=capstan-source', join(packageRoot(), 'src', 'cli', 'main.ts'), 'dev', 'peers', 'status'],
    { encoding: 'utf8', timeout: 60_000 },
  );
  assert.match(
    text.stdout,
    /^kube\s+installed\s+v1\.\d+\.\d+\s+go-module: scripts\/peers\/kube\s+\S+kube-v1/m,
  );
});
