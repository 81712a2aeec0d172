import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tailLines } from '../runtime/index.ts';
import { PeerError } from './errors.ts';

/** How one peer is obtained: Debian packages, `go install`, or a Go module of ours under scripts/peers. */
export type PeerSource =
  | { source: 'apt'; packages: string[]; version: string }
  | {
      source: 'go';
      module: string;
      version: string;
      binaries: string[];
      /** Extra linker flags, e.g. `-X` to stamp the version as upstream's release builds do. */
      ldflags?: string[];
    }
  | {
      source: 'go-module';
      dir: string;
      version: string;
      binaries: string[];
      /**
       * Package to build per binary, when not `./cmd/<binary>` of our module: a main package of a
       * dependency (listed as a `tool` in our go.mod), built under our go.mod's replace directives.
       */
      packages?: Record<string, string>;
      /** Extra linker flags, e.g. `-X` to stamp the version a module build cannot know. */
      ldflags?: string[];
      /** The upstream module our go.mod requires at `version` (checked by the test suite). */
      upstream: string;
    };

/** scripts/peers/versions.json: every peer with its pinned version, and the set `npm test` needs. */
export interface PeerCatalogue {
  /** The peers `npm test` needs (`npm run peers` installs them). */
  suite: string[];
  /** Every peer by name. */
  peers: Record<string, PeerSource>;
}

/** One row of {@link peerStatus}. */
export interface PeerStatus {
  name: string;
  version: string;
  /** How it is installed: `apt: <packages>`, `go: <module>` or `go-module: <dir>`. */
  source: string;
  /** Installed and, for Go peers, built from the current sources. */
  installed: boolean;
  /** Where its binaries live. */
  where: string;
}

const here = dirname(fileURLToPath(import.meta.url));

/** Root of the Capstan checkout or installed package (the folder holding scripts/peers). */
export function packageRoot(): string {
  let dir = here;
  while (!existsSync(join(dir, 'scripts', 'peers', 'versions.json'))) {
    const parent = dirname(dir);
    if (parent === dir)
      throw new PeerError('CAP_ERR_PEER_CATALOGUE', 'scripts/peers/versions.json not found');
    dir = parent;
  }
  return dir;
}

/** The pinned peer catalogue from scripts/peers/versions.json. */
export function peerCatalogue(): PeerCatalogue {
  return JSON.parse(readFileSync(join(packageRoot(), 'scripts', 'peers', 'versions.json'), 'utf8'));
}

/** Root of the peer cache: `$CAPSTAN_CACHE_DIR` or `~/.cache/capstan`. */
export function cacheRoot(): string {
  return process.env.CAPSTAN_CACHE_DIR ?? join(homedir(), '.cache', 'capstan');
}

/** Cache folder of one peer build: `~/.cache/capstan/peers/<name>-<version>`. */
export function peerCacheDir(name: string, version?: string): string {
  const spec = peerCatalogue().peers[name];
  const v = version ?? spec?.version ?? 'unknown';
  return join(cacheRoot(), 'peers', `${name}-${v}`);
}

function aptInstalled(pkg: string): boolean {
  // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's own format syntax
  const r = spawnSync('dpkg-query', ['-W', '-f=${Status}', pkg], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.includes('install ok installed');
}

let aptUpdated = false;
function aptInstall(packages: string[], log: (line: string) => void): void {
  const missing = packages.filter((p) => !aptInstalled(p));
  if (missing.length === 0) return;
  const sudo = process.getuid?.() === 0 ? [] : ['sudo', '-n'];
  const run = (args: string[]) => {
    const [cmd, ...rest] = [...sudo, ...args];
    const r = spawnSync(cmd!, rest, {
      stdio: ['ignore', 'pipe', 'pipe'],
      encoding: 'utf8',
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
    if (r.status !== 0) {
      throw new PeerError(
        'CAP_ERR_PEER_INSTALL',
        `${args.join(' ')} failed (exit ${r.status})`,
        tailLines(`${r.stdout ?? ''}\n${r.stderr ?? ''}`, 40),
      );
    }
  };
  if (!aptUpdated) {
    log('apt-get update');
    run(['apt-get', 'update', '-qq']);
    aptUpdated = true;
  }
  log(`apt-get install ${missing.join(' ')}`);
  run(['apt-get', 'install', '-y', '-qq', '--no-install-recommends', ...missing]);
}

type GoPeer = Extract<PeerSource, { source: 'go' | 'go-module' }>;

/** Every file under `dir` (sorted, recursive): a Go module's sources that decide what it builds. */
function moduleFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name))
    .sort();
}

/**
 * What a Go peer's build is made from: its catalogue entry and, for a module of ours, every file of it
 * (go.mod, go.sum, main packages). Stored beside the binaries, so a changed go.mod, ldflags or main.go
 * rebuilds even when the version (the cache folder's name) stayed the same.
 */
export function buildStamp(name: string, spec: GoPeer): string {
  const hash = createHash('sha256').update(JSON.stringify({ name, spec, go: 'build-v1' }));
  if (spec.source === 'go-module') {
    const dir = resolve(packageRoot(), spec.dir);
    for (const file of moduleFiles(dir)) hash.update(file.slice(dir.length)).update(readFileSync(file));
  }
  return `${hash.digest('hex')}\n`;
}

const STAMP = '.capstan-build';

function readStamp(binDir: string): string | undefined {
  try {
    return readFileSync(join(binDir, STAMP), 'utf8');
  } catch {
    return undefined;
  }
}

/** The peer's binaries are in the cache and were built from the current sources. */
function goPeerCurrent(name: string, spec: GoPeer): boolean {
  const binDir = join(peerCacheDir(name, spec.version), 'bin');
  return (
    spec.binaries.every((b) => existsSync(join(binDir, b))) && readStamp(binDir) === buildStamp(name, spec)
  );
}

function goBuild(name: string, spec: GoPeer, log: (l: string) => void) {
  const binDir = join(peerCacheDir(name, spec.version), 'bin');
  if (goPeerCurrent(name, spec)) return;
  if (spec.binaries.every((b) => existsSync(join(binDir, b))))
    log(`${name}: sources changed since the cached build`);
  mkdirSync(binDir, { recursive: true });
  const env = {
    ...process.env,
    GOBIN: binDir,
    CGO_ENABLED: process.env.CGO_ENABLED ?? '0',
    GOFLAGS: '-trimpath',
  };
  if (spec.source === 'go') {
    log(`go install ${spec.module}@${spec.version}`);
    const ldflags = spec.ldflags?.length ? [`-ldflags=${spec.ldflags.join(' ')}`] : [];
    execFileSync('go', ['install', ...ldflags, `${spec.module}@${spec.version}`], {
      env,
      stdio: ['ignore', 'inherit', 'inherit'],
    });
  } else {
    const dir = resolve(packageRoot(), spec.dir);
    const started = Date.now();
    log(
      `go build (${spec.dir}: ${spec.binaries.join(', ')}) -> ${binDir}; a cold build can take many minutes`,
    );
    // One call for all binaries: shared packages compile once and the links run in parallel.
    // -s -w drops symbol tables and DWARF: test peers are never debugged, and it saves ~30% size.
    execFileSync(
      'go',
      [
        'build',
        `-ldflags=${['-s', '-w', ...(spec.ldflags ?? [])].join(' ')}`,
        '-o',
        `${binDir}/`,
        ...spec.binaries.map((b) => spec.packages?.[b] ?? `./cmd/${b}`),
      ],
      { cwd: dir, env, stdio: ['ignore', 'inherit', 'inherit'] },
    );
    log(`go build (${spec.dir}) done in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  }
  writeFileSync(join(binDir, STAMP), buildStamp(name, spec));
}

/** Install (or reuse from cache) the named peers. Throws a PeerError naming what failed. */
export function ensurePeers(names: string[], log: (line: string) => void = () => {}): void {
  const catalogue = peerCatalogue();
  for (const name of names) {
    const spec = catalogue.peers[name];
    if (!spec) throw new PeerError('CAP_ERR_PEER_UNKNOWN', `unknown peer "${name}"`);
    const started = Date.now();
    let worked = false;
    const timed = (line: string) => {
      worked = true;
      log(line);
    };
    if (spec.source === 'apt') aptInstall(spec.packages, timed);
    else goBuild(name, spec, timed);
    // Cold-machine budgets are planned from these lines.
    if (worked) log(`${name} installed in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  }
}

/** Where each peer stands: installed or not, and where its binaries live. */
export function peerStatus(): PeerStatus[] {
  const catalogue = peerCatalogue();
  return Object.entries(catalogue.peers).map(([name, spec]) => {
    if (spec.source === 'apt') {
      return {
        name,
        version: spec.version,
        source: `apt: ${spec.packages.join(' ')}`,
        installed: spec.packages.every(aptInstalled),
        where: '/usr',
      };
    }
    const binDir = join(peerCacheDir(name, spec.version), 'bin');
    return {
      name,
      version: spec.version,
      source: spec.source === 'go' ? `go: ${spec.module}` : `go-module: ${spec.dir}`,
      installed: goPeerCurrent(name, spec),
      where: binDir,
    };
  });
}

/** Path of a binary built into a Go peer's cache dir (after {@link ensurePeers}). */
export function peerBinary(name: string, binary: string): string {
  return join(peerCacheDir(name), 'bin', binary);
}
