import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { loadInventoryConfig, parseDurationMs, parseInventoryConfig } from './config.ts';
import { AnsibleError, AnsibleErrorCode } from './errors.ts';

async function problemsOf(text: string): Promise<string[]> {
  try {
    await parseInventoryConfig(text, { file: 'inv.yaml', dir: '/etc/capstan' });
  } catch (err) {
    assert.ok(err instanceof AnsibleError, String(err));
    assert.equal(err.code, AnsibleErrorCode.config);
    assert.match(
      err.message,
      new RegExp(`^invalid inventory configuration inv\\.yaml: ${err.problems.length} problems?\\n`),
    );
    return [...err.problems];
  }
  assert.fail('expected a configuration error');
}

describe('inventory configuration', () => {
  const dir = mkdtempSync(join(tmpdir(), 'capstan-ansible-config-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('a good file: sources named after their type unless named, paths resolved, timeouts defaulted', async () => {
    const config = await parseInventoryConfig(
      [
        'timeout: 3s',
        'sources:',
        '  - type: static',
        '    file: hosts.yaml',
        '  - type: docker',
        '    name: local',
        '    timeout: 500ms',
        '    labels: [inventory=true]',
        '  - type: consul',
        '    tokenFile: secrets/token',
        '  - type: kubernetes',
        '    kubeconfig: kube/config',
        '    pods: false',
        'groups:',
        '  - name: databases',
        '    namePrefix: db-',
        '  - name: from_local',
        '    source: local',
      ].join('\n'),
      { file: 'inv.yaml', dir: '/etc/capstan' },
    );
    assert.deepEqual(
      config.sources.map((s) => [s.type, s.name, s.timeoutMs]),
      [
        ['static', 'static', 3000],
        ['docker', 'local', 500],
        ['consul', 'consul', 3000],
        ['kubernetes', 'kubernetes', 3000],
      ],
    );
    const [file, docker, consul, kube] = config.sources;
    assert.equal(file?.type === 'static' && file.file, '/etc/capstan/hosts.yaml');
    assert.deepEqual(docker?.type === 'docker' && docker.labels, ['inventory=true']);
    assert.equal(consul?.type === 'consul' && consul.tokenFile, '/etc/capstan/secrets/token');
    assert.equal(kube?.type === 'kubernetes' && kube.kubeconfig, '/etc/capstan/kube/config');
    assert.equal(config.rules.length, 2);
  });

  test('an empty file is a configuration with no source', async () => {
    const config = await parseInventoryConfig('', { file: 'inv.yaml' });
    assert.deepEqual(config.sources, []);
    assert.deepEqual(config.rules, []);
  });

  test('every problem at once, in file order, each with its line and column; unknown keys with a did-you-mean', async () => {
    const problems = await problemsOf(
      [
        'timeout: 5 parsecs', // 1
        'sourcse: []', // 2
        'sources:', // 3
        '  - type: static', // 4
        '    fille: hosts.yaml', // 5
        '  - type: dockr', // 6
        '  - type: docker', // 7
        '    all: "yes"', // 8
        '  - type: consul', // 9
        '  - type: consul', // 10
        'groups:', // 11
        '  - name: env_$2', // 12
        "    nameRegex: '^(\\w+)-'", // 13
        '  - name: x', // 14
        "    nameRegex: '(['", // 15
        '  - name: y', // 16
        '    source: nope', // 17
        '  - namePrefix: db-', // 18
        '    colour: red', // 19
      ].join('\n'),
    );
    assert.deepEqual(problems, [
      'inv.yaml:1:10: timeout: expected a duration like 10s, 500ms or 1m30s, got "5 parsecs"',
      'inv.yaml:2:1: sourcse: unknown field "sourcse" (did you mean "sources"?)',
      'inv.yaml:4:5: sources[0].file: missing required field (expected string)',
      'inv.yaml:5:5: sources[0].fille: unknown field "fille" (did you mean "file"?)',
      "inv.yaml:6:11: sources[1].type: Invalid discriminator value. Expected 'static' | 'docker' | 'consul' | 'kubernetes'",
      'inv.yaml:8:10: sources[2].all: Invalid input: expected boolean, received string',
      'inv.yaml:10:11: sources[4].type: the name consul is taken by sources[3]; give each source its own name',
      'inv.yaml:12:11: groups[0].name: uses $2 but nameRegex has 1 capture group',
      'inv.yaml:15:16: groups[1].nameRegex: not a valid regex: Invalid regular expression: /([/u: Unterminated character class',
      'inv.yaml:17:13: groups[2].source: no source is named nope (static, dockr, docker, consul)',
      'inv.yaml:18:5: groups[3].name: missing required field (expected string)',
      'inv.yaml:19:5: groups[3].colour: unknown field "colour"',
    ]);
  });

  test('YAML errors and duplicate keys come with their place too', async () => {
    assert.deepEqual(await problemsOf('sources: []\nsources: []\n'), [
      'inv.yaml:2:1: duplicate key "sources"',
    ]);
    const [syntax] = await problemsOf('groups:\n  - name: [unclosed\n');
    assert.match(syntax!, /^inv\.yaml:\d+:\d+: /);
    assert.deepEqual(await problemsOf('- a\n- b\n'), [
      'inv.yaml:1:1: Invalid input: expected object, received array',
    ]);
    assert.deepEqual(await problemsOf('sources: []\n---\ngroups: []\n'), [
      'inv.yaml: one YAML document expected, found 2',
    ]);
  });

  test('a file that cannot be read is a configuration error naming it', async () => {
    const missing = join(dir, 'missing.yaml');
    await assert.rejects(loadInventoryConfig(missing), (err: AnsibleError) => {
      assert.equal(err.code, AnsibleErrorCode.config);
      assert.match(err.message, /cannot read inventory configuration .*missing\.yaml: ENOENT/);
      return true;
    });
    const good = join(dir, 'good.yaml');
    writeFileSync(good, 'sources:\n  - type: static\n    file: hosts.yaml\n');
    const config = await loadInventoryConfig(good);
    assert.equal(config.file, good);
    assert.equal(config.sources[0]?.type === 'static' && config.sources[0].file, join(dir, 'hosts.yaml'));
  });

  test('durations', () => {
    assert.equal(parseDurationMs('10s'), 10_000);
    assert.equal(parseDurationMs('1m30s'), 90_000);
    assert.equal(parseDurationMs('250ms'), 250);
    assert.equal(parseDurationMs('1.5s'), 1_500);
    assert.equal(parseDurationMs(42), 42);
    for (const bad of ['', '10', '10 s', 's', '1x', '5sm'])
      assert.equal(parseDurationMs(bad), undefined, bad);
  });
});
