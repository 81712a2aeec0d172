import { createHash, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { basename, extname, join, resolve } from 'node:path';
import { PeerError } from './errors.ts';
import { binaryWithLibraries, type ImageSpec, imageCacheDir } from './images.ts';

/** Where the Node binary sits inside Capstan images. */
const NODE_IN_IMAGE = '/usr/local/bin/node';

/**
 * The base of every Capstan image: a Node binary (default this process's: Node 24 from the npm `node`
 * package when run through npm) with the libraries it links, `/etc/passwd` with root and nobody, `/tmp`.
 * One layer of about 130 MB, the same for every app built on the same Node: stored and pushed once.
 */
export function nodeRuntimeImageSpec(
  node = process.execPath,
  name = 'capstan.local/node-runtime:1',
): ImageSpec {
  return {
    name,
    files: binaryWithLibraries(node, NODE_IN_IMAGE),
    users: [],
    dirs: ['etc', 'app'],
    env: ['NODE_ENV=production'],
  };
}

/** Options of {@link capstanImageSpec}. */
export interface CapstanImageOptions {
  /** The program, a `.ts` or `.js` file: what `node entry` would run (a `createService`, an operator). */
  entry: string;
  /** Default `capstan.local/<entry's name>:<first 12 hex digits of the bundle's digest>`. */
  name?: string;
  /** The Node binary to run it on; default this process's (`process.execPath`). */
  node?: string;
  /** Package export conditions for resolving imports (inside the Capstan checkout: `capstan-source`). */
  conditions?: string[];
  /** Arguments after the program (the image's `Cmd`). */
  args?: string[];
  /** `NAME=value` entries (`PORT=8080`). */
  env?: string[];
  exposedPorts?: Array<number | string>;
  /** Default `nobody`: a service needs no root (ports above 1023). */
  user?: string;
  /** The bundle cache (`<cacheDir>/bundles`). Default `~/.cache/capstan/images`. */
  cacheDir?: string;
}

/** A bundle's cache record: the content of every input it was built from. */
interface BundleRecord {
  inputs: Record<string, string>;
  bundle: string;
}

const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');

function readRecord(path: string): BundleRecord | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as BundleRecord;
  } catch {
    return undefined;
  }
}

/** Every input still has the content the bundle was built from. */
function inputsUnchanged(record: BundleRecord): boolean {
  for (const [path, digest] of Object.entries(record.inputs)) {
    try {
      if (sha256(readFileSync(path)) !== digest) return false;
    } catch {
      return false;
    }
  }
  return true;
}

function writeWhole(path: string, data: string | Uint8Array): void {
  const tmp = `${path}.${process.pid}.${randomUUID()}`;
  writeFileSync(tmp, data);
  renameSync(tmp, path);
}

/**
 * Bundle `entry` and what it imports (Capstan, pino, undici, zod...) into one ES module with esbuild,
 * reusing the cached bundle while every input file has the same content. Returns the bundle's path.
 */
export async function bundleEntry(
  entry: string,
  options: { conditions?: string[]; cacheDir?: string } = {},
): Promise<string> {
  const dir = join(options.cacheDir ?? imageCacheDir(), 'bundles');
  mkdirSync(dir, { recursive: true });
  let esbuild: typeof import('esbuild');
  try {
    esbuild = await import('esbuild');
  } catch (err) {
    throw new PeerError(
      'CAP_ERR_PEER_NOT_FOUND',
      'a Capstan image bundles with esbuild: npm install -D esbuild',
      '',
      {
        cause: err,
      },
    );
  }
  const absEntry = resolve(entry);
  // Bundled CommonJS dependencies call require(): give the ES module one.
  const banner =
    "import { createRequire as __capstanRequire } from 'node:module'; const require = __capstanRequire(import.meta.url);";
  const key = sha256(
    JSON.stringify({
      v: 1,
      entry: absEntry,
      conditions: options.conditions ?? [],
      esbuild: esbuild.version,
      banner,
    }),
  );
  const recordPath = join(dir, `${key}.json`);
  const cached = readRecord(recordPath);
  if (cached && existsSync(join(dir, `${cached.bundle}.mjs`)) && inputsUnchanged(cached)) {
    return join(dir, `${cached.bundle}.mjs`);
  }
  const cwd = process.cwd();
  let result: Awaited<ReturnType<typeof esbuild.build<{ write: false; metafile: true }>>>;
  try {
    result = await esbuild.build({
      entryPoints: [absEntry],
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node22',
      conditions: options.conditions ?? [],
      banner: { js: banner },
      outfile: join(dir, 'out.mjs'),
      absWorkingDir: cwd,
      write: false,
      metafile: true,
      logLevel: 'silent',
    });
  } catch (err) {
    const errors = (err as { errors?: Array<{ text: string; location?: { file: string; line: number } }> })
      .errors;
    const detail = (errors ?? []).map(
      (e) => `${e.location ? `${e.location.file}:${e.location.line}: ` : ''}${e.text}`,
    );
    throw new PeerError('CAP_ERR_PEER_IMAGE', `bundling ${entry} failed`, detail.join('\n'), { cause: err });
  }
  const code = Buffer.from(result.outputFiles[0]!.contents);
  const bundle = sha256(code);
  const inputs: Record<string, string> = {};
  for (const input of Object.keys(result.metafile.inputs)) {
    // esbuild names inputs relative to the working directory; plugins' virtual ones have a namespace prefix.
    if (input.includes(':') && !input.startsWith('/')) continue;
    const path = resolve(cwd, input);
    inputs[path] = sha256(readFileSync(path));
  }
  writeWhole(join(dir, `${bundle}.mjs`), code);
  writeWhole(recordPath, JSON.stringify({ inputs, bundle } satisfies BundleRecord));
  return join(dir, `${bundle}.mjs`);
}

/**
 * An image that runs a program written with Capstan (an operator, a webhook, an exporter, a service) as a
 * pod: {@link nodeRuntimeImageSpec} (Node and its libraries) plus one small layer with the program bundled
 * into `/app/main.mjs` ({@link bundleEntry}; cached by the content of its inputs). The default tag is the
 * bundle's digest, so a changed program is a new tag and `imagePullPolicy: IfNotPresent` never runs a stale
 * one. Build it with {@link buildImage}, load it into a node or push it to a registry.
 */
export async function capstanImageSpec(options: CapstanImageOptions): Promise<ImageSpec> {
  const bundle = await bundleEntry(options.entry, {
    ...(options.conditions ? { conditions: options.conditions } : {}),
    ...(options.cacheDir ? { cacheDir: options.cacheDir } : {}),
  });
  const program = basename(options.entry, extname(options.entry))
    .toLowerCase()
    .replace(/[^a-z0-9._-]/g, '-');
  const name = options.name ?? `capstan.local/${program}:${basename(bundle, '.mjs').slice(0, 12)}`;
  return {
    name,
    base: nodeRuntimeImageSpec(options.node),
    files: [{ path: 'app/main.mjs', from: bundle, mode: 0o644 }],
    entrypoint: [NODE_IN_IMAGE, '/app/main.mjs'],
    cmd: options.args ?? [],
    ...(options.env ? { env: options.env } : {}),
    ...(options.exposedPorts ? { exposedPorts: options.exposedPorts } : {}),
    workingDir: '/app',
    user: options.user ?? 'nobody',
  };
}
