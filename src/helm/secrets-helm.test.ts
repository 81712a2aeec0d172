// helm capstan secrets install/upgrade into the shared control plane with the real helm: the decrypted values
// reach the release, and the plaintext is nowhere on disk afterwards.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createHelmHome, type HelmHome, useSharedCluster } from 'capstan/testing';
import { HelmErrorCode } from './errors.ts';
import { encryptSecrets, generateSecretsKey, parseSecretsKey } from './secrets.ts';

const shippedPlugin = fileURLToPath(new URL('../../helm-plugin/capstan', import.meta.url));

/** Files under `dir` (symlinks not followed) changed at or after `since`, up to `maxBytes` each. */
function* recentFiles(dir: string, since: number, maxBytes = 256 * 1024 * 1024): Generator<string> {
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return; // Gone or unreadable (another test's folder being removed).
  }
  for (const name of entries) {
    const path = join(dir, name);
    let st: ReturnType<typeof lstatSync>;
    try {
      st = lstatSync(path);
    } catch {
      continue;
    }
    if (st.isDirectory()) yield* recentFiles(path, since, maxBytes);
    else if (st.isFile() && st.mtimeMs >= since && st.size <= maxBytes) yield path;
  }
}

/** Every file under `dirs` written since `since` that holds `needle`. */
function filesHolding(dirs: string[], since: number, needle: string): string[] {
  const found = new Set<string>();
  for (const dir of dirs) {
    for (const file of recentFiles(dir, since)) {
      try {
        if (readFileSync(file).includes(needle)) found.add(file);
      } catch {
        // Removed while scanning.
      }
    }
  }
  return [...found];
}

describe('helm capstan secrets (real helm, shared control plane)', () => {
  let home: HelmHome;
  let work: string;
  const keyText = generateSecretsKey();
  const key = parseSecretsKey(keyText);
  // The secret value: random, so finding it anywhere means it leaked there.
  const marker = `pw-${randomBytes(16).toString('hex')}`;

  before(async () => {
    home = createHelmHome();
    work = mkdtempSync(join(tmpdir(), 'capstan-helm-secrets-test-'));
    await home.run(['plugin', 'install', shippedPlugin]);
  });
  after(async () => {
    await home?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  function chart(): string {
    const dir = join(work, 'app');
    mkdirSync(join(dir, 'templates'), { recursive: true });
    writeFileSync(join(dir, 'Chart.yaml'), 'apiVersion: v2\nname: app\nversion: 0.1.0\n');
    writeFileSync(join(dir, 'values.yaml'), 'db:\n  user: nobody\n  password: ""\nreplicas: 1\n');
    // The ConfigMap holds a hash of the password, not the password: the cluster's etcd is on this disk too.
    writeFileSync(
      join(dir, 'templates', 'cm.yaml'),
      'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-db\ndata:\n' +
        '  user: {{ .Values.db.user | quote }}\n  passwordHash: {{ .Values.db.password | sha256sum | quote }}\n' +
        '  replicas: {{ .Values.replicas | quote }}\n',
    );
    return dir;
  }

  test('install and upgrade with encrypted values: the release gets them, no file holds the plaintext', async (t) => {
    const cluster = await useSharedCluster(t);
    const since = Date.now() - 1000;
    // Only ciphertext is ever written: the plaintext exists in this process's memory.
    const enc = join(work, 'secrets.enc.yaml');
    writeFileSync(enc, encryptSecrets(`db:\n  user: app\n  password: ${marker}\n`, key));
    const whole = join(work, 'more.enc.yaml');
    writeFileSync(whole, encryptSecrets('replicas: 3\n', key, { mode: 'file' }));
    const plain = join(work, 'plain.yaml');
    writeFileSync(plain, 'db:\n  user: overridden-later\n');
    const env = {
      KUBECONFIG: cluster.kubeconfigPath,
      CAPSTAN_NODE: process.execPath,
      CAPSTAN_HELM_SECRETS_KEY: keyText,
    };

    await home.run(
      [
        'capstan',
        'secrets',
        'install',
        'web',
        chart(),
        '-n',
        cluster.namespace,
        '-f',
        plain,
        `--values=${enc},${whole}`,
      ],
      { env },
    );
    const data = () =>
      (
        JSON.parse(cluster.kubectl(['get', 'configmap', 'web-db', '-o', 'json'])) as {
          data: Record<string, string>;
        }
      ).data;
    const sha = createHash('sha256').update(marker).digest('hex');
    assert.deepEqual(data(), { user: 'app', passwordHash: sha, replicas: '3' });
    const values = await home.run(['get', 'values', 'web', '-n', cluster.namespace, '-o', 'json'], { env });
    assert.equal((JSON.parse(values.stdout) as { db: { password: string } }).db.password, marker);

    await home.run(
      [
        'capstan',
        'secrets',
        'upgrade',
        'web',
        chart(),
        '-n',
        cluster.namespace,
        '-f',
        enc,
        '--set',
        'replicas=5',
      ],
      { env },
    );
    assert.deepEqual(data(), { user: 'app', passwordHash: sha, replicas: '5' });

    const dirs = [tmpdir(), home.dir, shippedPlugin, work, '/dev/shm'];
    const leaks = filesHolding(dirs, since, marker);
    assert.deepEqual(leaks, [], `plaintext found in ${leaks.join(', ')}`);
    // The scan finds what is there: a planted copy of another random value is found.
    const canary = `canary-${randomBytes(16).toString('hex')}`;
    writeFileSync(join(work, 'canary'), `x: ${canary}\n`);
    assert.deepEqual(filesHolding(dirs, since, canary), [join(work, 'canary')]);
  });

  test('a missing or wrong key fails before helm runs; plain values need no key', async (t) => {
    const cluster = await useSharedCluster(t);
    const enc = join(work, 'other.enc.yaml');
    writeFileSync(enc, encryptSecrets('db:\n  password: x\n', key));
    const base = { KUBECONFIG: cluster.kubeconfigPath, CAPSTAN_NODE: process.execPath };
    const args = ['capstan', 'secrets', 'install', 'nokey', chart(), '-n', cluster.namespace, '-f', enc];

    const missing = await home.run(args, { env: base, allowFailure: true });
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, new RegExp(HelmErrorCode.secretsNoKey));
    const wrong = await home.run(args, {
      env: { ...base, CAPSTAN_HELM_SECRETS_KEY: generateSecretsKey() },
      allowFailure: true,
    });
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, new RegExp(HelmErrorCode.secretsWrongKey));
    // helm fails before it opens the values pipe: the writer is released, nothing hangs.
    const badFlag = await home.run([...args, '--no-such-flag'], {
      env: { ...base, CAPSTAN_HELM_SECRETS_KEY: keyText },
      allowFailure: true,
      timeoutMs: 60_000,
    });
    assert.equal(badFlag.code, 1);
    assert.match(badFlag.stderr, /unknown flag: --no-such-flag/);
    const list = await home.run(['list', '-n', cluster.namespace, '-q'], { env: base });
    assert.equal(list.stdout.trim(), '', 'no release was made');

    // helm's own failure comes back with helm's status and message.
    const plain = join(work, 'only-plain.yaml');
    writeFileSync(plain, 'db:\n  user: u\n');
    await home.run(
      ['capstan', 'secrets', 'install', 'plain', chart(), '-n', cluster.namespace, '-f', plain],
      { env: base },
    );
    const twice = await home.run(
      ['capstan', 'secrets', 'install', 'plain', chart(), '-n', cluster.namespace, '-f', plain],
      {
        env: base,
        allowFailure: true,
      },
    );
    assert.equal(twice.code, 1);
    assert.match(twice.stderr, /cannot re-use a name that is still in use/);
  });

  test('encrypt, decrypt and edit through the plugin', async () => {
    const file = join(work, 'cli.yaml');
    writeFileSync(file, 'token: abc # api token\n');
    const env = { CAPSTAN_NODE: process.execPath, CAPSTAN_HELM_SECRETS_KEY: keyText };
    await home.run(['capstan', 'secrets', 'encrypt', '-i', file], { env });
    const enc = readFileSync(file, 'utf8');
    assert.match(enc, /token: ENC\[AES256_GCM,.*# api token/);
    const again = await home.run(['capstan', 'secrets', 'encrypt', file], { env, allowFailure: true });
    assert.match(again.stderr, new RegExp(HelmErrorCode.secretsAlreadyEncrypted));
    const dec = await home.run(['capstan', 'secrets', 'decrypt', file], { env });
    assert.equal(dec.stdout, 'token: abc # api token\n');
    const editor = join(work, 'ed.sh');
    writeFileSync(editor, '#!/bin/sh\nsed -i s/abc/xyz/ "$1"\n', { mode: 0o755 });
    const edited = await home.run(['capstan', 'secrets', 'edit', file], { env: { ...env, EDITOR: editor } });
    assert.match(edited.stderr, /re-encrypted/);
    assert.equal(
      (await home.run(['capstan', 'secrets', 'decrypt', file], { env })).stdout,
      'token: xyz # api token\n',
    );
  });
});
