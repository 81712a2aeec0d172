// Encrypted values files (a small sops): AES-256-GCM through node:crypto, either each value (keys stay
// readable and diffable) or the whole file, with a key from the environment or a file. Plaintext exists
// only in memory: decryption returns a string, and the callers hand it to helm through a pipe.
import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  hkdfSync,
  randomBytes,
  timingSafeEqual,
} from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isMap, isScalar, isSeq, parse, parseDocument, type Scalar } from 'yaml';
import { HelmError, HelmErrorCode } from './errors.ts';

/** The top-level key holding an encrypted file's metadata. */
export const SECRETS_METADATA_KEY = 'capstan_secrets';
/** Variable holding the key (base64 or hex of 32 bytes). */
export const SECRETS_KEY_ENV = 'CAPSTAN_HELM_SECRETS_KEY';
/** Variable naming a file holding the key. */
export const SECRETS_KEY_FILE_ENV = 'CAPSTAN_HELM_SECRETS_KEY_FILE';

const VERSION = 1;
const ENC = /^ENC\[AES256_GCM,data:([A-Za-z0-9+/=]*),iv:([A-Za-z0-9+/=]+),tag:([A-Za-z0-9+/=]+)\]$/;

/** How a file is encrypted: each value, or the whole text. */
export type SecretsMode = 'values' | 'file';

/** A secrets key: 32 bytes, from which an encryption key, a MAC key and a public id are derived. */
export interface SecretsKey {
  /** 16 hex digits naming the key without revealing it; stored in each file it encrypts. */
  readonly id: string;
  readonly encryptionKey: Buffer;
  readonly macKey: Buffer;
}

function derive(material: Buffer, info: string): Buffer {
  return Buffer.from(hkdfSync('sha256', material, Buffer.alloc(0), `capstan-helm-secrets/v1/${info}`, 32));
}

/**
 * A key from its text form: 32 bytes as base64 (44 characters) or hex (64 digits). Fails with
 * `CAP_ERR_HELM_SECRETS_NO_KEY` otherwise (a passphrase is not a key).
 */
export function parseSecretsKey(text: string): SecretsKey {
  const t = text.trim();
  let material: Buffer | undefined;
  if (/^[0-9a-fA-F]{64}$/.test(t)) material = Buffer.from(t, 'hex');
  else if (/^[A-Za-z0-9+/]{43}=?$/.test(t)) material = Buffer.from(t, 'base64');
  if (material?.length !== 32)
    throw new HelmError(
      HelmErrorCode.secretsNoKey,
      'a secrets key is 32 bytes as base64 or hex (make one with `capstan helm secrets keygen`)',
    );
  return {
    id: derive(material, 'id').subarray(0, 8).toString('hex'),
    encryptionKey: derive(material, 'enc'),
    macKey: derive(material, 'mac'),
  };
}

/** A new random key, base64. */
export function generateSecretsKey(): string {
  return randomBytes(32).toString('base64');
}

/**
 * The key to use: `keyFile` if given, else `CAPSTAN_HELM_SECRETS_KEY`, else the file named by
 * `CAPSTAN_HELM_SECRETS_KEY_FILE`. Fails with `CAP_ERR_HELM_SECRETS_NO_KEY` when none is set or it is not a key.
 */
export function loadSecretsKey(options: { env?: NodeJS.ProcessEnv; keyFile?: string } = {}): SecretsKey {
  const env = options.env ?? process.env;
  const file = options.keyFile ?? (env[SECRETS_KEY_ENV] ? undefined : env[SECRETS_KEY_FILE_ENV] || undefined);
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new HelmError(
        HelmErrorCode.secretsNoKey,
        `cannot read the secrets key file ${file}: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
    return parseSecretsKey(text);
  }
  const value = env[SECRETS_KEY_ENV];
  if (!value)
    throw new HelmError(
      HelmErrorCode.secretsNoKey,
      `no secrets key: set ${SECRETS_KEY_ENV} or ${SECRETS_KEY_FILE_ENV}, or pass --key-file`,
    );
  return parseSecretsKey(value);
}

function seal(key: SecretsKey, plaintext: string, aad: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key.encryptionKey, iv);
  cipher.setAAD(Buffer.from(aad, 'utf8'));
  const data = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return `ENC[AES256_GCM,data:${data.toString('base64')},iv:${iv.toString('base64')},tag:${cipher.getAuthTag().toString('base64')}]`;
}

function open(key: SecretsKey, sealed: string, aad: string, where: string): string {
  const m = ENC.exec(sealed);
  if (!m) throw new HelmError(HelmErrorCode.secretsCorrupt, `${where}: not an ENC[AES256_GCM,...] value`);
  try {
    const decipher = createDecipheriv('aes-256-gcm', key.encryptionKey, Buffer.from(m[2]!, 'base64'));
    decipher.setAAD(Buffer.from(aad, 'utf8'));
    decipher.setAuthTag(Buffer.from(m[3]!, 'base64'));
    return Buffer.concat([decipher.update(Buffer.from(m[1]!, 'base64')), decipher.final()]).toString('utf8');
  } catch (err) {
    throw new HelmError(
      HelmErrorCode.secretsCorrupt,
      `${where}: does not authenticate (tampered, or moved from another key)`,
      {
        cause: err,
      },
    );
  }
}

/** Metadata of an encrypted file. */
interface SecretsMetadata {
  version: number;
  mode: SecretsMode;
  key_id: string;
  mac?: string;
  data?: string;
}

/** The metadata block when `text` is an encrypted file; undefined when it is plain YAML (or not YAML). */
export function secretsMetadata(text: string): SecretsMetadata | undefined {
  let value: unknown;
  try {
    value = parse(text);
  } catch {
    return undefined;
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) return undefined;
  const meta = (value as Record<string, unknown>)[SECRETS_METADATA_KEY];
  if (!meta || typeof meta !== 'object') return undefined;
  return meta as SecretsMetadata;
}

/** Whether `text` is a file encrypted by {@link encryptSecrets}. */
export function isEncryptedSecrets(text: string): boolean {
  return secretsMetadata(text) !== undefined;
}

type Path = ReadonlyArray<string | number>;
const pathText = (path: Path) => JSON.stringify(path);

/** Each scalar value (not keys) of a YAML tree with its path, in document order. */
function* leaves(node: unknown, path: Path): Generator<{ path: Path; node: Scalar }> {
  if (isMap(node)) {
    for (const pair of node.items) {
      const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
      if (path.length === 0 && key === SECRETS_METADATA_KEY) continue;
      yield* leaves(pair.value, [...path, key]);
    }
  } else if (isSeq(node)) {
    for (const [i, item] of node.items.entries()) yield* leaves(item, [...path, i]);
  } else if (isScalar(node)) {
    yield { path, node };
  }
}

/** The MAC over every value of a plain tree (paths and values), so a value added, dropped or moved fails. */
function treeMac(key: SecretsKey, tree: unknown): string {
  const hmac = createHmac('sha256', key.macKey);
  const walk = (value: unknown, path: Path): void => {
    if (Array.isArray(value)) {
      for (const [i, v] of value.entries()) walk(v, [...path, i]);
    } else if (value && typeof value === 'object') {
      for (const [k, v] of Object.entries(value)) {
        if (path.length === 0 && k === SECRETS_METADATA_KEY) continue;
        walk(v, [...path, k]);
      }
    } else hmac.update(`${pathText(path)}=${JSON.stringify(value ?? null)}\n`);
  };
  walk(tree, []);
  return hmac.digest('base64');
}

function parseYaml(text: string, what: string) {
  const doc = parseDocument(text);
  if (doc.errors.length > 0)
    throw new HelmError(HelmErrorCode.badChart, `${what} is not YAML: ${doc.errors[0]!.message}`, {
      cause: doc.errors[0],
    });
  if (doc.contents !== null && !isMap(doc.contents))
    throw new HelmError(HelmErrorCode.badChart, `${what}: a values file is a map at the top`);
  return doc;
}

/** Options of {@link encryptSecrets}. */
export interface EncryptSecretsOptions {
  /** `values` (default): each value on its own, keys and comments readable; `file`: the whole text. */
  mode?: SecretsMode;
  /** Name of the file in messages. */
  source?: string;
  /**
   * The file this one was decrypted from: values whose plaintext did not change keep their ciphertext, so an
   * edit changes only the lines it edits.
   */
  previous?: string;
}

/**
 * Encrypt a values file. Per value: each scalar becomes `ENC[AES256_GCM,data:...,iv:...,tag:...]` (its JSON
 * form, so types survive) bound to its path, comments and key order are kept, and a `capstan_secrets`
 * block records the key id and a MAC over every value. Whole file: the text becomes one ENC value. Fails with
 * `CAP_ERR_HELM_SECRETS_ALREADY_ENCRYPTED` on an encrypted file.
 */
export function encryptSecrets(
  plaintext: string,
  key: SecretsKey,
  options: EncryptSecretsOptions = {},
): string {
  const source = options.source ?? 'values';
  if (isEncryptedSecrets(plaintext))
    throw new HelmError(HelmErrorCode.secretsAlreadyEncrypted, `${source} is already encrypted`);
  const doc = parseYaml(plaintext, source);
  const mode = options.mode ?? 'values';
  if (mode === 'file') {
    const meta = { version: VERSION, mode, key_id: key.id, data: seal(key, plaintext, `file:${key.id}`) };
    return `${SECRETS_METADATA_KEY}:\n${Object.entries(meta)
      .map(([k, v]) => `  ${k}: ${v}`)
      .join('\n')}\n`;
  }
  const reuse = new Map<string, { plain: string; sealed: string }>();
  if (options.previous !== undefined && secretsMetadata(options.previous)?.key_id === key.id) {
    for (const { path, node } of leaves(parseDocument(options.previous).contents, [])) {
      if (typeof node.value !== 'string' || !ENC.test(node.value)) continue;
      try {
        reuse.set(pathText(path), {
          plain: open(key, node.value, pathText(path), source),
          sealed: node.value,
        });
      } catch {
        // Not reusable: it is sealed again below.
      }
    }
  }
  const mac = treeMac(key, doc.toJS());
  for (const { path, node } of leaves(doc.contents, [])) {
    if (node.value === null) continue;
    const plain = JSON.stringify(node.value);
    const at = pathText(path);
    const old = reuse.get(at);
    node.value = old && old.plain === plain ? old.sealed : seal(key, plain, at);
    node.type = 'PLAIN';
  }
  if (!isMap(doc.contents)) doc.contents = doc.createNode({}) as never;
  doc.set(SECRETS_METADATA_KEY, doc.createNode({ version: VERSION, mode, key_id: key.id, mac }));
  return doc.toString();
}

/**
 * Decrypt a file made by {@link encryptSecrets}: the plain YAML, comments kept, the `capstan_secrets` block
 * gone. Fails with `CAP_ERR_HELM_SECRETS_WRONG_KEY` when another key encrypted it and
 * `CAP_ERR_HELM_SECRETS_CORRUPT` when anything does not authenticate.
 */
export function decryptSecrets(text: string, key: SecretsKey, source = 'values'): string {
  const meta = secretsMetadata(text);
  if (!meta)
    throw new HelmError(
      HelmErrorCode.secretsCorrupt,
      `${source} is not an encrypted values file (no ${SECRETS_METADATA_KEY})`,
    );
  if (meta.version !== VERSION)
    throw new HelmError(
      HelmErrorCode.secretsCorrupt,
      `${source}: unknown ${SECRETS_METADATA_KEY}.version ${meta.version}`,
    );
  if (meta.key_id !== key.id)
    throw new HelmError(
      HelmErrorCode.secretsWrongKey,
      `${source} was encrypted with key ${meta.key_id}, not with this key (${key.id})`,
    );
  if (meta.mode === 'file') {
    if (typeof meta.data !== 'string')
      throw new HelmError(HelmErrorCode.secretsCorrupt, `${source}: no data`);
    return open(key, meta.data, `file:${key.id}`, source);
  }
  if (meta.mode !== 'values')
    throw new HelmError(HelmErrorCode.secretsCorrupt, `${source}: unknown mode ${meta.mode}`);
  const doc = parseYaml(text, source);
  for (const { path, node } of leaves(doc.contents, [])) {
    if (typeof node.value !== 'string' || !node.value.startsWith('ENC[')) continue;
    const plain = open(key, node.value, pathText(path), `${source} at ${path.join('.')}`);
    node.value = JSON.parse(plain) as unknown;
    // The yaml library picks the style the value needs (a multi-line string is not plain).
    node.type = undefined;
  }
  doc.delete(SECRETS_METADATA_KEY);
  const tree = doc.toJS();
  const expected = Buffer.from(treeMac(key, tree), 'base64');
  const stored = Buffer.from(String(meta.mac ?? ''), 'base64');
  if (stored.length !== expected.length || !timingSafeEqual(stored, expected))
    throw new HelmError(
      HelmErrorCode.secretsCorrupt,
      `${source}: the MAC does not match (a value was added, removed or changed)`,
    );
  return doc.toString();
}
