import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type InstalledProvider, installProvider } from 'capstan/terraform';
import { runTofu } from 'capstan/testing';
import { createPlatformApi } from '../examples/platform-api/api.ts';

// The example of issue 14 end to end: the platform API (SQLite) running, terraform-provider-capstanplatform
// installed in a filesystem mirror, and the real OpenTofu driving it.
const entry = fileURLToPath(new URL('../examples/platform-api/provider.ts', import.meta.url));
const TOKEN = 'test-token-1';

const header = `
terraform {
  required_providers {
    capstanplatform = { source = "capstan/capstanplatform", version = "0.1.0" }
  }
}
provider "capstanplatform" {}
`;

const stack = `${header}
resource "capstanplatform_team" "payments" {
  name        = "payments"
  description = "Money in, money out"
}
resource "capstanplatform_project" "checkout" {
  team_id     = capstanplatform_team.payments.id
  name        = "checkout"
  environment = "staging"
  labels      = { tier = "1" }
}
resource "capstanplatform_api_key" "ci" {
  project_id = capstanplatform_project.checkout.id
  name       = "ci"
  scopes     = ["deploy", "read"]
}
data "capstanplatform_team" "payments" {
  name = capstanplatform_team.payments.name
}
output "key_secret" {
  value     = capstanplatform_api_key.ci.secret
  sensitive = true
}
output "team_from_data" {
  value = data.capstanplatform_team.payments.description
}
`;

describe('terraform-provider-capstanplatform against the platform API, driven by OpenTofu', () => {
  let work: string;
  let mod: string;
  let api: ReturnType<typeof createPlatformApi>;
  let url: string;
  let installed: InstalledProvider;
  let env: NodeJS.ProcessEnv;

  const tofu = (
    args: string[],
    options: { allowFailure?: boolean; cwd?: string; env?: NodeJS.ProcessEnv } = {},
  ) =>
    runTofu(args, {
      cwd: options.cwd ?? mod,
      env: options.env ?? env,
      allowFailure: options.allowFailure ?? false,
      timeoutMs: 240_000,
    });
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${url}/v1/${path}`, {
      method,
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    return {
      status: res.status,
      json: (await res.json()) as Record<string, unknown> & Record<string, unknown>[],
    };
  };
  const count = (table: string) =>
    (api.db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'capstan-tf-platform-'));
    mod = join(work, 'stack');
    mkdirSync(mod);
    api = createPlatformApi({ db: join(work, 'platform.db'), token: TOKEN, host: '127.0.0.1' });
    url = await api.start();
    installed = installProvider({
      name: 'capstanplatform',
      entry,
      mirror: join(work, 'mirror'),
      version: '0.1.0',
    });
    writeFileSync(join(work, 'tofurc'), installed.mirrorConfig);
    env = {
      TF_CLI_CONFIG_FILE: join(work, 'tofurc'),
      CAPSTAN_PLATFORM_ENDPOINT: url,
      CAPSTAN_PLATFORM_TOKEN: TOKEN,
    };
    writeFileSync(join(mod, 'main.tf'), stack);
  });
  after(async () => {
    await api?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  test('the provider executable refuses to run by hand (no magic cookie): message on stderr, exit 1', () => {
    const r = spawnSync(installed.executable, [], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 1, r.stderr);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /This binary is a plugin/);
  });

  test('init finds the provider in the filesystem mirror', async () => {
    const init = await tofu(['init']);
    assert.match(init.stdout, /Installing capstan\/capstanplatform v0\.1\.0/);
  });

  test('plan: ids computed by the API are unknown, and so is what depends on them', async () => {
    const plan = await tofu(['plan']);
    assert.match(plan.stdout, /Plan: 3 to add, 0 to change, 0 to destroy\./);
    const project = plan.stdout.slice(
      plan.stdout.indexOf('capstanplatform_project.checkout will be created'),
    );
    assert.match(project, /\+ team_id\s+= \(known after apply\)/);
    assert.match(plan.stdout, /\+ secret\s+= \(sensitive value\)/);
  });

  test('apply creates team, project and key in the API; plan then shows no changes', async () => {
    const apply = await tofu(['apply', '-auto-approve']);
    assert.match(apply.stdout, /Apply complete! Resources: 3 added, 0 changed, 0 destroyed\./);
    const teams = (await call('GET', 'teams')).json as unknown as {
      id: string;
      name: string;
      description: string;
    }[];
    assert.deepEqual(
      teams.map((t) => [t.name, t.description]),
      [['payments', 'Money in, money out']],
    );
    const project = api.db.prepare('SELECT * FROM projects').get() as Record<string, string>;
    assert.equal(project.team_id, teams[0]!.id);
    assert.equal(project.environment, 'staging');
    assert.equal(count('api_keys'), 1);
    const out = JSON.parse((await tofu(['output', '-json'])).stdout);
    assert.match(out.key_secret.value, /^cpk_/);
    assert.equal(out.key_secret.sensitive, true);
    assert.equal(out.team_from_data.value, 'Money in, money out');
    const same = await tofu(['plan', '-detailed-exitcode'], { allowFailure: true });
    assert.equal(same.code, 0, same.stdout + same.stderr);
  });

  test('a change made through the API behind tofu’s back shows as drift, and apply puts it back', async () => {
    const team = (await call('GET', 'teams')).json[0] as unknown as { id: string };
    const project = api.db.prepare('SELECT id FROM projects').get() as { id: string };
    assert.equal((await call('PUT', `teams/${team.id}`, { description: 'changed by hand' })).status, 200);
    assert.equal((await call('PUT', `projects/${project.id}`, { environment: 'prod' })).status, 200);
    const drift = await tofu(['plan', '-detailed-exitcode'], { allowFailure: true });
    assert.equal(drift.code, 2, drift.stdout + drift.stderr);
    assert.match(drift.stdout, /~ description = "changed by hand" -> "Money in, money out"/);
    assert.match(drift.stdout, /~ environment = "prod" -> "staging"/);
    assert.match(drift.stdout, /Plan: 0 to add, 2 to change, 0 to destroy\./);
    await tofu(['apply', '-auto-approve']);
    assert.equal(
      ((await call('GET', `teams/${team.id}`)).json as unknown as { description: string }).description,
      'Money in, money out',
    );
    assert.equal(
      ((await call('GET', `projects/${project.id}`)).json as unknown as { environment: string }).environment,
      'staging',
    );
  });

  test('an object deleted through the API (404) leaves the state and is created again', async () => {
    const project = api.db.prepare('SELECT id FROM projects').get() as { id: string };
    assert.equal((await call('DELETE', `projects/${project.id}`)).status, 200); // takes its keys with it
    const plan = await tofu(['plan', '-detailed-exitcode'], { allowFailure: true });
    assert.equal(plan.code, 2);
    assert.match(plan.stdout, /capstanplatform_project\.checkout will be created/);
    assert.match(plan.stdout, /capstanplatform_api_key\.ci will be created/);
    const apply = await tofu(['apply', '-auto-approve']);
    assert.match(apply.stdout, /Resources: 2 added, 0 changed, 0 destroyed\./);
    assert.equal(count('projects'), 1);
    assert.equal(count('api_keys'), 1);
  });

  test('import by ID brings a team made through the API under management', async () => {
    const made = await call('POST', 'teams', { name: 'ops', description: 'runs things' });
    assert.equal(made.status, 201);
    writeFileSync(
      join(mod, 'main.tf'),
      `${stack}\nresource "capstanplatform_team" "ops" {\n  name        = "ops"\n  description = "runs things"\n}\n`,
    );
    const imported = await tofu(['import', 'capstanplatform_team.ops', String(made.json.id)]);
    assert.match(imported.stdout, /Import successful!/);
    const plan = await tofu(['plan', '-detailed-exitcode'], { allowFailure: true });
    assert.equal(plan.code, 0, plan.stdout + plan.stderr);
  });

  test('invalid configuration: diagnostics point at the attribute; a missing endpoint names its variable', async () => {
    const bad = join(work, 'bad');
    mkdirSync(bad);
    writeFileSync(
      join(bad, 'main.tf'),
      `${header}resource "capstanplatform_project" "p" {\n  team_id     = "team-x"\n  name        = "Not A Slug"\n  environment = "qa"\n}\n`,
    );
    await tofu(['init'], { cwd: bad });
    const r = await tofu(['validate', '-json'], { cwd: bad, allowFailure: true });
    assert.equal(r.code, 1);
    const diagnostics = (
      JSON.parse(r.stdout) as { diagnostics: { detail: string; range: { start: { line: number } } }[] }
    ).diagnostics.map((d) => [d.range.start.line, d.detail]);
    assert.deepEqual(diagnostics, [
      [10, 'name: must be lowercase letters, digits and dashes'],
      [11, 'environment: must be one of "dev", "staging", "prod", got "qa"'],
    ]);
    const noEndpoint = await tofu(['plan'], {
      cwd: mod,
      env: { TF_CLI_CONFIG_FILE: env.TF_CLI_CONFIG_FILE },
      allowFailure: true,
    });
    assert.equal(noEndpoint.code, 1);
    assert.match(
      noEndpoint.stderr,
      /"endpoint" must be set in the provider block or with\s+CAPSTAN_PLATFORM_ENDPOINT/,
    );
  });

  test('destroy removes everything from the API', async () => {
    const destroy = await tofu(['destroy', '-auto-approve']);
    assert.match(destroy.stdout, /Destroy complete! Resources: 4 destroyed\./);
    assert.equal(count('teams'), 0);
    assert.equal(count('projects'), 0);
    assert.equal(count('api_keys'), 0);
  });
});
