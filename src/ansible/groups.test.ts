import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { runAnsible } from 'capstan/testing';
import {
  type CompiledRule,
  compileRule,
  type GroupRuleSpec,
  groupHosts,
  sanitizeGroupName,
} from './groups.ts';
import { type InventoryHost, mergeHosts, type SourceHost, toInventoryHost } from './inventory.ts';

function rules(...specs: GroupRuleSpec[]): CompiledRule[] {
  return specs.map((spec) => {
    const { rule, problems } = compileRule(spec);
    assert.deepEqual(problems, [], JSON.stringify(spec));
    return rule!;
  });
}

function hosts(...list: SourceHost[]): InventoryHost[] {
  return list.map((h) => toInventoryHost(h, 'test'));
}

describe('sanitizeGroupName', () => {
  test('what Ansible replaces: any non-word character, and a leading digit', () => {
    assert.equal(sanitizeGroupName('env-prod'), 'env_prod');
    assert.equal(sanitizeGroupName('zone.eu-west.1a'), 'zone_eu_west_1a');
    assert.equal(sanitizeGroupName('1st'), '_st');
    assert.equal(sanitizeGroupName('a b/c:d'), 'a_b_c_d');
    assert.equal(sanitizeGroupName('already_fine_2'), 'already_fine_2');
    // Python's \w is Unicode: letters and digits of any script stay.
    assert.equal(sanitizeGroupName('équipe_東京'), 'équipe_東京');
    assert.equal(sanitizeGroupName('٣rd'), '_rd');
  });

  test('gives the names the real Ansible gives with TRANSFORM_INVALID_GROUP_CHARS=always', async () => {
    const raw = ['env-prod', 'zone.eu-west.1a', '1st', 'a b/c:d', 'équipe_東京', '٣rd', 'ok_1', 'x+y=z'];
    const dir = mkdtempSync(join(tmpdir(), 'capstan-ansible-sanitize-'));
    try {
      const inventory: Record<string, unknown> = { _meta: { hostvars: {} } };
      raw.forEach((name, i) => {
        inventory[name] = { hosts: [`h${i}`] };
      });
      const script = join(dir, 'inventory.sh');
      writeFileSync(join(dir, 'inventory.json'), JSON.stringify(inventory));
      writeFileSync(script, `#!/bin/sh\ncat '${join(dir, 'inventory.json')}'\n`);
      chmodSync(script, 0o755);
      const r = await runAnsible(['-i', script, '--list'], {
        tool: 'ansible-inventory',
        env: { ANSIBLE_TRANSFORM_INVALID_GROUP_CHARS: 'always' },
      });
      const listed = JSON.parse(r.stdout) as Record<string, { hosts?: string[] }>;
      raw.forEach((name, i) => {
        assert.deepEqual(
          listed[sanitizeGroupName(name)]?.hosts,
          [`h${i}`],
          `${name} → ${sanitizeGroupName(name)}`,
        );
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('group rules', () => {
  const fleet = hosts(
    { name: 'db-prod-1', labels: { env: 'prod', role: 'db' }, tags: ['primary', 'zone-a'] },
    { name: 'db-stage-1', labels: { env: 'stage', role: 'db' }, tags: ['zone-b'] },
    {
      name: 'web-prod-1',
      kind: 'container',
      labels: { env: 'prod', app: 'web' },
      services: ['web', 'metrics'],
    },
    { name: 'lonely' },
  );

  test('a name prefix puts the db- hosts in databases; hosts no rule takes go to ungrouped', () => {
    const inv = groupHosts(fleet, rules({ name: 'databases', namePrefix: 'db-' }));
    assert.deepEqual(inv['databases'], { hosts: ['db-prod-1', 'db-stage-1'] });
    assert.deepEqual(inv['ungrouped'], { hosts: ['web-prod-1', 'lonely'] });
    assert.deepEqual(Object.keys(inv._meta.hostvars), ['db-prod-1', 'db-stage-1', 'web-prod-1', 'lonely']);
  });

  test('regex captures name the group; the name is sanitized', () => {
    const inv = groupHosts(fleet, rules({ name: 'env_$1', nameRegex: '^[a-z]+-([a-z]+)-' }));
    assert.deepEqual(inv['env_prod'], { hosts: ['db-prod-1', 'web-prod-1'] });
    assert.deepEqual(inv['env_stage'], { hosts: ['db-stage-1'] });
    const dashed = groupHosts(fleet, rules({ name: '$0', nameRegex: '^db-[a-z]+' }));
    assert.deepEqual(dashed['db_prod'], { hosts: ['db-prod-1'] });
  });

  test('by label: presence ($1 its value), equality, regex on a value', () => {
    const inv = groupHosts(
      fleet,
      rules(
        { name: 'role_$1', label: 'role' },
        { name: 'prod_web', labels: { env: 'prod', app: 'web' } },
        { name: 'e_$1', labelRegex: { key: 'env', pattern: '^(p)rod$' } },
      ),
    );
    assert.deepEqual(inv['role_db'], { hosts: ['db-prod-1', 'db-stage-1'] });
    assert.deepEqual(inv['prod_web'], { hosts: ['web-prod-1'] });
    assert.deepEqual(inv['e_p'], { hosts: ['db-prod-1', 'web-prod-1'] });
  });

  test('by tag and service: each matching tag makes its own group', () => {
    const inv = groupHosts(
      fleet,
      rules(
        { name: 'primaries', tag: 'primary' },
        { name: 'zone_$1', tagRegex: '^zone-(.)$' },
        { name: 'svc_$1', serviceRegex: '(.+)' },
        { name: 'webs', service: 'web' },
      ),
    );
    assert.deepEqual(inv['primaries'], { hosts: ['db-prod-1'] });
    assert.deepEqual(inv['zone_a'], { hosts: ['db-prod-1'] });
    assert.deepEqual(inv['zone_b'], { hosts: ['db-stage-1'] });
    assert.deepEqual(inv['svc_web'], { hosts: ['web-prod-1'] });
    assert.deepEqual(inv['svc_metrics'], { hosts: ['web-prod-1'] });
    assert.deepEqual(inv['webs'], { hosts: ['web-prod-1'] });
  });

  test('matchers of one rule all have to match; kind and source match too', () => {
    const inv = groupHosts(
      fleet,
      rules(
        { name: 'prod_db', namePrefix: 'db-', labels: { env: 'prod' } },
        { name: 'containers', kind: 'container' },
        { name: 'from_test', source: 'test', namePrefix: 'lon' },
      ),
    );
    assert.deepEqual(inv['prod_db'], { hosts: ['db-prod-1'] });
    assert.deepEqual(inv['containers'], { hosts: ['web-prod-1'] });
    assert.deepEqual(inv['from_test'], { hosts: ['lonely'] });
  });

  test('vars and children: on a plain group, on every group a template makes, merged over several rules', () => {
    const inv = groupHosts(
      fleet,
      rules(
        { name: 'databases', namePrefix: 'db-', vars: { port: 5432 } },
        { name: 'databases', vars: { backup: true }, children: ['archive'] },
        { name: 'env_$1', label: 'env', vars: { managed: 'yes' } },
        { name: 'prod', children: ['env_prod', 'env-legacy'] },
        { name: 'all', vars: { ansible_connection: 'local' } },
        { name: 'empty', vars: { x: 1 } },
      ),
    );
    assert.deepEqual(inv['databases'], {
      hosts: ['db-prod-1', 'db-stage-1'],
      vars: { port: 5432, backup: true },
      children: ['archive'],
    });
    assert.deepEqual(inv['env_prod'], { hosts: ['db-prod-1', 'web-prod-1'], vars: { managed: 'yes' } });
    assert.deepEqual(inv['env_stage'], { hosts: ['db-stage-1'], vars: { managed: 'yes' } });
    assert.deepEqual(inv['prod'], { children: ['env_prod', 'env_legacy'] });
    assert.deepEqual(inv['all'], { vars: { ansible_connection: 'local' } });
    assert.deepEqual(inv['empty'], { vars: { x: 1 } });
  });

  test('a capture that comes out empty makes no group; the groups a source gives are sanitized', () => {
    const inv = groupHosts(
      hosts({ name: 'x', labels: { team: '' }, groups: ['from-source', 'all'] }),
      rules({ name: '$1', label: 'team' }),
    );
    assert.deepEqual(inv['from_source'], { hosts: ['x'] });
    assert.equal(inv['all'], undefined);
    assert.equal(inv['ungrouped'], undefined);
  });

  test('problems: $N beyond the captures, $N without a capture, two capturing matchers, bad regex, members for all', () => {
    const problems = (spec: GroupRuleSpec) =>
      compileRule(spec).problems.map((p) => `${p.field}: ${p.message}`);
    assert.match(
      problems({ name: 'g_$2', nameRegex: '(a)' }).join(),
      /^name: uses \$2 but nameRegex has 1 capture group$/,
    );
    assert.match(problems({ name: 'g_$1', namePrefix: 'a' }).join(), /no capturing matcher/);
    assert.match(
      problems({ name: 'g_$1', label: 'a', tagRegex: '(b)' }).join(),
      /^tagRegex: a rule has at most one/,
    );
    assert.match(problems({ name: 'g', nameRegex: '(' }).join(), /^nameRegex: not a valid regex/);
    assert.match(problems({ name: 'all', namePrefix: 'a' }).join(), /Ansible's own group/);
    assert.deepEqual(problems({ name: 'cost_$$1', nameRegex: 'x' }), []);
  });

  test('mergeHosts: one host per name, later vars and labels win, lists united, both sources named', () => {
    const merged = mergeHosts([
      toInventoryHost({ name: 'a', vars: { x: 1, y: 1 }, labels: { l: '1' }, tags: ['t1'] }, 'one'),
      toInventoryHost({ name: 'b' }, 'one'),
      toInventoryHost({ name: 'a', vars: { y: 2 }, tags: ['t2', 't1'], services: ['s'] }, 'two'),
    ]);
    assert.deepEqual(
      merged.map((h) => h.name),
      ['a', 'b'],
    );
    assert.deepEqual(merged[0]!.vars, { x: 1, y: 2 });
    assert.deepEqual(merged[0]!.tags, ['t1', 't2']);
    assert.equal(merged[0]!.source, 'one,two');
    const inv = groupHosts(merged, rules({ name: 'from_two', source: 'two' }));
    assert.deepEqual(inv['from_two'], { hosts: ['a'] });
  });
});
