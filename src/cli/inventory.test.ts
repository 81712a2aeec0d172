// `capstan inventory` as users and Ansible run it: the CLI, the wrapper `capstan inventory script` writes,
// and the real Ansible (Debian's ansible-inventory and ansible) reading it.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runAnsible } from 'capstan/testing';

const main = join(import.meta.dirname, 'main.ts');
const program = join(import.meta.dirname, '..', 'ansible', 'inventory-main.ts');

/** The areas of src/ whose modules a run of `node args` loads (recorded by a module resolve hook). */
function areasLoaded(dir: string, args: string[]): Set<string> {
  const hook = join(dir, 'record-modules.mjs');
  writeFileSync(
    hook,
    [
      "import { registerHooks } from 'node:module';",
      'registerHooks({ resolve(specifier, context, next) {',
      '  const r = next(specifier, context);',
      "  if (r.url.includes('/src/')) process.stderr.write('MODULE ' + r.url + '\\n');",
      '  return r;',
      '} });',
    ].join('\n'),
  );
  const r = spawnSync(process.execPath, ['--import', hook, '--conditions=capstan-source', ...args], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  assert.equal(r.status, 0, r.stderr);
  const areas = new Set<string>();
  for (const m of r.stderr.matchAll(/^MODULE .*\/src\/([^/]+)\//gm)) areas.add(m[1]!);
  return areas;
}

function capstan(args: string[], env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(process.execPath, ['--conditions=capstan-source', main, ...args], {
    encoding: 'utf8',
    env: { ...process.env, CAPSTAN_INVENTORY_CONFIG: '', ...env },
    timeout: 60_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('capstan inventory', () => {
  let dir: string;
  let config: string;
  let wrapper: string;
  /** A server that takes connections and never answers: a source that hangs. */
  let silent: Server;
  const held = new Set<Socket>();

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'capstan-inventory-cli-'));
    writeFileSync(
      join(dir, 'hosts.yaml'),
      [
        'hosts:',
        '  db-prod-1:',
        '    vars: { role: primary }',
        '    labels: { env: prod }',
        '  db-stage-1:',
        '    labels: { env: stage }',
        '  web-prod-1:',
        '    labels: { env: prod, app: web }',
        '    tags: [canary]',
        '  tools:',
      ].join('\n'),
    );
    config = join(dir, 'inventory.yaml');
    writeFileSync(
      config,
      [
        'sources:',
        '  - type: static',
        '    file: hosts.yaml',
        'groups:',
        '  - name: databases',
        '    namePrefix: db-',
        '    vars: { db_port: 5432 }',
        '  - name: env-$1', // sanitized to env_prod, env_stage
        '    label: env',
        '  - name: canaries',
        '    tag: canary',
        '  - name: production',
        '    children: [env_prod]',
        '    vars: { tier: gold }',
        '  - name: all',
        '    vars: { ansible_connection: local }',
      ].join('\n'),
    );
    wrapper = join(dir, 'inventory.sh');
    silent = createServer((socket) => {
      held.add(socket);
      socket.on('close', () => held.delete(socket));
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  });
  after(() => {
    for (const s of held) s.destroy();
    silent.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('--list: groups from the rules, _meta.hostvars with every host; --host: one host, {} when unknown', () => {
    const r = capstan(['inventory', '--config', config, '--list']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    const inv = JSON.parse(r.stdout);
    assert.deepEqual(inv.databases, { hosts: ['db-prod-1', 'db-stage-1'], vars: { db_port: 5432 } });
    assert.deepEqual(inv.env_prod, { hosts: ['db-prod-1', 'web-prod-1'] });
    assert.deepEqual(inv.env_stage, { hosts: ['db-stage-1'] });
    assert.deepEqual(inv.canaries, { hosts: ['web-prod-1'] });
    assert.deepEqual(inv.production, { vars: { tier: 'gold' }, children: ['env_prod'] });
    assert.deepEqual(inv.ungrouped, { hosts: ['tools'] });
    assert.deepEqual(Object.keys(inv._meta.hostvars).sort(), [
      'db-prod-1',
      'db-stage-1',
      'tools',
      'web-prod-1',
    ]);
    assert.deepEqual(inv._meta.hostvars['db-prod-1'], { role: 'primary' });

    const host = capstan(['inventory', '--config', config, '--host', 'db-prod-1']);
    assert.equal(host.code, 0, host.stderr);
    assert.deepEqual(JSON.parse(host.stdout), { role: 'primary' });
    const unknown = capstan(['inventory', '--config', config, '--host', 'nope']);
    assert.equal(unknown.code, 0);
    assert.deepEqual(JSON.parse(unknown.stdout), {});
  });

  test('no configuration, or one without sources: an empty valid inventory and a hint on stderr', () => {
    const none = capstan(['inventory', '--list']);
    assert.equal(none.code, 0, none.stderr);
    assert.deepEqual(JSON.parse(none.stdout), { _meta: { hostvars: {} } });
    assert.match(none.stderr, /no inventory configuration \(--config <file> or CAPSTAN_INVENTORY_CONFIG\)/);

    const empty = join(dir, 'empty.yaml');
    writeFileSync(empty, '# nothing yet\n');
    const fromEnv = capstan(['inventory', '--list'], { CAPSTAN_INVENTORY_CONFIG: empty });
    assert.equal(fromEnv.code, 0, fromEnv.stderr);
    assert.deepEqual(JSON.parse(fromEnv.stdout), { _meta: { hostvars: {} } });
    assert.match(fromEnv.stderr, /empty\.yaml configures no source \(sources:\)/);
  });

  test('wrong usage exits 2; a bad configuration exits 78 with every problem and its place', () => {
    const neither = capstan(['inventory', '--config', config]);
    assert.equal(neither.code, 2);
    assert.match(neither.stderr, /give --list or --host <name>/);
    const both = capstan(['inventory', '--config', config, '--list', '--host', 'x']);
    assert.equal(both.code, 2);

    const bad = join(dir, 'bad.yaml');
    writeFileSync(
      bad,
      'sources:\n  - type: static\n    files: hosts.yaml\ngroups:\n  - name: g_$1\n    namePrefix: x\n',
    );
    const r = capstan(['inventory', '--config', bad, '--list']);
    assert.equal(r.code, 78, r.stderr);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /invalid inventory configuration .*bad\.yaml: 3 problems/);
    assert.match(r.stderr, /bad\.yaml:2:5: sources\[0\]\.file: missing required field/);
    assert.match(
      r.stderr,
      /bad\.yaml:3:5: sources\[0\]\.files: unknown field "files" \(did you mean "file"\?\)/,
    );
    assert.match(
      r.stderr,
      /bad\.yaml:5:11: groups\[0\]\.name: uses \$1 but the rule has no capturing matcher/,
    );
  });

  test('a source that is down or hangs: exit 1, the message names the source; each source has its own timeout', () => {
    const down = join(dir, 'down.yaml');
    // A port nothing listens on: the silent server's, once it is closed, would race; port 1 is never ours.
    writeFileSync(
      down,
      [
        'sources:',
        '  - type: static',
        '    file: hosts.yaml',
        '  - type: consul',
        '    name: dc-east',
        '    url: http://127.0.0.1:1',
      ].join('\n'),
    );
    const r = capstan(['inventory', '--config', down, '--list']);
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stdout, '');
    assert.match(
      r.stderr,
      /source dc-east \(consul http:\/\/127\.0\.0\.1:1\): .*ECONNREFUSED.*\(CAP_ERR_ANSIBLE_SOURCE\)/,
    );

    const hangs = join(dir, 'hangs.yaml');
    const port = (silent.address() as { port: number }).port;
    writeFileSync(
      hangs,
      [
        'timeout: 30s',
        'sources:',
        '  - type: consul',
        `    url: http://127.0.0.1:${port}`,
        '    timeout: 300ms',
      ].join('\n'),
    );
    const slow = capstan(['inventory', '--config', hangs, '--list']);
    assert.equal(slow.code, 1, slow.stderr);
    assert.match(
      slow.stderr,
      new RegExp(
        `source consul \\(consul http://127\\.0\\.0\\.1:${port}\\): no answer within 300ms \\(CAP_ERR_ANSIBLE_TIMEOUT\\)`,
      ),
    );
  });

  test('capstan inventory script writes an executable that execs the inventory program; Ansible reads it', async () => {
    const w = capstan(['inventory', '--config', config, 'script', '-o', wrapper]);
    assert.equal(w.code, 0, w.stderr);
    assert.equal(statSync(wrapper).mode & 0o777, 0o755);
    const text = readFileSync(wrapper, 'utf8');
    assert.match(text, /^#!\/bin\/sh\n/);
    assert.match(
      text,
      /exec '.*node' '.*src\/ansible\/inventory-main\.ts' --config '.*inventory\.yaml' "\$@"\n$/,
    );
    // Straight to stdout without -o; a bad configuration is refused before any script is written.
    assert.equal(capstan(['inventory', '--config', config, 'script']).stdout, text);
    writeFileSync(join(dir, 'typo.yaml'), 'sourcs: []\n');
    const refused = capstan(['inventory', '--config', join(dir, 'typo.yaml'), 'script']);
    assert.equal(refused.code, 78);
    assert.equal(refused.stdout, '');
    assert.equal(capstan(['inventory', 'script']).code, 2);

    const listed = await runAnsible(['-i', wrapper, '--list'], { tool: 'ansible-inventory' });
    const inv = JSON.parse(listed.stdout);
    assert.deepEqual(inv.databases.hosts.sort(), ['db-prod-1', 'db-stage-1']);
    assert.deepEqual(inv.production.children, ['env_prod']);
    assert.deepEqual(inv.ungrouped.hosts, ['tools']);
    // Ansible folds group vars into each host: db_port from databases, tier from production via env_prod.
    assert.deepEqual(inv._meta.hostvars['db-prod-1'], {
      ansible_connection: 'local',
      db_port: 5432,
      role: 'primary',
      tier: 'gold',
    });
    assert.equal(inv._meta.hostvars['db-stage-1'].tier, undefined);

    const graph = await runAnsible(['-i', wrapper, '--graph'], { tool: 'ansible-inventory' });
    assert.equal(
      graph.stdout.trim(),
      [
        '@all:',
        '  |--@ungrouped:',
        '  |  |--tools',
        '  |--@databases:',
        '  |  |--db-prod-1',
        '  |  |--db-stage-1',
        '  |--@production:',
        '  |  |--@env_prod:',
        '  |  |  |--db-prod-1',
        '  |  |  |--web-prod-1',
        '  |--@env_stage:',
        '  |  |--db-stage-1',
        '  |--@canaries:',
        '  |  |--web-prod-1',
      ].join('\n'),
    );
  });

  test('what each path loads: the inventory program only this area; the CLI no Docker or Kubernetes code', () => {
    assert.deepEqual([...areasLoaded(dir, [program, '--config', config, '--list'])], ['ansible']);
    const cli = areasLoaded(dir, [main, 'inventory', '--config', config, '--list']);
    assert.ok(cli.has('ansible') && cli.has('runtime'), [...cli].join());
    for (const area of ['docker', 'kube', 'yaml', 'traffic']) assert.equal(cli.has(area), false, area);
  });

  test('the inventory program reports as the CLI does: exit 2, 78 or 1 and the code', () => {
    const run = (args: string[]) => {
      const r = spawnSync(process.execPath, [program, ...args], { encoding: 'utf8', timeout: 60_000 });
      return { code: r.status, stdout: r.stdout, stderr: r.stderr };
    };
    const usage = run(['--config', config]);
    assert.equal(usage.code, 2);
    assert.match(
      usage.stderr,
      /^capstan inventory: give --list or --host <name> .*\(CAP_ERR_ANSIBLE_USAGE\)\n$/,
    );
    assert.equal(run(['--list', '--bogus']).code, 2);
    writeFileSync(join(dir, 'typo2.yaml'), 'sources:\n  - type: statik\n');
    const bad = run(['--config', join(dir, 'typo2.yaml'), '--list']);
    assert.equal(bad.code, 78);
    assert.match(bad.stderr, /typo2\.yaml:2:11: sources\[0\]\.type: .*\(CAP_ERR_ANSIBLE_CONFIG\)\n$/);
    writeFileSync(join(dir, 'gone.yaml'), 'sources:\n  - type: static\n    file: gone.json\n');
    const gone = run(['--config', join(dir, 'gone.yaml'), '--list']);
    assert.equal(gone.code, 1);
    assert.equal(gone.stdout, '');
    assert.match(gone.stderr, /source static \(file .*gone\.json\): ENOENT.*\(CAP_ERR_ANSIBLE_SOURCE\)/);
  });

  test('ansible all -m ping over the local connection answers pong for every host', async () => {
    if (!statSync(wrapper, { throwIfNoEntry: false })) {
      assert.equal(capstan(['inventory', '--config', config, 'script', '-o', wrapper]).code, 0);
    }
    const env = { ANSIBLE_LOAD_CALLBACK_PLUGINS: '1', ANSIBLE_STDOUT_CALLBACK: 'json' };
    const r = await runAnsible(['-i', wrapper, 'all', '-m', 'ping', '-c', 'local'], { env });
    const stats = JSON.parse(r.stdout).stats as Record<
      string,
      { ok: number; failures: number; unreachable: number }
    >;
    assert.deepEqual(Object.keys(stats).sort(), ['db-prod-1', 'db-stage-1', 'tools', 'web-prod-1']);
    for (const s of Object.values(stats)) assert.deepEqual([s.ok, s.failures, s.unreachable], [1, 0, 0]);
  });

  test('with ANSIBLE_INVENTORY_UNPARSED_FAILED, a source that is down fails the Ansible run with its message', async () => {
    const down = join(dir, 'down-wrapper.sh');
    const downConfig = join(dir, 'down-only.yaml');
    writeFileSync(downConfig, 'sources:\n  - type: consul\n    name: dc-west\n    url: http://127.0.0.1:1\n');
    assert.equal(capstan(['inventory', '--config', downConfig, 'script', '-o', down]).code, 0);
    // runAnsible sets ANSIBLE_INVENTORY_UNPARSED_FAILED=true, as docs/ansible.md tells users to.
    await assert.rejects(runAnsible(['-i', down, '--list'], { tool: 'ansible-inventory' }), (err: Error) => {
      assert.match(String((err as { stderr?: string }).stderr ?? err.message), /dc-west/);
      return true;
    });
    // Without it Ansible only warns and goes on with no host: what the docs warn about.
    const lenient = await runAnsible(['-i', down, '--list'], {
      tool: 'ansible-inventory',
      env: { ANSIBLE_INVENTORY_UNPARSED_FAILED: 'false' },
    });
    assert.deepEqual(JSON.parse(lenient.stdout)._meta.hostvars, {});
    assert.match(lenient.stderr, /Unable to parse .*down-wrapper\.sh/);
  });
});
