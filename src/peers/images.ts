import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PeerError } from './errors.ts';

/** One regular file of an image's root filesystem. */
export interface ImageFile {
  /** Path inside the image, without a leading slash (`bin/busybox`). */
  path: string;
  /** Copy this host file (its bytes; mode from `mode`, else the host file's). */
  from?: string;
  /** Or these bytes. */
  content?: string | Buffer;
  /** Permission bits; default the host file's, or 0o644 for `content`. */
  mode?: number;
}

/** What {@link buildImageArchive} packs: a single-layer image made from files, no registry involved. */
export interface ImageSpec {
  /** Full reference, e.g. `capstan.local/busybox:1` (a domain with a dot, so no tool rewrites it to docker.io). */
  name: string;
  files: ImageFile[];
  /** Symbolic links, path inside the image → target (`bin/sh` → `busybox`). */
  symlinks?: Record<string, string>;
  /** Directories to create empty (`tmp` is always created, mode 1777). */
  dirs?: string[];
  entrypoint?: string[];
  cmd?: string[];
  env?: string[];
  workingDir?: string;
}

const BLOCK = 512;

/** A POSIX ustar header. Names up to 100 bytes (ours are short paths); fixed owner root, mtime 0 (reproducible). */
function tarHeader(name: string, type: '0' | '2' | '5', size: number, mode: number, linkname = ''): Buffer {
  if (Buffer.byteLength(name) > 100 || Buffer.byteLength(linkname) > 100) {
    throw new PeerError('CAP_ERR_PEER_CONFIG', `image path too long for a tar header: ${name}`);
  }
  const h = Buffer.alloc(BLOCK);
  const octal = (value: number, offset: number, width: number) =>
    h.write(`${value.toString(8).padStart(width - 1, '0')}\0`, offset, width, 'ascii');
  h.write(name, 0, 100, 'utf8');
  octal(mode & 0o7777, 100, 8);
  octal(0, 108, 8);
  octal(0, 116, 8);
  octal(size, 124, 12);
  octal(0, 136, 12);
  h.fill(' ', 148, 156); // the checksum is computed with its own field as spaces
  h.write(type, 156, 1, 'ascii');
  h.write(linkname, 157, 100, 'utf8');
  h.write('ustar\0', 257, 6, 'ascii');
  h.write('00', 263, 2, 'ascii');
  let sum = 0;
  for (const byte of h) sum += byte;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'ascii');
  return h;
}

interface TarEntry {
  name: string;
  type: '0' | '2' | '5';
  mode: number;
  data?: Buffer;
  linkname?: string;
}

/** A tar archive of the entries, in the given order, with the two zero blocks that end it. */
export function tarArchive(entries: TarEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const data = e.data ?? Buffer.alloc(0);
    parts.push(tarHeader(e.name, e.type, data.length, e.mode, e.linkname));
    if (data.length > 0) {
      parts.push(data);
      const pad = (BLOCK - (data.length % BLOCK)) % BLOCK;
      if (pad > 0) parts.push(Buffer.alloc(pad));
    }
  }
  parts.push(Buffer.alloc(BLOCK * 2));
  return Buffer.concat(parts);
}

const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');

/** The image's one layer: its files, links and directories, parents first. */
function layerTar(spec: ImageSpec): Buffer {
  const dirs = new Map<string, number>([['tmp', 0o1777]]);
  for (const d of spec.dirs ?? []) dirs.set(d.replace(/^\/+|\/+$/g, ''), 0o755);
  const parentsOf = (path: string) => {
    const parts = path.split('/').slice(0, -1);
    for (let i = 1; i <= parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      if (!dirs.has(dir)) dirs.set(dir, 0o755);
    }
  };
  const files: TarEntry[] = spec.files.map((f) => {
    const path = f.path.replace(/^\/+/, '');
    parentsOf(path);
    if (f.from !== undefined) {
      return {
        name: path,
        type: '0',
        mode: f.mode ?? statSync(f.from).mode,
        data: readFileSync(f.from),
      };
    }
    return { name: path, type: '0', mode: f.mode ?? 0o644, data: Buffer.from(f.content ?? '') };
  });
  const links: TarEntry[] = Object.entries(spec.symlinks ?? {}).map(([path, target]) => {
    const name = path.replace(/^\/+/, '');
    parentsOf(name);
    return { name, type: '2', mode: 0o777, linkname: target };
  });
  const dirEntries: TarEntry[] = [...dirs.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, mode]) => ({ name: `${name}/`, type: '5', mode }));
  return tarArchive([...dirEntries, ...files, ...links]);
}

/**
 * Pack an image as a `docker save` archive (manifest.json, the config JSON, one layer tar), which
 * `ctr images import` and `docker load` both read. Single layer, owner root, mtime 0: the same spec gives
 * the same bytes, so the image id is stable. Returns the archive and the image's config digest.
 */
export function buildImageArchive(spec: ImageSpec): { archive: Buffer; imageId: string } {
  const layer = layerTar(spec);
  const layerDigest = sha256(layer);
  const config = JSON.stringify({
    architecture: process.arch === 'arm64' ? 'arm64' : 'amd64',
    os: 'linux',
    config: {
      ...(spec.entrypoint ? { Entrypoint: spec.entrypoint } : {}),
      ...(spec.cmd ? { Cmd: spec.cmd } : {}),
      Env: spec.env ?? ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
      ...(spec.workingDir ? { WorkingDir: spec.workingDir } : {}),
    },
    rootfs: { type: 'layers', diff_ids: [`sha256:${layerDigest}`] },
    history: [{ created_by: 'capstan image builder' }],
  });
  const configDigest = sha256(config);
  const manifest = JSON.stringify([
    { Config: `${configDigest}.json`, RepoTags: [spec.name], Layers: [`${layerDigest}/layer.tar`] },
  ]);
  const archive = tarArchive([
    { name: `${layerDigest}/`, type: '5', mode: 0o755 },
    { name: `${layerDigest}/layer.tar`, type: '0', mode: 0o644, data: layer },
    { name: `${configDigest}.json`, type: '0', mode: 0o644, data: Buffer.from(config) },
    { name: 'manifest.json', type: '0', mode: 0o644, data: Buffer.from(manifest) },
  ]);
  return { archive, imageId: `sha256:${configDigest}` };
}

/** busybox-static's binary; every applet it lists becomes a link in `/bin`. */
export function busyboxImageSpec(name = 'capstan.local/busybox:1', busybox = '/bin/busybox'): ImageSpec {
  let applets: string[];
  try {
    applets = execFileSync(busybox, ['--list'], { encoding: 'utf8' }).split('\n').filter(Boolean);
  } catch (err) {
    throw new PeerError(
      'CAP_ERR_PEER_NOT_FOUND',
      `${busybox} --list failed (is busybox-static installed?)`,
      '',
      {
        cause: err,
      },
    );
  }
  const symlinks: Record<string, string> = {};
  for (const applet of applets) if (applet !== 'busybox') symlinks[`bin/${applet}`] = 'busybox';
  return {
    name,
    files: [
      { path: 'bin/busybox', from: busybox, mode: 0o755 },
      {
        path: 'etc/passwd',
        content: 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n',
      },
      { path: 'etc/group', content: 'root:x:0:\nnogroup:x:65534:\n' },
    ],
    symlinks,
    dirs: ['root', 'proc', 'sys', 'dev', 'etc'],
    cmd: ['/bin/sh'],
  };
}

// A pod's sandbox process: holds the namespaces, reaps orphans, exits on SIGINT/SIGTERM. Our own few lines.
const PAUSE_C = `#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static void quit(int sig) { (void)sig; _exit(0); }
static void reap(int sig) { (void)sig; while (waitpid(-1, 0, WNOHANG) > 0) {} }

int main(void) {
  signal(SIGINT, quit);
  signal(SIGTERM, quit);
  signal(SIGCHLD, reap);
  for (;;) pause();
}
`;

/** Compile the pause program (`gcc -static`, needs gcc and libc6-dev) into `dir`; returns its image spec. */
export function pauseImageSpec(dir: string, name = 'capstan.local/pause:1'): ImageSpec {
  const source = join(dir, 'pause.c');
  const binary = join(dir, 'pause');
  writeFileSync(source, PAUSE_C);
  try {
    execFileSync('gcc', ['-static', '-Os', '-s', '-o', binary, source], { stdio: 'pipe' });
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString() ?? '';
    throw new PeerError(
      'CAP_ERR_PEER_INSTALL',
      'gcc -static pause.c failed (gcc and libc6-dev needed)',
      stderr,
      {
        cause: err,
      },
    );
  }
  return { name, files: [{ path: 'pause', from: binary, mode: 0o755 }], entrypoint: ['/pause'] };
}

/**
 * A host program and the shared libraries it links (from `ldd`), at the same paths inside the image: how a
 * Debian or npm binary (node, redis-server) runs in an image without its distribution.
 */
export function binaryWithLibraries(binary: string, pathInImage = binary): ImageFile[] {
  let out: string;
  try {
    out = execFileSync('ldd', [binary], { encoding: 'utf8' });
  } catch (err) {
    // A static binary: ldd says "not a dynamic executable" and exits 1.
    if (/not a dynamic executable/.test(String((err as { stderr?: string }).stderr ?? ''))) {
      return [{ path: pathInImage, from: binary, mode: 0o755 }];
    }
    throw new PeerError('CAP_ERR_PEER_NOT_FOUND', `ldd ${binary} failed`, '', { cause: err });
  }
  const libs = new Set<string>();
  for (const line of out.split('\n')) {
    // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or "/lib64/ld-linux-x86-64.so.2 (0x...)"
    const m = /=>\s+(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
    if (m?.[1]) libs.add(m[1]);
  }
  return [
    { path: pathInImage, from: binary, mode: 0o755 },
    ...[...libs].map((lib) => ({ path: lib, from: lib, mode: 0o755 })),
  ];
}
