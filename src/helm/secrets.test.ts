import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { parse } from 'yaml';
import { HelmErrorCode } from './errors.ts';
import {
  decryptSecrets,
  encryptSecrets,
  generateSecretsKey,
  isEncryptedSecrets,
  loadSecretsKey,
  parseSecretsKey,
} from './secrets.ts';
import { decryptedValuesArgs, editSecrets, valuesArgs } from './secrets-run.ts';

const plain = `# database settings
db:
  user: app # the login
  password: "s3cr3t: with colon"
  port: 5432
  tls: true
  ratio: 0.5
  nothing: null
hosts:
  - a.example
  - b.example
motd: |
  line one
  line two
`;

describe('helm secrets: encrypted values files', () => {
  const key = parseSecretsKey(generateSecretsKey());
  const work = mkdtempSync(join(tmpdir(), 'capstan-secrets-test-'));
  after(() => rmSync(work, { recursive: true, force: true }));

  test('per value: keys and comments stay readable, every value is sealed, decryption gives the same tree back', () => {
    const enc = encryptSecrets(plain, key);
    assert.ok(isEncryptedSecrets(enc));
    assert.match(enc, /^# database settings$/m);
    assert.match(enc, /user: ENC\[AES256_GCM,data:[^\]]+\] # the login/);
    for (const secret of ['app', 's3cr3t', '5432', 'a.example', 'line one'])
      assert.ok(!enc.includes(secret), secret);
    assert.match(enc, /nothing: null/);
    const meta = (parse(enc) as { capstan_secrets: Record<string, unknown> }).capstan_secrets;
    assert.equal(meta['key_id'], key.id);
    assert.equal(meta['mode'], 'values');
    const dec = decryptSecrets(enc, key);
    assert.deepEqual(parse(dec), parse(plain));
    assert.match(dec, /user: app # the login/);
    assert.ok(!dec.includes('capstan_secrets'));
    // Types survive: numbers, booleans, multi-line strings.
    const tree = parse(dec) as { db: { port: number; tls: boolean }; motd: string };
    assert.equal(tree.db.port, 5432);
    assert.equal(tree.db.tls, true);
    assert.equal(tree.motd, 'line one\nline two\n');
  });

  test('whole file: one sealed blob, nothing readable', () => {
    const enc = encryptSecrets(plain, key, { mode: 'file' });
    assert.ok(!enc.includes('db') && !enc.includes('password'));
    assert.equal(decryptSecrets(enc, key), plain);
  });

  test('a wrong key, a tampered value, a moved value, an added value and a second encryption are refused', () => {
    const enc = encryptSecrets(plain, key);
    const other = parseSecretsKey(generateSecretsKey());
    assert.throws(() => decryptSecrets(enc, other), { code: HelmErrorCode.secretsWrongKey });
    assert.throws(() => decryptSecrets(encryptSecrets(plain, key, { mode: 'file' }), other), {
      code: HelmErrorCode.secretsWrongKey,
    });
    // Flip one character of one ciphertext.
    const tampered = enc.replace(
      /(user: ENC\[AES256_GCM,data:)(.)/,
      (_m, a: string, c: string) => `${a}${c === 'A' ? 'B' : 'A'}`,
    );
    assert.throws(() => decryptSecrets(tampered, key), { code: HelmErrorCode.secretsCorrupt });
    // Swap user and password: each value is bound to its path.
    const user = /user: (ENC\[[^\]]+\])/.exec(enc)![1]!;
    const password = /password: (ENC\[[^\]]+\])/.exec(enc)![1]!;
    const swapped = enc.replace(user, 'X').replace(password, user).replace('X', password);
    assert.throws(() => decryptSecrets(swapped, key), { code: HelmErrorCode.secretsCorrupt });
    // A plaintext value slipped in: the MAC over the whole tree catches it.
    const added = enc.replace('db:\n', 'db:\n  admin: true\n');
    assert.throws(() => decryptSecrets(added, key), { code: HelmErrorCode.secretsCorrupt });
    assert.throws(() => encryptSecrets(enc, key), { code: HelmErrorCode.secretsAlreadyEncrypted });
    assert.throws(() => decryptSecrets(plain, key), { code: HelmErrorCode.secretsCorrupt });
  });

  test('keys: from the variable, from a file, and refused when missing or not 32 bytes', () => {
    const text = generateSecretsKey();
    const file = join(work, 'key');
    writeFileSync(file, `${text}\n`);
    assert.equal(loadSecretsKey({ env: { CAPSTAN_HELM_SECRETS_KEY: text } }).id, parseSecretsKey(text).id);
    assert.equal(
      loadSecretsKey({ env: { CAPSTAN_HELM_SECRETS_KEY_FILE: file } }).id,
      parseSecretsKey(text).id,
    );
    assert.equal(loadSecretsKey({ env: {}, keyFile: file }).id, parseSecretsKey(text).id);
    const hex = Buffer.from(text, 'base64').toString('hex');
    assert.equal(parseSecretsKey(hex).id, parseSecretsKey(text).id);
    assert.throws(() => loadSecretsKey({ env: {} }), { code: HelmErrorCode.secretsNoKey });
    assert.throws(
      () => loadSecretsKey({ env: { CAPSTAN_HELM_SECRETS_KEY: 'correct horse battery staple' } }),
      {
        code: HelmErrorCode.secretsNoKey,
      },
    );
    assert.throws(() => loadSecretsKey({ env: { CAPSTAN_HELM_SECRETS_KEY_FILE: join(work, 'missing') } }), {
      code: HelmErrorCode.secretsNoKey,
    });
  });

  test('values arguments: every spelling helm accepts, encrypted ones become the pipes in order', () => {
    assert.deepEqual(
      valuesArgs([
        'install',
        'x',
        'c',
        '-f',
        'a.yaml',
        '-fb.yaml',
        '-f=c.yaml',
        '--values',
        'd.yaml,e.yaml',
        '--values=f.yaml',
      ]).map((v) => v.files),
      [['a.yaml'], ['b.yaml'], ['c.yaml'], ['d.yaml', 'e.yaml'], ['f.yaml']],
    );
    const encA = join(work, 'a.enc.yaml');
    const encB = join(work, 'b.enc.yaml');
    const clear = join(work, 'clear.yaml');
    writeFileSync(encA, encryptSecrets('a: 1\n', key));
    writeFileSync(encB, encryptSecrets('b: 2\n', key, { mode: 'file' }));
    writeFileSync(clear, 'c: 3\n');
    const { argv, plaintexts } = decryptedValuesArgs(
      ['install', 'r', 'chart', '-f', encA, `--values=${clear},${encB}`, '-f', '-', '--set', 'x=1'],
      key,
      (i) => `/pipe/${i}`,
    );
    assert.deepEqual(argv, [
      'install',
      'r',
      'chart',
      '-f',
      '/pipe/0',
      `--values=${clear},/pipe/1`,
      '-f',
      '-',
      '--set',
      'x=1',
    ]);
    assert.deepEqual(plaintexts, ['a: 1\n', 'b: 2\n']);
    // No encrypted file: the key is never asked for.
    assert.deepEqual(
      decryptedValuesArgs(
        ['-f', clear],
        () => {
          throw new Error('asked');
        },
        (i) => `/pipe/${i}`,
      ).plaintexts,
      [],
    );
  });

  test('edit: the editor sees the plaintext in memory, unchanged values keep their ciphertext, nothing is left behind', async () => {
    const file = join(work, 'edit.enc.yaml');
    const enc = encryptSecrets(plain, key);
    writeFileSync(file, enc);
    const shm = mkdtempSync(join('/dev/shm', 'capstan-edit-test-'));
    const seen = join(work, 'editor-saw');
    const editor = join(work, 'editor.sh');
    // The editor records where its file is, then changes one value.
    writeFileSync(editor, `#!/bin/sh\necho "$1" > ${seen}\nsed -i 's/port: 5432/port: 6543/' "$1"\n`);
    chmodSync(editor, 0o755);
    try {
      const changed = await editSecrets(file, {
        key,
        env: { ...process.env, EDITOR: editor, CAPSTAN_HELM_SECRETS_EDIT_DIR: shm },
      });
      assert.equal(changed, true);
      assert.ok(readFileSync(seen, 'utf8').startsWith(shm), 'the editor worked in the memory folder');
      assert.deepEqual(readdirSync(shm), [], 'the plaintext folder is gone');
      const after = readFileSync(file, 'utf8');
      assert.equal((parse(decryptSecrets(after, key)) as { db: { port: number } }).db.port, 6543);
      // Only the edited line (and the MAC) changed.
      const before = enc.split('\n');
      const changedLines = after.split('\n').filter((l, i) => l !== before[i]);
      assert.deepEqual(
        changedLines.map((l) => l.trim().split(':')[0]),
        ['port', 'mac'],
      );
      // An editor that fails leaves the file as it was.
      writeFileSync(editor, '#!/bin/sh\nexit 3\n');
      await assert.rejects(
        editSecrets(file, {
          key,
          env: { ...process.env, EDITOR: editor, CAPSTAN_HELM_SECRETS_EDIT_DIR: shm },
        }),
        { code: HelmErrorCode.secretsEdit },
      );
      assert.equal(readFileSync(file, 'utf8'), after);
      assert.deepEqual(readdirSync(shm), []);
    } finally {
      rmSync(shm, { recursive: true, force: true });
    }
  });
});
