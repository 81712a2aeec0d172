import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runAnsible } from './ansible.ts';

// A script inventory as a cloud inventory plugin would print it: groups with hosts, vars and children,
// plus _meta.hostvars so Ansible never has to call `--host` once per host.
const inventory = {
  web: { hosts: ['web1', 'web2'], vars: { http_port: 8080 } },
  db: { hosts: ['db1'] },
  prod: { children: ['web', 'db'], vars: { env: 'prod' } },
  _meta: {
    hostvars: {
      web1: { ansible_connection: 'local', role: 'primary' },
      web2: { ansible_connection: 'local' },
      db1: { ansible_connection: 'local' },
    },
  },
};

describe('ansible (real Debian ansible)', () => {
  let dir: string;
  let script: string;
  let hostCalls: string;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'capstan-ansible-test-'));
    hostCalls = join(dir, 'host-calls');
    script = join(dir, 'inventory.sh');
    writeFileSync(join(dir, 'inventory.json'), JSON.stringify(inventory));
    writeFileSync(
      script,
      [
        '#!/bin/sh',
        `if [ "$1" = "--list" ]; then cat '${join(dir, 'inventory.json')}'; exit 0; fi`,
        // Recorded so the test can prove _meta spared the per-host calls.
        `echo "$2" >> '${hostCalls}'`,
        'echo "{}"',
        '',
      ].join('\n'),
    );
    chmodSync(script, 0o755);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('ansible-inventory parses groups, children and hostvars from a script inventory', async () => {
    const r = await runAnsible(['-i', script, '--list'], { tool: 'ansible-inventory' });
    const parsed = JSON.parse(r.stdout);
    assert.deepEqual(parsed.web.hosts, ['web1', 'web2']);
    assert.deepEqual(parsed.db.hosts, ['db1']);
    assert.deepEqual([...parsed.prod.children].sort(), ['db', 'web']);
    // Group vars are inherited into each host's vars: web vars only on web hosts, prod vars on all.
    assert.deepEqual(parsed._meta.hostvars.web1, {
      ansible_connection: 'local',
      env: 'prod',
      http_port: 8080,
      role: 'primary',
    });
    assert.equal(parsed._meta.hostvars.db1.env, 'prod');
    assert.equal(parsed._meta.hostvars.db1.http_port, undefined);
    assert.equal(existsSync(hostCalls), false, 'with _meta present, --host must never be called');
  });

  test('ad-hoc ping and debug run against every inventory host over the local connection', async () => {
    const env = { ANSIBLE_LOAD_CALLBACK_PLUGINS: '1', ANSIBLE_STDOUT_CALLBACK: 'json' };
    const ping = JSON.parse((await runAnsible(['-i', script, 'all', '-m', 'ping'], { env })).stdout);
    const pinged = ping.plays[0].tasks[0].hosts;
    assert.deepEqual(Object.keys(pinged).sort(), ['db1', 'web1', 'web2']);
    for (const host of Object.values(pinged) as Array<{ ping: string }>) assert.equal(host.ping, 'pong');
    assert.deepEqual(Object.keys(ping.stats).sort(), ['db1', 'web1', 'web2']);
    for (const s of Object.values(ping.stats) as Array<{ ok: number; failures: number }>) {
      assert.equal(s.ok, 1);
      assert.equal(s.failures, 0);
    }

    const debug = JSON.parse(
      (await runAnsible(['-i', script, 'web', '-m', 'debug', '-a', 'var=http_port'], { env })).stdout,
    );
    const shown = debug.plays[0].tasks[0].hosts;
    assert.deepEqual(Object.keys(shown).sort(), ['web1', 'web2']);
    assert.equal(shown.web1.http_port, 8080);
  });

  test('a playbook changes real files on localhost', async () => {
    const target = join(dir, 'rendered.txt');
    const playbook = join(dir, 'play.yml');
    writeFileSync(
      playbook,
      [
        '- hosts: web',
        '  gather_facts: false',
        '  tasks:',
        '    - ansible.builtin.lineinfile:',
        `        path: '${target}'`,
        '        create: true',
        '        line: "{{ inventory_hostname }} {{ env }} {{ http_port }}"',
        '      throttle: 1',
        '',
      ].join('\n'),
    );
    const r = await runAnsible(['-i', script, playbook], { tool: 'ansible-playbook' });
    assert.match(r.stdout, /web1\s*: ok=1\s+changed=1/);
    assert.deepEqual(readFileSync(target, 'utf8').trim().split('\n').sort(), [
      'web1 prod 8080',
      'web2 prod 8080',
    ]);
  });

  test('a failing inventory script fails the run instead of warning', async () => {
    const broken = join(dir, 'broken.sh');
    writeFileSync(broken, '#!/bin/sh\necho "cloud API unreachable" >&2\nexit 3\n');
    chmodSync(broken, 0o755);
    await assert.rejects(
      runAnsible(['-i', broken, '--list'], { tool: 'ansible-inventory' }),
      (err: Error) => {
        assert.equal((err as Error & { code: string }).code, 'CAP_ERR_PEER_COMMAND_FAILED');
        assert.match(err.message, /broken\.sh/);
        return true;
      },
    );
  });

  test('a failing task reports the failure per host and a non-zero exit', async () => {
    const r = await runAnsible(['-i', script, 'db', '-m', 'ansible.builtin.command', '-a', 'false'], {
      allowFailure: true,
    });
    assert.equal(r.code, 2);
    assert.match(r.stdout, /db1 \| FAILED/);
  });
});
