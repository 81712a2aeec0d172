// `capstan build-binary`: one executable that needs no Node install and no node_modules — Node's
// single-executable applications: the program bundled into one CommonJS file (esbuild), turned into a
// blob with V8's code cache, and injected into a copy of the running Node binary (postject).
import {
  chmodSync,
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { basename, extname, join, resolve } from 'node:path';
import { runCommand } from '../runtime/index.ts';
import { AutomationError, AutomationErrorCode } from './errors.ts';

/** Options of {@link buildBinary}. */
export interface BuildBinaryOptions {
  /** The program's entry module (.ts or .js). */
  entry: string;
  /** The executable's name; default: the entry's file name without extension. */
  name?: string;
  /** Folder to write it to; default: the current folder. */
  outDir?: string;
  /** Constants replaced at build time (esbuild `define`), e.g. a version. */
  define?: Record<string, string>;
  /** Extra esbuild resolve conditions (`capstan-source` to bundle Capstan from its sources). */
  conditions?: string[];
  /** Progress lines. */
  log?: (line: string) => void;
  signal?: AbortSignal;
}

/** What {@link buildBinary} made. */
export interface BuiltBinary {
  readonly path: string;
  readonly bytes: number;
  /** Size of the bundled program inside it. */
  readonly bundleBytes: number;
}

// The fuse Node's binary carries for single-executable applications (documented in Node's SEA guide).
// Assembled at run time: as one literal it would be inside the blob of a binary that bundles this module
// (capstan's own), and postject refuses a binary where the fuse appears twice.
const SEA_FUSE = ['NODE', 'SEA', 'FUSE', 'fce680ab2cc467b6e072b8b5df1996b2'].join('_');

/**
 * Build a single executable of `entry` for this platform, from the Node binary running this code. Top-level
 * `await` is not possible in it (the program runs as CommonJS): start with an async `main()` instead.
 * What the program reads next to its own source at run time (`new URL('x', import.meta.url)`) is not in the
 * binary: bake such values in with `define`.
 */
export async function buildBinary(options: BuildBinaryOptions): Promise<BuiltBinary> {
  const log = options.log ?? (() => {});
  const entry = resolve(options.entry);
  const name = options.name ?? basename(entry, extname(entry));
  const outDir = resolve(options.outDir ?? '.');
  const work = mkdtempSync(join(tmpdir(), 'capstan-sea-'));
  try {
    const bundle = join(work, 'program.cjs');
    log(`bundling ${entry}`);
    const esbuild = await import('esbuild');
    try {
      await esbuild.build({
        entryPoints: [entry],
        outfile: bundle,
        bundle: true,
        platform: 'node',
        format: 'cjs',
        target: `node${process.versions.node.split('.')[0]}`,
        minify: true,
        keepNames: true,
        legalComments: 'none',
        logLevel: 'silent',
        // import.meta does not exist in CommonJS: give modules that read it the executable's location.
        banner: {
          js: 'const __capstanImportMetaUrl = require("node:url").pathToFileURL(process.execPath).href;',
        },
        define: {
          'import.meta.url': '__capstanImportMetaUrl',
          'import.meta.dirname': '__dirname',
          'import.meta.filename': '__filename',
          ...options.define,
        },
        ...(options.conditions ? { conditions: options.conditions } : {}),
      });
    } catch (err) {
      const errors =
        (err as { errors?: Array<{ text: string; location?: { file: string; line: number } }> }).errors ?? [];
      const lines = errors.map(
        (e) => `${e.location ? `${e.location.file}:${e.location.line}: ` : ''}${e.text}`,
      );
      const hint = lines.some((l) => /top-level await/i.test(l))
        ? '\n(a single executable runs as CommonJS: move top-level await into an async main())'
        : '';
      throw new AutomationError(
        AutomationErrorCode.build,
        `cannot bundle ${entry}:\n${lines.join('\n') || String(err)}${hint}`,
        { cause: err },
      );
    }
    const bundleBytes = readFileSync(bundle).byteLength;
    const blob = join(work, 'program.blob');
    const config = join(work, 'sea-config.json');
    writeFileSync(
      config,
      JSON.stringify({ main: bundle, output: blob, disableExperimentalSEAWarning: true, useCodeCache: true }),
    );
    log(`making the blob (${(bundleBytes / 1e6).toFixed(1)} MB of JavaScript, with its code cache)`);
    await runCommand('node', process.execPath, ['--experimental-sea-config', config], {
      env: process.env,
      cwd: work,
      ...(options.signal ? { signal: options.signal } : {}),
    });
    mkdirSync(outDir, { recursive: true });
    const out = join(outDir, name);
    copyFileSync(process.execPath, out);
    chmodSync(out, 0o755);
    log(`injecting it into a copy of ${process.execPath}`);
    // postject is CommonJS with no types: loaded through require, its one function typed here.
    const { inject } = createRequire(import.meta.url)('postject') as {
      inject(file: string, resource: string, data: Buffer, options: { sentinelFuse: string }): Promise<void>;
    };
    await inject(out, 'NODE_SEA_BLOB', readFileSync(blob), { sentinelFuse: SEA_FUSE });
    const bytes = readFileSync(out).byteLength;
    log(`wrote ${out} (${(bytes / 1e6).toFixed(0)} MB)`);
    return { path: out, bytes, bundleBytes };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
