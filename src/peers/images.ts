import { execFileSync } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import {
  closeSync,
  existsSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  readlinkSync,
  readSync,
  renameSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { cacheRoot } from './catalogue.ts';
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
  /** Owner inside the image; default 0 (root). */
  uid?: number;
  gid?: number;
}

/** A directory of an image, created even if empty (`var/log/nginx`). */
export interface ImageDir {
  path: string;
  /** Default 0o755. */
  mode?: number;
  uid?: number;
  gid?: number;
}

/** A user of the image, written to its `/etc/passwd` and `/etc/group` (with root and nobody). */
export interface ImageUser {
  name: string;
  uid: number;
  /** Default the uid (a group of the same name). */
  gid?: number;
  /** Default `/nonexistent`. */
  home?: string;
}

/** The content of one layer: files, links and folders. */
export interface ImageLayer {
  files: ImageFile[];
  /** Symbolic links, path inside the image → target (`bin/sh` → `busybox`). */
  symlinks?: Record<string, string>;
  /** Directories to create empty (`tmp` is always created, mode 1777). */
  dirs?: Array<string | ImageDir>;
}

/**
 * What {@link buildImage} and {@link buildImageArchive} pack: an image made from files, no registry and no
 * Dockerfile involved. Its own files are the top layer; `base`'s layers come first (like `FROM`).
 */
export interface ImageSpec extends ImageLayer {
  /** Full reference, e.g. `capstan.local/busybox:1` (a domain with a dot, so no tool rewrites it to docker.io). */
  name: string;
  /**
   * An image this one builds on: its layers come first and its config is the default for this one's (env
   * merged by name). Shared bases are shared layers: pushed once, stored once by containerd.
   */
  base?: ImageSpec;
  /** Users and groups for `/etc/passwd` and `/etc/group` (root and nobody are always there). */
  users?: ImageUser[];
  entrypoint?: string[];
  cmd?: string[];
  /** `NAME=value` entries; a base's entries of the same name are replaced. Default a standard `PATH`. */
  env?: string[];
  workingDir?: string;
  /** Who the process runs as (`nobody`, `33`, `33:33`), unless the pod says otherwise. */
  user?: string;
  /** Ports the program listens on (`6379`, `53/udp`): documentation for tools, like `EXPOSE`. */
  exposedPorts?: Array<number | string>;
  labels?: Record<string, string>;
}

const BLOCK = 512;

/** A ustar name: up to 100 bytes, or split at a `/` into a prefix (up to 155) and a name (up to 100). */
function splitName(name: string): { prefix: string; name: string } {
  if (Buffer.byteLength(name) <= 100) return { prefix: '', name };
  for (let i = name.indexOf('/'); i !== -1; i = name.indexOf('/', i + 1)) {
    const prefix = name.slice(0, i);
    const rest = name.slice(i + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(rest) <= 100 && rest !== '') {
      return { prefix, name: rest };
    }
  }
  throw new PeerError('CAP_ERR_PEER_CONFIG', `image path too long for a tar header: ${name}`);
}

/** A POSIX ustar header; mtime 0 (reproducible). */
function tarHeader(entry: TarEntry, size: number): Buffer {
  const { prefix, name } = splitName(entry.name);
  const linkname = entry.linkname ?? '';
  if (Buffer.byteLength(linkname) > 100) {
    throw new PeerError('CAP_ERR_PEER_CONFIG', `link target too long for a tar header: ${linkname}`);
  }
  const h = Buffer.alloc(BLOCK);
  const octal = (value: number, offset: number, width: number) =>
    h.write(`${value.toString(8).padStart(width - 1, '0')}\0`, offset, width, 'ascii');
  h.write(name, 0, 100, 'utf8');
  octal(entry.mode & 0o7777, 100, 8);
  octal(entry.uid ?? 0, 108, 8);
  octal(entry.gid ?? 0, 116, 8);
  octal(size, 124, 12);
  octal(0, 136, 12);
  h.fill(' ', 148, 156); // the checksum is computed with its own field as spaces
  h.write(entry.type, 156, 1, 'ascii');
  h.write(linkname, 157, 100, 'utf8');
  h.write('ustar\0', 257, 6, 'ascii');
  h.write('00', 263, 2, 'ascii');
  h.write(prefix, 345, 155, 'utf8');
  let sum = 0;
  for (const byte of h) sum += byte;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'ascii');
  return h;
}

interface TarEntry {
  name: string;
  type: '0' | '2' | '5';
  mode: number;
  uid?: number;
  gid?: number;
  data?: Buffer;
  linkname?: string;
}

const padding = (size: number) => (BLOCK - (size % BLOCK)) % BLOCK;

/** A tar archive of the entries, in the given order, with the two zero blocks that end it. */
export function tarArchive(entries: TarEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const data = e.data ?? Buffer.alloc(0);
    parts.push(tarHeader(e, data.length));
    if (data.length > 0) {
      parts.push(data);
      const pad = padding(data.length);
      if (pad > 0) parts.push(Buffer.alloc(pad));
    }
  }
  parts.push(Buffer.alloc(BLOCK * 2));
  return Buffer.concat(parts);
}

const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');

const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

const clean = (path: string) => path.replace(/^\/+|\/+$/g, '');

/** `/etc/passwd` and `/etc/group` for root, nobody and the spec's users. */
function userFiles(users: ImageUser[]): ImageFile[] {
  const all: Required<ImageUser>[] = [
    { name: 'root', uid: 0, gid: 0, home: '/root' },
    ...users.map((u) => ({ home: '/nonexistent', gid: u.uid, ...u })),
    { name: 'nobody', uid: 65534, gid: 65534, home: '/nonexistent' },
  ];
  const passwd = all.map((u) => `${u.name}:x:${u.uid}:${u.gid}:${u.name}:${u.home}:/bin/sh\n`).join('');
  const groups = new Map<number, string>([[0, 'root']]);
  for (const u of users) if (!groups.has(u.gid ?? u.uid)) groups.set(u.gid ?? u.uid, u.name);
  groups.set(65534, 'nogroup');
  const group = [...groups].map(([gid, name]) => `${name}:x:${gid}:\n`).join('');
  return [
    { path: 'etc/passwd', content: passwd },
    { path: 'etc/group', content: group },
    // glibc's lookups (nginx's getpwnam): files only, built into libc since 2.34, so nothing to dlopen.
    { path: 'etc/nsswitch.conf', content: 'passwd: files\ngroup: files\nhosts: files dns\n' },
  ];
}

/** One layer's tar: folders (parents first), then files, then links; a later file of one path wins. */
function layerTar(layer: ImageLayer): Buffer {
  const dirs = new Map<string, TarEntry>([['tmp', { name: 'tmp/', type: '5', mode: 0o1777 }]]);
  for (const d of layer.dirs ?? []) {
    const dir = typeof d === 'string' ? { path: d } : d;
    const name = clean(dir.path);
    dirs.set(name, { name: `${name}/`, type: '5', mode: dir.mode ?? 0o755, uid: dir.uid, gid: dir.gid });
  }
  const parentsOf = (path: string) => {
    const parts = path.split('/').slice(0, -1);
    for (let i = 1; i <= parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      if (!dirs.has(dir)) dirs.set(dir, { name: `${dir}/`, type: '5', mode: 0o755 });
    }
  };
  for (const name of [...dirs.keys()]) parentsOf(name);
  const files = new Map<string, TarEntry>();
  for (const f of layer.files) {
    const path = clean(f.path);
    parentsOf(path);
    const data = f.from !== undefined ? readFileSync(f.from) : Buffer.from(f.content ?? '');
    const mode = f.mode ?? (f.from !== undefined ? statSync(f.from).mode : 0o644);
    files.set(path, { name: path, type: '0', mode, uid: f.uid, gid: f.gid, data });
  }
  const links: TarEntry[] = Object.entries(layer.symlinks ?? {}).map(([path, target]) => {
    const name = clean(path);
    parentsOf(name);
    return { name, type: '2', mode: 0o777, linkname: target };
  });
  const dirEntries = [...dirs.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([, e]) => e);
  return tarArchive([...dirEntries, ...files.values(), ...links]);
}

/** The spec's layers, base first, each with what its own spec asked for. */
function specLayers(spec: ImageSpec): ImageLayer[] {
  const own: ImageLayer = {
    files: [...(spec.users ? userFiles(spec.users) : []), ...spec.files],
    ...(spec.symlinks ? { symlinks: spec.symlinks } : {}),
    ...(spec.dirs ? { dirs: spec.dirs } : {}),
  };
  return [...(spec.base ? specLayers(spec.base) : []), own];
}

/** The image config's `config` part: this spec's settings over its base's. */
function runConfig(spec: ImageSpec): Record<string, unknown> {
  const base = spec.base ? runConfig(spec.base) : { Env: [DEFAULT_PATH] };
  const env = new Map<string, string>();
  for (const e of [...((base.Env as string[] | undefined) ?? []), ...(spec.env ?? [])]) {
    env.set(e.split('=')[0]!, e);
  }
  const ports = spec.exposedPorts?.map((p) => (typeof p === 'number' || !p.includes('/') ? `${p}/tcp` : p));
  const exposed = {
    ...(base.ExposedPorts as Record<string, object> | undefined),
    ...Object.fromEntries((ports ?? []).map((p) => [p, {}])),
  };
  const labels = { ...(base.Labels as Record<string, string> | undefined), ...spec.labels };
  // Like Docker: an ENTRYPOINT set by this image resets the CMD it did not set.
  const cmd = spec.cmd ?? (spec.entrypoint ? undefined : base.Cmd);
  return {
    ...(Object.keys(exposed).length ? { ExposedPorts: exposed } : {}),
    Env: [...env.values()],
    ...((spec.entrypoint ?? base.Entrypoint) ? { Entrypoint: spec.entrypoint ?? base.Entrypoint } : {}),
    ...(cmd ? { Cmd: cmd } : {}),
    ...((spec.workingDir ?? base.WorkingDir) ? { WorkingDir: spec.workingDir ?? base.WorkingDir } : {}),
    ...((spec.user ?? base.User) ? { User: spec.user ?? base.User } : {}),
    ...(Object.keys(labels).length ? { Labels: labels } : {}),
  };
}

/** The image config JSON: the run settings and the layers' digests (uncompressed: diff id = blob digest). */
function imageConfig(spec: ImageSpec, layerDigests: string[]): Buffer {
  const config = JSON.stringify({
    architecture: process.arch === 'arm64' ? 'arm64' : 'amd64',
    os: 'linux',
    config: runConfig(spec),
    rootfs: { type: 'layers', diff_ids: layerDigests.map((d) => `sha256:${d}`) },
    // One entry per layer: `docker load` checks the history against the layers.
    history: layerDigests.map(() => ({
      created: '1970-01-01T00:00:00Z',
      created_by: 'capstan image builder',
    })),
  });
  return Buffer.from(config);
}

/** The `docker save` manifest.json of an image. */
function dockerManifest(name: string, configDigest: string, layerDigests: string[]): Buffer {
  return Buffer.from(
    JSON.stringify([
      {
        Config: `${configDigest}.json`,
        RepoTags: [name],
        Layers: layerDigests.map((d) => `${d}/layer.tar`),
      },
    ]),
  );
}

/**
 * Pack an image as a `docker save` archive (manifest.json, the config JSON, a layer tar per layer), which
 * `ctr images import` and `docker load` both read, in memory. Owner root unless a file says otherwise, mtime
 * 0: the same spec gives the same bytes, so the image id is stable. Returns the archive and the image's
 * config digest. For big images (a Node runtime) prefer {@link buildImage} and {@link writeDockerArchive}.
 */
export function buildImageArchive(spec: ImageSpec): { archive: Buffer; imageId: string } {
  const layers = specLayers(spec).map(layerTar);
  const layerDigests = layers.map((l) => sha256(l));
  const config = imageConfig(spec, layerDigests);
  const configDigest = sha256(config);
  const archive = tarArchive([
    ...layers.flatMap((layer, i): TarEntry[] => [
      { name: `${layerDigests[i]}/`, type: '5', mode: 0o755 },
      { name: `${layerDigests[i]}/layer.tar`, type: '0', mode: 0o644, data: layer },
    ]),
    { name: `${configDigest}.json`, type: '0', mode: 0o644, data: config },
    {
      name: 'manifest.json',
      type: '0',
      mode: 0o644,
      data: dockerManifest(spec.name, configDigest, layerDigests),
    },
  ]);
  return { archive, imageId: `sha256:${configDigest}` };
}

/** Media types of what {@link buildImage} produces: an OCI image with uncompressed layers. */
export const ImageMediaType = {
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layer: 'application/vnd.oci.image.layer.v1.tar',
} as const;

/** One blob of a built image, a file in the content store named by its digest. */
export interface ImageBlob {
  /** `sha256:<hex>` */
  digest: string;
  size: number;
  mediaType: string;
  /** The file holding its bytes. */
  path: string;
}

/** An image built into the content store ({@link buildImage}): what loads into containerd and pushes to a registry. */
export interface BuiltImage {
  name: string;
  /** The config's digest (`sha256:<hex>`): the image id docker and containerd show. */
  id: string;
  config: ImageBlob;
  /** Base first. */
  layers: ImageBlob[];
  /** The OCI image manifest (JSON) that a registry stores under the tag. */
  manifest: Buffer;
  /** Its digest: what `image@sha256:...` references and a registry answers in `Docker-Content-Digest`. */
  manifestDigest: string;
  /** Bytes of config and layers together. */
  size: number;
}

/** Options of {@link buildImage}. */
export interface BuildImageOptions {
  /** The content store: `<cacheDir>/blobs/sha256/<hex>`. Default `~/.cache/capstan/images`. */
  cacheDir?: string;
}

/** The image content store under the peer cache. */
export function imageCacheDir(): string {
  return join(cacheRoot(), 'images');
}

/** Write `data` to `path` whole or not at all (rename): a reader never sees half a file. */
function writeWhole(path: string, data: string | Buffer): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.${randomUUID()}`;
  writeFileSync(tmp, data);
  renameSync(tmp, path);
}

/** Write `data` to the content store under its digest, once. */
function storeBlob(dir: string, data: Buffer, mediaType: string): ImageBlob {
  const hex = sha256(data);
  const path = join(dir, 'blobs', 'sha256', hex);
  if (!existsSync(path) || statSync(path).size !== data.length) writeWhole(path, data);
  return { digest: `sha256:${hex}`, size: data.length, mediaType, path };
}

/**
 * What a layer is made from, host files by identity and change time (device, inode, size, mtime, ctime) rather
 * than by content: reading and hashing a 126 MB Node binary on every build costs seconds, a stat nothing.
 */
function layerKey(layer: ImageLayer): string {
  const files = layer.files.map((f) => {
    if (f.from === undefined) return { ...f, content: sha256(Buffer.from(f.content ?? '')) };
    const st = statSync(f.from, { bigint: true });
    const stamp = [st.dev, st.ino, st.size, st.mtimeNs, st.ctimeNs, st.mode].map(String);
    return { ...f, stamp };
  });
  return sha256(JSON.stringify({ v: 1, files, symlinks: layer.symlinks, dirs: layer.dirs }));
}

/** A layer's blob: from the layer cache when its inputs are unchanged, else built and stored. */
function layerBlob(dir: string, layer: ImageLayer): ImageBlob {
  const keyPath = join(dir, 'layers', layerKey(layer));
  try {
    const known = JSON.parse(readFileSync(keyPath, 'utf8')) as { digest: string; size: number };
    const path = join(dir, 'blobs', 'sha256', known.digest.slice('sha256:'.length));
    if (statSync(path).size === known.size) return { ...known, mediaType: ImageMediaType.layer, path };
  } catch {}
  const blob = storeBlob(dir, layerTar(layer), ImageMediaType.layer);
  writeWhole(keyPath, JSON.stringify({ digest: blob.digest, size: blob.size }));
  return blob;
}

/**
 * Build an image into the content store (`~/.cache/capstan/images/blobs`, keyed by digest: a layer built
 * twice is stored once, and every image on one base shares the base's blobs). A layer whose host files are
 * unchanged (same inode, size and times) is not even rebuilt: `layers/<key>` names its blob. The layers are uncompressed
 * OCI layers: these images travel over loopback only, where gzip would cost seconds for nothing.
 */
export function buildImage(spec: ImageSpec, options: BuildImageOptions = {}): BuiltImage {
  const dir = options.cacheDir ?? imageCacheDir();
  const layerBlobs = specLayers(spec).map((layer) => layerBlob(dir, layer));
  const config = imageConfig(
    spec,
    layerBlobs.map((b) => b.digest.slice('sha256:'.length)),
  );
  const configBlob = storeBlob(dir, config, ImageMediaType.config);
  const descriptor = ({ mediaType, digest, size }: ImageBlob) => ({ mediaType, digest, size });
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: ImageMediaType.manifest,
      config: descriptor(configBlob),
      layers: layerBlobs.map(descriptor),
    }),
  );
  return {
    name: spec.name,
    id: configBlob.digest,
    config: configBlob,
    layers: layerBlobs,
    manifest,
    manifestDigest: `sha256:${sha256(manifest)}`,
    size: configBlob.size + layerBlobs.reduce((n, l) => n + l.size, 0),
  };
}

/**
 * Write a built image as a `docker save` archive to `file` (for `ctr images import`, `docker load`), copying
 * the layers from the content store without holding them in memory.
 */
export function writeDockerArchive(image: BuiltImage, file: string): void {
  const hex = (b: ImageBlob) => b.digest.slice('sha256:'.length);
  const fd = openSync(file, 'w');
  try {
    const write = (buf: Buffer) => writeSync(fd, buf);
    const entry = (e: TarEntry, size: number, body: () => void) => {
      write(tarHeader(e, size));
      body();
      if (padding(size) > 0) write(Buffer.alloc(padding(size)));
    };
    const copy = (path: string) => {
      const src = openSync(path, 'r');
      const chunk = Buffer.alloc(1 << 20);
      try {
        for (let n = readSync(src, chunk); n > 0; n = readSync(src, chunk)) write(chunk.subarray(0, n));
      } finally {
        closeSync(src);
      }
    };
    for (const layer of image.layers) {
      entry({ name: `${hex(layer)}/`, type: '5', mode: 0o755 }, 0, () => {});
      entry({ name: `${hex(layer)}/layer.tar`, type: '0', mode: 0o644 }, layer.size, () => copy(layer.path));
    }
    const manifest = dockerManifest(image.name, hex(image.config), image.layers.map(hex));
    entry({ name: `${hex(image.config)}.json`, type: '0', mode: 0o644 }, image.config.size, () =>
      copy(image.config.path),
    );
    entry({ name: 'manifest.json', type: '0', mode: 0o644 }, manifest.length, () => write(manifest));
    write(Buffer.alloc(BLOCK * 2));
  } finally {
    closeSync(fd);
  }
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
 * Debian or npm binary (node, redis-server) runs in an image without its distribution. Libraries a program
 * `dlopen`s at run time (modules, NSS plugins) are not listed by `ldd`: add them as files.
 */
export function binaryWithLibraries(binary: string, pathInImage = binary): ImageFile[] {
  let out: string;
  try {
    out = execFileSync('ldd', [binary], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    // A static binary: ldd says "not a dynamic executable" and exits 1.
    if (/not a dynamic executable/.test(String((err as { stderr?: string }).stderr ?? ''))) {
      return [{ path: pathInImage, from: binary, mode: 0o755 }];
    }
    throw new PeerError('CAP_ERR_PEER_NOT_FOUND', `ldd ${binary} failed`, '', { cause: err });
  }
  const libs = new Set<string>();
  for (const line of out.split('\n')) {
    if (/=>\s+not found/.test(line)) {
      throw new PeerError(
        'CAP_ERR_PEER_NOT_FOUND',
        `${binary} links a library this machine lacks: ${line.trim()}`,
      );
    }
    // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or "/lib64/ld-linux-x86-64.so.2 (0x...)"
    const m = /=>\s+(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
    if (m?.[1]) libs.add(m[1]);
  }
  return [
    { path: pathInImage, from: binary, mode: 0o755 },
    ...[...libs].map((lib) => ({ path: lib, from: lib, mode: 0o755 })),
  ];
}

/**
 * The files an installed Debian package put on this machine (`dpkg -L`) that `include` matches (default:
 * all), as an image layer: regular files copied, symbolic links kept as links, folders created. Used for a
 * program's configuration and data (`nginx-common`'s `/etc/nginx/mime.types`), not for its libraries, which
 * {@link binaryWithLibraries} finds.
 */
export function debianPackageFiles(pkg: string, include: RegExp = /./): Required<ImageLayer> {
  let listing: string;
  try {
    listing = execFileSync('dpkg', ['-L', pkg], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    throw new PeerError('CAP_ERR_PEER_NOT_FOUND', `Debian package ${pkg} is not installed`, '', {
      cause: err,
    });
  }
  const layer: Required<ImageLayer> = { files: [], symlinks: {}, dirs: [] };
  for (const path of listing.split('\n')) {
    if (!path.startsWith('/') || path === '/.' || !include.test(path)) continue;
    let stat: ReturnType<typeof lstatSync>;
    try {
      stat = lstatSync(path);
    } catch {
      continue; // a conffile the admin removed
    }
    if (stat.isSymbolicLink()) layer.symlinks[path.slice(1)] = readlinkSync(path);
    else if (stat.isDirectory()) layer.dirs.push({ path: path.slice(1), mode: stat.mode & 0o7777 });
    else if (stat.isFile()) layer.files.push({ path: path.slice(1), from: path, mode: stat.mode & 0o7777 });
  }
  return layer;
}

/** Options of {@link programImageSpec}: host programs, the packages' files they need, and the config. */
export interface ProgramImageOptions extends Omit<ImageSpec, 'files'> {
  /** Host programs, each with the libraries it links (`/usr/sbin/nginx`, or `{ from, path }` to move it). */
  programs: Array<string | { from: string; path: string }>;
  /** Installed Debian packages whose files (filtered) go in too ({@link debianPackageFiles}). */
  packages?: Array<string | { name: string; include?: RegExp }>;
  /** More files (configuration written for the image), over the packages' files of the same path. */
  files?: ImageFile[];
}

/**
 * An image of programs installed on this machine (from Debian packages, an npm package, a build): each
 * program with its shared libraries, the packages' files, extra files, users and folders. The generic
 * builder behind {@link redisImageSpec} and {@link nginxImageSpec}.
 */
export function programImageSpec(options: ProgramImageOptions): ImageSpec {
  const { programs, packages = [], files = [], ...rest } = options;
  const layer: Required<ImageLayer> = {
    files: [],
    symlinks: { ...rest.symlinks },
    dirs: [...(rest.dirs ?? [])],
  };
  for (const p of packages) {
    const from = typeof p === 'string' ? debianPackageFiles(p) : debianPackageFiles(p.name, p.include);
    layer.files.push(...from.files);
    Object.assign(layer.symlinks, from.symlinks);
    layer.dirs.push(...from.dirs);
  }
  for (const p of programs) {
    layer.files.push(
      ...(typeof p === 'string' ? binaryWithLibraries(p) : binaryWithLibraries(p.from, p.path)),
    );
  }
  layer.files.push(...files);
  return { ...rest, ...layer };
}

/**
 * Redis from this machine's `redis-server` (Debian's, the `redis` peer), listening on 6379 on every address
 * of the pod, without persistence (`--save ''`, no AOF; data in /data) and without protected mode (it only
 * answers on the pod's network). Extra arguments go after: `--requirepass`, `--maxmemory`.
 */
export function redisImageSpec(name = 'capstan.local/redis:7', args: string[] = []): ImageSpec {
  return programImageSpec({
    name,
    programs: ['/usr/bin/redis-server'],
    users: [{ name: 'redis', uid: 999, home: '/data' }],
    dirs: [{ path: 'data', uid: 999, gid: 999 }, 'etc'],
    workingDir: '/data',
    entrypoint: ['/usr/bin/redis-server'],
    cmd: [
      '--bind',
      '0.0.0.0',
      '--protected-mode',
      'no',
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      '/data',
      ...args,
    ],
    user: 'redis',
    exposedPorts: [6379],
  });
}

/** Options of {@link nginxImageSpec}. */
export interface NginxImageOptions {
  /** Default `capstan.local/nginx:1`. */
  name?: string;
  /** Files served from `/usr/share/nginx/html`, path → content. Default an index.html naming the image. */
  site?: Record<string, string>;
  /** The `server { ... }` block(s); default: listen 8080, serve the site. */
  server?: string;
}

/**
 * nginx from this machine's Debian package (`nginx`, in the `node` peer): our own nginx.conf (foreground,
 * `daemon off;`, logs to the container's stdout and stderr, the pid file in /run, temp folders under
 * /var/lib/nginx as Debian compiled them in), `mime.types` from `nginx-common`, workers as `www-data`.
 * Listens on 8080 so it needs no privileged port.
 */
export function nginxImageSpec(options: NginxImageOptions = {}): ImageSpec {
  const name = options.name ?? 'capstan.local/nginx:1';
  const site = options.site ?? { 'index.html': `<h1>served by ${name}</h1>\n` };
  const server =
    options.server ??
    `server {
    listen 8080;
    root /usr/share/nginx/html;
    location / { try_files $uri $uri/ =404; }
  }`;
  const conf = `user www-data;
worker_processes 1;
daemon off;
pid /run/nginx.pid;
error_log stderr notice;
events { worker_connections 256; }
http {
  include /etc/nginx/mime.types;
  default_type application/octet-stream;
  access_log /dev/stdout;
  sendfile on;
  ${server}
}
`;
  return programImageSpec({
    name,
    programs: ['/usr/sbin/nginx'],
    packages: [{ name: 'nginx-common', include: /^\/etc\/nginx\/mime\.types$/ }],
    users: [{ name: 'www-data', uid: 33, home: '/var/www' }],
    files: [
      { path: 'etc/nginx/nginx.conf', content: conf },
      ...Object.entries(site).map(([path, content]) => ({ path: `usr/share/nginx/html/${path}`, content })),
    ],
    // Compiled-in paths Debian's nginx opens before (or whatever) its configuration says.
    dirs: ['var/log/nginx', 'var/lib/nginx', 'run', 'var/www', 'etc/nginx/conf.d'],
    // -e: the error log before the configuration is read (the compiled-in one is /var/log/nginx/error.log).
    entrypoint: ['/usr/sbin/nginx', '-e', 'stderr'],
    cmd: [],
    exposedPorts: [8080],
  });
}
