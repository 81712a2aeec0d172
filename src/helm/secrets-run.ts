// Hand decrypted values to helm without a file: each encrypted `-f` becomes `/dev/fd/N`, the read end of a
// pipe the child inherits, and the plaintext is written into the pipe from memory.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { Writable } from 'node:stream';
import type { HelmEnv } from './env.ts';
import { HelmError, HelmErrorCode } from './errors.ts';
import {
  decryptSecrets,
  encryptSecrets,
  isEncryptedSecrets,
  type SecretsKey,
  secretsMetadata,
} from './secrets.ts';

/** One `-f`/`--values` file of a helm command line and where it sits. */
interface ValuesArg {
  /** Index in argv of the argument holding the value. */
  index: number;
  /** Text before the file list in that argument (`--values=`, `-f`, or '' when the list is its own argument). */
  prefix: string;
  files: string[];
}

/** The values files of a helm command line (`-f a`, `-fa`, `-f=a`, `--values a`, `--values=a`, comma lists). */
export function valuesArgs(argv: readonly string[]): ValuesArg[] {
  const found: ValuesArg[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') break;
    let prefix: string | undefined;
    let index = i;
    if (a === '-f' || a === '--values') {
      index = ++i;
      prefix = '';
    } else if (a.startsWith('--values=')) prefix = '--values=';
    else if (a.startsWith('-f=')) prefix = '-f=';
    else if (a.startsWith('-f') && !a.startsWith('--')) prefix = '-f';
    if (prefix === undefined || index >= argv.length) continue;
    const list = argv[index]!.slice(prefix.length);
    found.push({ index, prefix, files: list.split(',') });
  }
  return found;
}

/** What {@link decryptedValuesArgs} hands the child: the new argv and the plaintexts, by pipe order. */
export interface DecryptedArgs {
  readonly argv: string[];
  /** Plaintexts in pipe order: the first goes to fd 3, the next to fd 4... */
  readonly plaintexts: string[];
}

/**
 * Replace each encrypted values file in `argv` with `/dev/fd/N` (N from 3 up) and decrypt it into memory.
 * Plain files, `-` (stdin) and URLs are left as they are. `key` may be a function, called only when an
 * encrypted file is found. Fails like {@link decryptSecrets}.
 */
export function decryptedValuesArgs(
  argv: readonly string[],
  key: SecretsKey | (() => SecretsKey),
): DecryptedArgs {
  const out = [...argv];
  let loaded: SecretsKey | undefined;
  // A key is needed only once an encrypted file shows up: plain values need none.
  const theKey = () => {
    loaded ??= typeof key === 'function' ? key() : key;
    return loaded;
  };
  const plaintexts: string[] = [];
  for (const arg of valuesArgs(argv)) {
    const files = arg.files.map((file) => {
      if (file.trim() === '-' || file.includes('://') || !existsSync(file) || !statSync(file).isFile())
        return file;
      const text = readFileSync(file, 'utf8');
      if (!isEncryptedSecrets(text)) return file;
      plaintexts.push(decryptSecrets(text, theKey(), file));
      return `/dev/fd/${2 + plaintexts.length}`;
    });
    out[arg.index] = `${arg.prefix}${files.join(',')}`;
  }
  return { argv: out, plaintexts };
}

function writeAll(stream: Writable, text: string): void {
  // The child may exit before reading (a bad flag): EPIPE then is not our failure, helm's status says what happened.
  stream.on('error', () => {});
  stream.end(text);
}

/** Options of {@link spawnHelm}. */
export interface SpawnHelmOptions {
  env: HelmEnv;
  /** Texts for fds 3, 4...: `/dev/fd/3` in the arguments reads the first. */
  pipes?: readonly string[];
  /** Collect stdout (and stderr) instead of passing them to the caller's. */
  capture?: boolean;
  signal?: AbortSignal;
}

/** How a helm run ended; stdout and stderr when captured. */
export interface HelmRun {
  readonly status: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Run `$HELM_BIN <argv>` with `pipes` on fds 3 and up. stdin is the caller's; stdout and stderr too unless
 * `capture`. Fails with `CAP_ERR_HELM_HELM_FAILED` only when helm cannot start; a non-zero exit is returned.
 */
export async function spawnHelm(argv: readonly string[], options: SpawnHelmOptions): Promise<HelmRun> {
  options.signal?.throwIfAborted();
  const pipes = options.pipes ?? [];
  const output = options.capture ? ('pipe' as const) : ('inherit' as const);
  const child = spawn(options.env.bin, argv, {
    env: options.env.vars,
    stdio: ['inherit', output, output, ...pipes.map(() => 'pipe' as const)],
  });
  pipes.forEach((text, i) => {
    writeAll(child.stdio[3 + i] as Writable, text);
  });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout?.on('data', (b: Buffer) => out.push(b));
  child.stderr?.on('data', (b: Buffer) => err.push(b));
  const onAbort = () => child.kill('SIGTERM');
  options.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const { code, signal, error } = await new Promise<{
      code: number | null;
      signal: NodeJS.Signals | null;
      error?: Error;
    }>((resolve) => {
      child.once('error', (e) => resolve({ code: null, signal: null, error: e }));
      child.once('close', (c, s) => resolve({ code: c, signal: s }));
    });
    if (error)
      throw new HelmError(HelmErrorCode.helmFailed, `cannot run ${options.env.bin}: ${error.message}`, {
        cause: error,
      });
    return {
      status: code ?? (signal ? 128 + 15 : 1),
      stdout: Buffer.concat(out).toString('utf8'),
      stderr: Buffer.concat(err).toString('utf8'),
    };
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
  }
}

/** Options of {@link runHelmWithSecrets}. */
export interface RunHelmWithSecretsOptions {
  env: HelmEnv;
  /** The key, or a function returning it (called only when an encrypted file is found). */
  key: SecretsKey | (() => SecretsKey);
  signal?: AbortSignal;
}

/**
 * Run `helm <argv>` (the `$HELM_BIN` that ran the plugin) with every encrypted values file decrypted into a
 * pipe: `helm capstan secrets install web ./chart -f secrets.enc.yaml` runs `helm install web ./chart -f
 * /dev/fd/3`. stdin, stdout and stderr are the caller's; returns helm's exit status. Linux and macOS (`/dev/fd`).
 */
export async function runHelmWithSecrets(
  argv: readonly string[],
  options: RunHelmWithSecretsOptions,
): Promise<number> {
  const { argv: args, plaintexts } = decryptedValuesArgs(argv, options.key);
  const run = await spawnHelm(args, {
    env: options.env,
    pipes: plaintexts,
    ...(options.signal ? { signal: options.signal } : {}),
  });
  return run.status;
}

/**
 * Where `edit` puts the plaintext for the editor: a folder in memory, never on disk. `CAPSTAN_HELM_SECRETS_EDIT_DIR`
 * if set (the user vouches for it), else `/dev/shm` (tmpfs on Linux). Fails with `CAP_ERR_HELM_SECRETS_EDIT`
 * when there is neither.
 */
export function memoryDir(env: NodeJS.ProcessEnv): string {
  const chosen = env['CAPSTAN_HELM_SECRETS_EDIT_DIR'];
  if (chosen) return chosen;
  if (existsSync('/dev/shm') && statSync('/dev/shm').isDirectory()) return '/dev/shm';
  throw new HelmError(
    HelmErrorCode.secretsEdit,
    'no memory-backed folder for the editor (/dev/shm): set CAPSTAN_HELM_SECRETS_EDIT_DIR to a tmpfs folder',
  );
}

/** Options of {@link editSecrets}. */
export interface EditSecretsOptions {
  key: SecretsKey;
  /** Environment: `VISUAL`, `EDITOR`, `CAPSTAN_HELM_SECRETS_EDIT_DIR`. Default `process.env`. */
  env?: NodeJS.ProcessEnv;
}

/**
 * Edit an encrypted file in place: decrypt it into a private folder in memory ({@link memoryDir}), run
 * `$VISUAL`/`$EDITOR` (default `vi`, through `sh -c` so an editor with arguments works) on it, encrypt the
 * result back in the same mode (unchanged values keep their ciphertext) and remove the plaintext. Returns
 * whether the file changed.
 */
export async function editSecrets(path: string, options: EditSecretsOptions): Promise<boolean> {
  const env = options.env ?? process.env;
  const encrypted = readFileSync(path, 'utf8');
  const plaintext = decryptSecrets(encrypted, options.key, path);
  const mode = secretsMetadata(encrypted)!.mode;
  const dir = mkdtempSync(join(memoryDir(env), 'capstan-secrets-'));
  const file = join(dir, basename(path).replace(/\.enc(\.ya?ml)$/, '$1'));
  try {
    writeFileSync(file, plaintext, { mode: 0o600 });
    const editor = env['VISUAL'] || env['EDITOR'] || 'vi';
    const status = await new Promise<number>((resolve, reject) => {
      const child = spawn('/bin/sh', ['-c', `${editor} "$1"`, 'editor', file], { stdio: 'inherit', env });
      child.once('error', reject);
      child.once('close', (code) => resolve(code ?? 1));
    });
    if (status !== 0)
      throw new HelmError(
        HelmErrorCode.secretsEdit,
        `the editor (${editor}) exited with ${status}; ${path} is unchanged`,
      );
    const edited = readFileSync(file, 'utf8');
    if (edited === plaintext) return false;
    writeFileSync(path, encryptSecrets(edited, options.key, { mode, source: path, previous: encrypted }));
    return true;
  } finally {
    // Overwritten before removal: the pages are reused, and a copy of the plaintext should not outlive the edit.
    try {
      writeFileSync(file, Buffer.alloc(statSync(file).size));
    } catch {
      // Already gone.
    }
    rmSync(dir, { recursive: true, force: true });
  }
}
