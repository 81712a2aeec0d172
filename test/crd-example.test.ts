// The CRD example users copy (examples/crd-website.ts), taken the way a user takes it: `capstan crd
// generate` writes the YAML, kubectl applies it to a real apiserver, and kubectl drives the objects.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type ControlPlane, startControlPlane } from 'capstan/testing';

const root = fileURLToPath(new URL('../', import.meta.url));
const mainTs = join(root, 'src', 'cli', 'main.ts');
const example = join(root, 'examples', 'crd-website.ts');
const work = mkdtempSync(join(tmpdir(), 'capstan-crd-example-'));
let cp: ControlPlane;

before(async () => {
  cp = await startControlPlane();
});
after(async () => {
  await cp?.stop();
  rmSync(work, { recursive: true, force: true });
});

function kubectl(args: string[], input?: string) {
  assert.ok(cp.assets.kubectl, `no kubectl in ${cp.assets.dir}`);
  return spawnSync(cp.assets.kubectl, ['--kubeconfig', cp.kubeconfigPath, ...args], {
    encoding: 'utf8',
    timeout: 60_000,
    ...(input !== undefined ? { input } : {}),
  });
}

function website(name: string, spec: string): string {
  return `apiVersion: example.capstan.dev/v1\nkind: Website\nmetadata: { name: ${name}, namespace: default }\nspec: ${spec}\n`;
}

test('capstan crd generate, then kubectl apply: the CRD is Established', () => {
  const out = join(work, 'crd');
  const gen = spawnSync(
    process.execPath,
    ['--conditions=capstan-source', mainTs, 'crd', 'generate', example, '-o', out],
    {
      encoding: 'utf8',
      timeout: 60_000,
    },
  );
  assert.equal(gen.status, 0, gen.stderr);
  assert.deepEqual(readdirSync(out), ['example.capstan.dev_websites.yaml']);
  const apply = kubectl(['apply', '-f', out]);
  assert.equal(apply.status, 0, apply.stderr);
  const wait = kubectl([
    'wait',
    '--for=condition=Established',
    '--timeout=60s',
    'crd/websites.example.capstan.dev',
  ]);
  assert.equal(wait.status, 0, wait.stderr);
});

test('a Website: created with defaults, listed with its columns, scaled', async () => {
  // Discovery can lag a moment behind Established; kubectl retries on its own only for some verbs.
  let create = kubectl(['apply', '-f', '-'], website('blog', '{ image: "nginx:1.27" }'));
  for (let i = 0; i < 50 && create.status !== 0; i++) {
    await new Promise((r) => setTimeout(r, 200));
    create = kubectl(['apply', '-f', '-'], website('blog', '{ image: "nginx:1.27" }'));
  }
  assert.equal(create.status, 0, create.stderr);
  const spec = JSON.parse(kubectl(['get', 'website', 'blog', '-o', 'jsonpath={.spec}']).stdout);
  assert.deepEqual(spec, { image: 'nginx:1.27', replicas: 1, tier: 'static' });
  const scaled = kubectl(['scale', 'web/blog', '--replicas=4']);
  assert.equal(scaled.status, 0, scaled.stderr);
  const get = kubectl(['get', 'websites']);
  assert.equal(get.status, 0, get.stderr);
  const [header, row] = get.stdout.trim().split('\n');
  assert.match(header!, /^NAME\s+IMAGE\s+REPLICAS\s+READY\s+AGE$/);
  // No status yet: the Ready column is empty.
  assert.match(row!, /^blog\s+nginx:1\.27\s+4\s+\d+s$/);
  const wide = kubectl(['get', 'websites', '-o', 'wide']);
  assert.match(wide.stdout, /\bTIER\b[\s\S]*\bstatic\b/);
});

test('the apiserver refuses what the example forbids: the CEL rule, the minimum, the enum, the pattern', () => {
  const cases: Array<[string, RegExp]> = [
    ['{ image: "nginx", replicas: 6 }', /a static website runs at most 5 replicas/],
    ['{ image: "nginx", replicas: 0 }', /spec\.replicas in body should be greater than or equal to 1/],
    ['{ image: "nginx", tier: "serverless" }', /spec\.tier: Unsupported value: "serverless"/],
    ['{ image: "NGINX" }', /spec\.image in body should match/],
  ];
  for (const [i, [spec, expected]] of cases.entries()) {
    const r = kubectl(['apply', '-f', '-'], website(`bad${i}`, spec));
    assert.notEqual(r.status, 0, `${spec} was accepted`);
    assert.match(r.stderr, expected);
  }
  // A dynamic website may run more: the rule reads the tier.
  const ok = kubectl(['apply', '-f', '-'], website('shop', '{ image: "nginx", tier: dynamic, replicas: 6 }'));
  assert.equal(ok.status, 0, ok.stderr);
});

test('the deprecated v1alpha1 still serves, with its warning', () => {
  const file = join(work, 'old.yaml');
  writeFileSync(
    file,
    'apiVersion: example.capstan.dev/v1alpha1\nkind: Website\nmetadata: { name: legacy, namespace: default }\nspec: { image: nginx }\n',
  );
  const r = kubectl(['apply', '-f', file]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /Warning: example\.capstan\.dev\/v1alpha1 Website is deprecated; use v1/);
});
