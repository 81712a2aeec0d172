import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { z } from 'zod';
import { AnsibleError, AnsibleErrorCode } from './errors.ts';
import { isHostsFile, parseHostsFile, staticSource } from './static-source.ts';

async function problemsOf(text: string, file = 'hosts.yaml'): Promise<readonly string[]> {
  try {
    await parseHostsFile(text, file);
  } catch (err) {
    assert.ok(err instanceof AnsibleError, String(err));
    assert.equal(err.code, AnsibleErrorCode.config);
    return err.problems;
  }
  assert.fail('expected an error');
}

describe('static hosts file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'capstan-ansible-static-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('YAML and JSON give the same hosts; a host may be empty', async () => {
    const yaml = [
      'hosts:',
      '  db-1:',
      '    vars: { ansible_host: 10.0.0.5, port: 5432 }',
      '    labels: { env: prod }',
      '    tags: [primary]',
      '    groups: [backup]',
      '  web-1:',
    ].join('\n');
    const fromYaml = await parseHostsFile(yaml, 'hosts.yaml');
    assert.deepEqual(fromYaml, [
      {
        name: 'db-1',
        kind: 'host',
        vars: { ansible_host: '10.0.0.5', port: 5432 },
        labels: { env: 'prod' },
        tags: ['primary'],
        groups: ['backup'],
      },
      { name: 'web-1', kind: 'host', vars: {}, labels: {}, tags: [], groups: [] },
    ]);
    const json = JSON.stringify({
      hosts: {
        'db-1': {
          vars: { ansible_host: '10.0.0.5', port: 5432 },
          labels: { env: 'prod' },
          tags: ['primary'],
          groups: ['backup'],
        },
        'web-1': null,
      },
    });
    assert.deepEqual(await parseHostsFile(json, 'hosts.json'), fromYaml);
    assert.deepEqual(await parseHostsFile('', 'hosts.yaml'), []);
  });

  test('problems with their place: a host listed twice, unknown keys, wrong types; in JSON too', async () => {
    assert.deepEqual(await problemsOf('hosts:\n  a: {}\n  b: {}\n  a: {}\n'), [
      'hosts.yaml:4:3: duplicate key "a"',
    ]);
    assert.deepEqual(await problemsOf('hosts:\n  a:\n    labels: { env: 3 }\n    group: [x]\nextra: 1\n'), [
      'hosts.yaml:3:20: hosts.a.labels.env: Invalid input: expected string, received number',
      'hosts.yaml:4:5: hosts.a.group: unknown field "group" (did you mean "groups"?)',
      'hosts.yaml:5:1: extra: unknown field "extra"',
    ]);
    assert.deepEqual(await problemsOf('{"hosts": {"a": {"tags": "x"}}}', 'h.json'), [
      'h.json:1:26: hosts.a.tags: Invalid input: expected array, received string',
    ]);
    const [notJson] = await problemsOf('{"hosts": ', 'h.json');
    assert.match(notJson!, /^h\.json:1:11: /);
    // YAML merge keys are YAML, not a mistake: the strict path takes them.
    const merged = await parseHostsFile(
      'hosts:\n  a: &common\n    labels: { env: prod }\n  b:\n    <<: *common\n    tags: [x]\n',
      'm.yaml',
    );
    assert.deepEqual(
      merged.map((h) => [h.name, h.labels, h.tags]),
      [
        ['a', { env: 'prod' }, []],
        ['b', { env: 'prod' }, ['x']],
      ],
    );
  });

  test('the hand-written check answers as the schema does', () => {
    // The schema static-source.ts checks with zod, repeated here so a change to one without the other fails.
    const host = z
      .strictObject({
        vars: z.record(z.string(), z.unknown()).optional(),
        labels: z.record(z.string(), z.string()).optional(),
        tags: z.array(z.string()).optional(),
        groups: z.array(z.string().min(1)).optional(),
      })
      .nullable();
    const schema = z.strictObject({ hosts: z.record(z.string().min(1), host).optional() });
    const cases: unknown[] = [
      {},
      { hosts: {} },
      { hosts: { a: null } },
      { hosts: { a: {} } },
      { hosts: { a: { vars: { x: [1, { y: null }] }, labels: { k: 'v' }, tags: [], groups: ['g'] } } },
      null,
      [],
      'hosts',
      { hosts: null },
      { hosts: [] },
      { hosts: { '': {} } },
      { hosts: { a: 1 } },
      { hosts: { a: [] } },
      { hosts: { a: { other: 1 } } },
      { hosts: { a: { vars: [] } } },
      { hosts: { a: { vars: null } } },
      { hosts: { a: { labels: { k: 1 } } } },
      { hosts: { a: { labels: [] } } },
      { hosts: { a: { tags: 'x' } } },
      { hosts: { a: { tags: [1] } } },
      { hosts: { a: { groups: [''] } } },
      { hosts: { a: { groups: [null] } } },
      { hosts: {}, more: 1 },
      { hosts: { a: { tags: undefined } } },
    ];
    for (const c of cases) assert.equal(isHostsFile(c), schema.safeParse(c).success, JSON.stringify(c));
  });

  test('staticSource reads its file at each collect', async () => {
    const file = join(dir, 'hosts.yaml');
    writeFileSync(file, 'hosts:\n  a:\n');
    const source = staticSource({ name: 'static', file });
    assert.equal(source.description, `file ${file}`);
    const signal = new AbortController().signal;
    assert.deepEqual(
      (await source.collect({ signal })).map((h) => h.name),
      ['a'],
    );
    writeFileSync(file, 'hosts:\n  a:\n  b:\n');
    assert.deepEqual(
      (await source.collect({ signal })).map((h) => h.name),
      ['a', 'b'],
    );
  });
});
