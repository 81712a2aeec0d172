// Hand decrypted values to helm without a file: each encrypted `-f` becomes a named pipe (a FIFO in a private
// folder), and the plaintext is written into the pipe from memory; the kernel's pipe buffer is all it passes
// through. Not an inherited fd (`/dev/fd/3`): Node's extra stdio "pipes" are socket pairs, which Linux
// refuses to open through /dev/fd (ENXIO).
import { spawn, spawnSync } from 'node:child_process';
import {
  closeSync,
  constants,
  createWriteStream,
  existsSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
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
 * Replace each encrypted values file in `argv` with `pathOf(i)` (a {@link ValuePipes} FIFO) and
 * decrypt it into memory.
 * Plain files, `-` (stdin) and URLs are left as they are. `key` may be a function, called only when an
 * encrypted file is found. Fails like {@link decryptSecrets}.
 */
export function decryptedValuesArgs(
  argv: readonly string[],
  key: SecretsKey | (() => SecretsKey),
  pathOf: (index: number) => string,
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
      return pathOf(plaintexts.length - 1);
    });
    out[arg.index] = `${arg.prefix}${files.join(',')}`;
  }
  return { argv: out, plaintexts };
}

/**
 * Named pipes carrying plaintexts to a child: {@link ValuePipes.path} makes FIFO `i` (mode 0600, in a 0700
 * folder), {@link ValuePipes.feed} writes each text into its FIFO as soon as the child opens it, and
 * {@link ValuePipes.close} releases writers whose FIFO was never opened (the child failed first) and removes
 * the folder.
 */
export class ValuePipes {
  #dir: string | undefined;
  readonly #paths: string[] = [];
  readonly #writers: Array<Promise<void>> = [];

  /** The FIFO for plaintext `index`, made on first use. */
  path(index: number): string {
    this.#dir ??= mkdtempSync(join(tmpdir(), 'capstan-values-'));
    const path = join(this.#dir, `values-${index}.yaml`);
    if (!this.#paths.includes(path)) {
      const made = spawnSync('mkfifo', ['-m', '600', path], { encoding: 'utf8' });
      if (made.status !== 0)
        throw new HelmError(
          HelmErrorCode.helmFailed,
          `cannot make a pipe for the values (mkfifo): ${made.stderr || made.error?.message}`,
        );
      this.#paths.push(path);
    }
    return path;
  }

  /** Write `texts[i]` into FIFO `i`; each write waits (off the event loop) until the reader opens it. */
  feed(texts: readonly string[]): void {
    texts.forEach((text, i) => {
      const path = this.path(i);
      this.#writers.push(
        new Promise<void>((resolve) => {
          const stream = createWriteStream(path);
          // A reader that goes away early (helm failed) makes the write fail with EPIPE: not our failure.
          stream.on('error', () => resolve());
          stream.end(text, () => resolve());
        }),
      );
    });
  }

  /** Unblock writers still waiting for a reader, then remove the FIFOs. Idempotent. */
  async close(): Promise<void> {
    for (const path of this.#paths) {
      try {
        // A reader that opens and closes at once: a writer blocked in open() gets through and fails with EPIPE.
        closeSync(openSync(path, constants.O_RDONLY | constants.O_NONBLOCK));
      } catch {
        // Already removed.
      }
    }
    await Promise.all(this.#writers);
    if (this.#dir) rmSync(this.#dir, { recursive: true, force: true });
    this.#dir = undefined;
  }
}

/** Options of {@link spawnHelm}. */
export interface SpawnHelmOptions {
  env: HelmEnv;
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
 * Run `$HELM_BIN <argv>`. stdin is the caller's; stdout and stderr too unless `capture`. Fails with `CAP_ERR_HELM_HELM_FAILED` only when helm cannot start; a non-zero exit is returned.
 */
export async function spawnHelm(argv: readonly string[], options: SpawnHelmOptions): Promise<HelmRun> {
  options.signal?.throwIfAborted();
  const output = options.capture ? ('pipe' as const) : ('inherit' as const);
  const child = spawn(options.env.bin, argv, { env: options.env.vars, stdio: ['inherit', output, output] });
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
 * named pipe: `helm capstan secrets install web ./chart -f secrets.enc.yaml` runs `helm install web ./chart
 * -f /tmp/capstan-values-XXXX/values-0.yaml`, a FIFO ({@link ValuePipes}). stdin, stdout and stderr are the
 * caller's; returns helm's exit status.
 */
export async function runHelmWithSecrets(
  argv: readonly string[],
  options: RunHelmWithSecretsOptions,
): Promise<number> {
  const pipes = new ValuePipes();
  try {
    const { argv: args, plaintexts } = decryptedValuesArgs(argv, options.key, (i) => pipes.path(i));
    pipes.feed(plaintexts);
    const run = await spawnHelm(args, {
      env: options.env,
      ...(options.signal ? { signal: options.signal } : {}),
    });
    return run.status;
  } finally {
    await pipes.close();
  }
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
