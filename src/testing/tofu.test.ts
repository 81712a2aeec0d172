import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runTofu } from './tofu.ts';

// Only built-in things: the `terraform` provider's terraform_data resource, locals, variables and
// outputs, so init needs no registry.
const mainTf = `
variable "team" {
  type    = string
  default = "platform"
}

locals {
  greeting = "hello \${var.team}"
  replicas = length(var.team)
}

resource "terraform_data" "app" {
  input            = { greeting = local.greeting, replicas = local.replicas }
  triggers_replace = [var.team]
}

output "greeting" {
  value = terraform_data.app.output.greeting
}

output "replicas" {
  value = terraform_data.app.output.replicas
}
`;

describe('tofu (real OpenTofu built from the Go module proxy)', () => {
  let work: string;
  let mod: string;

  before(() => {
    work = mkdtempSync(join(tmpdir(), 'capstan-tofu-test-'));
    mod = join(work, 'stack');
    mkdirSync(mod);
    writeFileSync(join(mod, 'main.tf'), mainTf);
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  test('version is the pinned OpenTofu', async () => {
    const r = await runTofu(['version', '-json']);
    // Built without upstream's release ldflags, the binary calls itself a -dev build of the pinned tag.
    assert.match(JSON.parse(r.stdout).terraform_version, /^1\.12\.6(-dev)?$/);
  });

  test('init, apply, output -json, then plan is clean until a variable changes', async () => {
    const init = await runTofu(['init'], { cwd: mod });
    assert.match(init.stdout, /OpenTofu has been successfully initialized/);

    const apply = await runTofu(['apply', '-auto-approve', '-var', 'team=capstan'], { cwd: mod });
    assert.match(apply.stdout, /Apply complete! Resources: 1 added, 0 changed, 0 destroyed\./);
    assert.ok(existsSync(join(mod, 'terraform.tfstate')));

    const out = JSON.parse((await runTofu(['output', '-json'], { cwd: mod })).stdout);
    assert.deepEqual(out.greeting, { sensitive: false, type: 'string', value: 'hello capstan' });
    assert.equal(out.replicas.value, 7);

    // -detailed-exitcode: 0 = no changes, 2 = changes present.
    const same = await runTofu(['plan', '-detailed-exitcode', '-var', 'team=capstan'], {
      cwd: mod,
      allowFailure: true,
    });
    assert.equal(same.code, 0, same.stdout + same.stderr);
    const changed = await runTofu(['plan', '-detailed-exitcode', '-var', 'team=ops'], {
      cwd: mod,
      allowFailure: true,
    });
    assert.equal(changed.code, 2, changed.stdout + changed.stderr);
    assert.match(changed.stdout, /terraform_data\.app must be replaced/);

    const state = JSON.parse((await runTofu(['show', '-json'], { cwd: mod })).stdout);
    const resources = state.values.root_module.resources as Array<{
      address: string;
      values: { input: unknown };
    }>;
    assert.deepEqual(
      resources.map((r) => r.address),
      ['terraform_data.app'],
    );
    assert.deepEqual(resources[0]!.values.input, { greeting: 'hello capstan', replicas: 7 });

    const destroy = await runTofu(['destroy', '-auto-approve', '-var', 'team=capstan'], { cwd: mod });
    assert.match(destroy.stdout, /Destroy complete! Resources: 1 destroyed\./);
    const empty = JSON.parse(readFileSync(join(mod, 'terraform.tfstate'), 'utf8'));
    assert.deepEqual(empty.resources, []);
  });

  test('invalid configuration fails validate with a diagnostic naming the file', async () => {
    const bad = join(work, 'bad');
    mkdirSync(bad);
    writeFileSync(join(bad, 'main.tf'), 'resource "terraform_data" "x" {\n  input = local.missing\n}\n');
    await runTofu(['init'], { cwd: bad });
    const r = await runTofu(['validate', '-json'], { cwd: bad, allowFailure: true });
    assert.equal(r.code, 1);
    const report = JSON.parse(r.stdout);
    assert.equal(report.valid, false);
    assert.equal(report.diagnostics[0].summary, 'Reference to undeclared local value');
    assert.equal(report.diagnostics[0].range.filename, 'main.tf');
    await assert.rejects(runTofu(['apply', '-auto-approve'], { cwd: bad }), {
      code: 'CAP_ERR_PEER_COMMAND_FAILED',
    });
  });

  test('a syntax error fails init', async () => {
    const broken = join(work, 'broken');
    mkdirSync(broken);
    writeFileSync(join(broken, 'main.tf'), 'resource "terraform_data" {\n');
    await assert.rejects(runTofu(['init'], { cwd: broken }), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'CAP_ERR_PEER_COMMAND_FAILED');
      assert.match(err.message, /main\.tf/);
      return true;
    });
  });
});
