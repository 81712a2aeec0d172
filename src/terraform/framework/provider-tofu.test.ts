import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runTofu } from '../../testing/index.ts';
import { installProvider } from '../packaging.ts';

// The framework against the real OpenTofu: the test provider of testdata/ (files as remote objects),
// installed as a launcher in a filesystem mirror, driven through init, plan, apply, drift, import, state
// upgrade, validation and destroy.
const entry = fileURLToPath(new URL('../testdata/file-provider.ts', import.meta.url));

const header = `
terraform {
  required_providers {
    capstantest = { source = "capstan/capstantest", version = "0.0.1" }
  }
}
provider "capstantest" {}
`;

const stack = `${header}
variable "a_name" {
  type    = string
  default = "a.txt"
}
resource "capstantest_file" "a" {
  name    = var.a_name
  content = "hello"
  labels  = { team = "platform" }
  extra   = [1, "x"]
  owner   = { name = "me" }
  rule {
    port = 80
  }
}
resource "capstantest_file" "b" {
  name    = "b.txt"
  content = "from \${capstantest_file.a.id}"
}
data "capstantest_blob" "x" {
  size = 3
}
output "blob" {
  value = data.capstantest_blob.x.content
}
`;

interface StateResource {
  address: string;
  values: Record<string, unknown>;
}

describe('a provider on the framework, driven by OpenTofu', () => {
  let work: string;
  let root: string;
  let mod: string;
  let env: NodeJS.ProcessEnv;

  const tofu = (args: string[], options: { allowFailure?: boolean; cwd?: string } = {}) =>
    runTofu(args, {
      cwd: options.cwd ?? mod,
      env,
      allowFailure: options.allowFailure ?? false,
      timeoutMs: 240_000,
    });
  const resources = async (): Promise<StateResource[]> =>
    JSON.parse((await tofu(['show', '-json'])).stdout).values?.root_module?.resources ?? [];

  before(() => {
    work = mkdtempSync(join(tmpdir(), 'capstan-tf-framework-'));
    root = join(work, 'remote');
    mod = join(work, 'stack');
    mkdirSync(root);
    mkdirSync(mod);
    const installed = installProvider({ name: 'capstantest', entry, mirror: join(work, 'mirror') });
    writeFileSync(join(work, 'tofurc'), installed.mirrorConfig);
    env = { TF_CLI_CONFIG_FILE: join(work, 'tofurc'), CAPSTANTEST_ROOT: root };
    writeFileSync(join(mod, 'main.tf'), stack);
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  test('init installs the provider from the filesystem mirror (no registry)', async () => {
    const init = await tofu(['init']);
    assert.match(init.stdout, /Installing capstan\/capstantest v0\.0\.1/);
    assert.match(init.stdout, /OpenTofu has been successfully initialized/);
  });

  test('plan: defaults in nested blocks, a value computed from another resource is unknown, data sources read', async () => {
    const plan = await tofu(['plan']);
    assert.match(plan.stdout, /capstantest_file\.a will be created/);
    assert.match(plan.stdout, /\+ protocol = "tcp"/);
    assert.match(plan.stdout, /\+ mode\s+= "0644"/);
    // b.content interpolates a.id, which the provider computes: unknown until apply.
    const b = plan.stdout.slice(plan.stdout.indexOf('capstantest_file.b will be created'));
    assert.match(b, /\+ content = \(known after apply\)/);
    assert.match(plan.stdout, /\+ blob = "xxx"/);
  });

  test('apply creates (an apply with a null prior state), then plan shows no changes', async () => {
    const apply = await tofu(['apply', '-auto-approve']);
    assert.match(apply.stdout, /Apply complete! Resources: 2 added, 0 changed, 0 destroyed\./);
    assert.equal(readFileSync(join(root, 'a.txt'), 'utf8'), 'hello');
    assert.equal(readFileSync(join(root, 'b.txt'), 'utf8'), 'from a.txt');
    const a = (await resources()).find((r) => r.address === 'capstantest_file.a')!;
    assert.equal(a.values.id, 'a.txt');
    assert.equal(a.values.size, 5);
    assert.deepEqual(a.values.extra, [1, 'x']);
    assert.deepEqual(a.values.labels, { team: 'platform' });
    assert.deepEqual(a.values.owner, { name: 'me', uid: null });
    assert.deepEqual(a.values.rule, [{ port: 80, protocol: 'tcp' }]);
    const same = await tofu(['plan', '-detailed-exitcode'], { allowFailure: true });
    assert.equal(same.code, 0, same.stdout + same.stderr);
  });

  test('drift: Read maps the remote truth to state, a vanished object is planned again, apply fixes both', async () => {
    writeFileSync(join(root, 'a.txt'), 'changed behind its back');
    rmSync(join(root, 'b.txt'));
    const drift = await tofu(['plan', '-detailed-exitcode'], { allowFailure: true });
    assert.equal(drift.code, 2, drift.stdout + drift.stderr);
    assert.match(drift.stdout, /capstantest_file\.a will be updated in-place/);
    assert.match(drift.stdout, /~ content = "changed behind its back" -> "hello"/);
    // id keeps its value (useStateForUnknown); size is recomputed.
    assert.match(drift.stdout, /\s+id\s+= "a\.txt"\n/);
    assert.match(drift.stdout, /~ size\s+= 23 -> \(known after apply\)/);
    assert.match(drift.stdout, /capstantest_file\.b will be created/);
    const fix = await tofu(['apply', '-auto-approve']);
    assert.match(fix.stdout, /Resources: 1 added, 1 changed, 0 destroyed\./);
    assert.equal(readFileSync(join(root, 'a.txt'), 'utf8'), 'hello');
    assert.ok(existsSync(join(root, 'b.txt')));
  });

  test('a requiresReplace attribute plans a replacement', async () => {
    const plan = await tofu(['plan', '-detailed-exitcode', '-var', 'a_name=a2.txt'], { allowFailure: true });
    assert.equal(plan.code, 2);
    assert.match(plan.stdout, /capstantest_file\.a must be replaced/);
    assert.match(plan.stdout, /~ name\s+= "a\.txt" -> "a2\.txt" # forces replacement/);
  });

  test('state stored at schema version 0 is upgraded before use', async () => {
    const file = join(mod, 'terraform.tfstate');
    const state = JSON.parse(readFileSync(file, 'utf8'));
    const a = state.resources.find((r: { name: string }) => r.name === 'a');
    for (const instance of a.instances) {
      instance.schema_version = 0;
      instance.attributes.text = instance.attributes.content;
      delete instance.attributes.content;
    }
    state.serial += 1;
    writeFileSync(file, JSON.stringify(state));
    // No refresh: only the upgrader can turn `text` back into `content`.
    const plan = await tofu(['plan', '-refresh=false', '-detailed-exitcode'], { allowFailure: true });
    assert.equal(plan.code, 0, plan.stdout + plan.stderr);
  });

  test('import by ID reads the object into state', async () => {
    writeFileSync(join(root, 'c.txt'), 'made by hand', { mode: 0o600 });
    writeFileSync(
      join(mod, 'main.tf'),
      `${stack}\nresource "capstantest_file" "c" {\n  name    = "c.txt"\n  content = "made by hand"\n}\n`,
    );
    const imported = await tofu(['import', 'capstantest_file.c', 'c.txt']);
    assert.match(imported.stdout, /Import successful!/);
    const c = (await resources()).find((r) => r.address === 'capstantest_file.c')!;
    assert.equal(c.values.content, 'made by hand');
    assert.equal(c.values.size, 12);
    assert.equal(c.values.mode, '0600');
    // The configuration leaves mode to its default (0644): the imported 0600 shows as a change.
    const plan = await tofu(['plan', '-detailed-exitcode'], { allowFailure: true });
    assert.equal(plan.code, 2, plan.stdout + plan.stderr);
    assert.match(plan.stdout, /~ mode\s+= "0600" -> "0644"/);
  });

  test('invalid configuration: diagnostics point at the attribute', async () => {
    const bad = join(work, 'bad');
    mkdirSync(bad);
    writeFileSync(
      join(bad, 'main.tf'),
      `${header}resource "capstantest_file" "x" {\n  name    = "forbidden"\n  content = "hello"\n  mode    = "0777"\n  rule {\n    port = 70000\n  }\n}\n`,
    );
    await tofu(['init'], { cwd: bad });
    const r = await tofu(['validate', '-json'], { cwd: bad, allowFailure: true });
    assert.equal(r.code, 1);
    const report = JSON.parse(r.stdout) as {
      diagnostics: { summary: string; detail: string; range: { start: { line: number } } }[];
    };
    const byLine = Object.fromEntries(report.diagnostics.map((d) => [d.range.start.line, d]));
    // header is 7 lines: the resource starts on line 8.
    assert.match(byLine[9]!.summary, /Forbidden name/);
    assert.match(byLine[11]!.detail, /^mode: must be one of "0644", "0600", got "0777"$/);
    assert.match(byLine[13]!.detail, /^rule\[0\]\.port: must be between 1 and 65535, got 70000$/);
  });

  test('destroy deletes every object (an apply with a null planned state)', async () => {
    const destroy = await tofu(['destroy', '-auto-approve']);
    assert.match(destroy.stdout, /Destroy complete! Resources: 3 destroyed\./);
    assert.equal(existsSync(join(root, 'a.txt')), false);
    assert.equal(existsSync(join(root, 'b.txt')), false);
    assert.equal(existsSync(join(root, 'c.txt')), false);
  });
});
