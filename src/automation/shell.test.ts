import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AutomationError, AutomationErrorCode, type ShellValue, sh, shellCommand } from './index.ts';

const tricky = [
  '',
  'plain',
  'two words',
  "it's",
  'say "hi"',
  '$(id) `id` $HOME',
  'back\\slash',
  'semi; rm -rf /nonexistent-capstan',
  'line\nbreak',
  '*.ts ?',
  '-n',
];

test('every value reaches the command as given, outside quotes, inside "..." and inside \'...\'', async () => {
  for (const value of tricky) {
    // printf '%s|' prints each argument it got followed by |: one argument in, one out.
    assert.equal(await sh`printf '%s|' ${value}`, `${value}|`, `bare: ${JSON.stringify(value)}`);
    assert.equal(
      await sh`printf '%s|' "<${value}>"`,
      `<${value}>|`,
      `in double quotes: ${JSON.stringify(value)}`,
    );
    assert.equal(
      await sh`printf '%s|' '<${value}>'`,
      `<${value}>|`,
      `in single quotes: ${JSON.stringify(value)}`,
    );
  }
  assert.equal(await sh`printf '%s|' ${['a b', 'c', 7]}`, 'a b|c|7|', 'an array is one word per element');
});

test('the command line is readable: plain words stay unquoted', () => {
  const files = ['a.txt', 'my file.txt'];
  const line = (strings: TemplateStringsArray, ...values: ShellValue[]) => shellCommand(strings, values);
  assert.equal(line`tar -czf out.tgz ${files}`, "tar -czf out.tgz a.txt 'my file.txt'");
  assert.equal(line`echo "it is ${'$5'}"`, 'echo "it is \\$5"');
});

test('a non-zero exit rejects with the command, its status and stderr', async () => {
  await assert.rejects(sh`echo "no such thing" >&2; exit 3`, (err: unknown) => {
    assert.ok(err instanceof AutomationError);
    assert.equal(err.code, AutomationErrorCode.commandFailed);
    assert.match(err.message, /exit 3: exited with 3\nno such thing$/);
    return true;
  });
});
