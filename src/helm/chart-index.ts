// A chart repository is index.yaml plus archives. This reads a chart archive's Chart.yaml and adds it to an
// index the way `helm repo index --merge` would, and pushes both to an s3:// repository.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { parse, stringify } from 'yaml';
import { HelmError, HelmErrorCode } from './errors.ts';
import { ChartBucket, parseS3Url, type S3Settings, s3Key } from './s3.ts';

/** Chart.yaml as far as an index needs it; every other field is kept as it is. */
export interface ChartMetadata {
  name: string;
  version: string;
  apiVersion?: string;
  [field: string]: unknown;
}

/** Files of a tar archive (regular files only), by path. */
function tarFiles(tar: Buffer, wanted: (path: string) => boolean): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  let offset = 0;
  let longName: string | undefined;
  while (offset + 512 <= tar.length) {
    const header = tar.subarray(offset, offset + 512);
    if (header.every((b) => b === 0)) break;
    const field = (start: number, length: number) =>
      header
        .subarray(start, start + length)
        .toString('utf8')
        .replace(/\0.*$/s, '');
    const size = Number.parseInt(field(124, 12).trim() || '0', 8);
    const type = field(156, 1);
    const magic = field(257, 6);
    const prefix = magic.startsWith('ustar') ? field(345, 155) : '';
    const name = longName ?? (prefix ? `${prefix}/${field(0, 100)}` : field(0, 100));
    longName = undefined;
    const body = tar.subarray(offset + 512, offset + 512 + size);
    if (type === 'L') longName = body.toString('utf8').replace(/\0.*$/s, '');
    else if ((type === '0' || type === '' || type === '\0') && wanted(name))
      files.set(name, Buffer.from(body));
    offset += 512 + Math.ceil(size / 512) * 512;
  }
  return files;
}

/**
 * The Chart.yaml of a packaged chart (`helm package` output: a gzipped tar whose top folder is the chart).
 * Fails with `CAP_ERR_HELM_BAD_CHART` when it is not a gzipped tar, has no top-level Chart.yaml, or the
 * Chart.yaml has no name or version.
 */
export function readChartArchive(archive: Buffer, source = 'chart archive'): ChartMetadata {
  let tar: Buffer;
  try {
    tar = gunzipSync(archive);
  } catch (err) {
    throw new HelmError(HelmErrorCode.badChart, `${source} is not a gzipped tar: ${(err as Error).message}`, {
      cause: err,
    });
  }
  const files = tarFiles(tar, (path) => /^[^/]+\/Chart\.yaml$/.test(path));
  const [first] = files.values();
  if (!first) throw new HelmError(HelmErrorCode.badChart, `${source} has no <chart>/Chart.yaml`);
  let metadata: unknown;
  try {
    metadata = parse(first.toString('utf8'));
  } catch (err) {
    throw new HelmError(
      HelmErrorCode.badChart,
      `${source}: Chart.yaml is not YAML: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
  const m = metadata as Partial<ChartMetadata> | null;
  if (!m || typeof m !== 'object' || typeof m.name !== 'string' || !m.name)
    throw new HelmError(HelmErrorCode.badChart, `${source}: Chart.yaml has no name`);
  if (typeof m.version !== 'string' && typeof m.version !== 'number')
    throw new HelmError(HelmErrorCode.badChart, `${source}: Chart.yaml has no version`);
  return { ...m, name: m.name, version: String(m.version) } as ChartMetadata;
}

/** Compare SemVer versions (precedence, pre-releases before releases); unparsable ones sort by text. */
export function compareVersions(a: string, b: string): number {
  const parse = (v: string) => /^v?(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+.*)?$/.exec(v);
  const pa = parse(a);
  const pb = parse(b);
  if (!pa || !pb) return a.localeCompare(b);
  for (let i = 1; i <= 3; i++) {
    const d = Number(pa[i]) - Number(pb[i]);
    if (d !== 0) return d;
  }
  if (pa[4] === pb[4]) return 0;
  if (pa[4] === undefined) return 1;
  if (pb[4] === undefined) return -1;
  const xa = pa[4].split('.');
  const xb = pb[4].split('.');
  for (let i = 0; i < Math.max(xa.length, xb.length); i++) {
    if (xa[i] === undefined) return -1;
    if (xb[i] === undefined) return 1;
    const na = /^\d+$/.test(xa[i]!);
    const nb = /^\d+$/.test(xb[i]!);
    const d = na && nb ? Number(xa[i]) - Number(xb[i]) : na ? -1 : nb ? 1 : xa[i]!.localeCompare(xb[i]!);
    if (d !== 0) return d;
  }
  return 0;
}

/** A repository index: `apiVersion: v1`, `entries` by chart name, newest version first. */
export interface ChartIndex {
  apiVersion: string;
  entries: Record<string, Array<Record<string, unknown>>>;
  generated?: string;
  [field: string]: unknown;
}

/** Parse index.yaml; `CAP_ERR_HELM_BAD_INDEX` when it is not a repository index. */
export function parseChartIndex(text: string, source = 'index.yaml'): ChartIndex {
  let index: unknown;
  try {
    index = parse(text);
  } catch (err) {
    throw new HelmError(HelmErrorCode.badIndex, `${source} is not YAML: ${(err as Error).message}`, {
      cause: err,
    });
  }
  const i = index as Partial<ChartIndex> | null;
  if (!i || typeof i !== 'object' || typeof i.apiVersion !== 'string')
    throw new HelmError(HelmErrorCode.badIndex, `${source} has no apiVersion: not a chart repository index`);
  if (
    i.entries !== undefined &&
    (typeof i.entries !== 'object' || i.entries === null || Array.isArray(i.entries))
  )
    throw new HelmError(HelmErrorCode.badIndex, `${source}: entries is not a map of chart names`);
  return { ...i, apiVersion: i.apiVersion, entries: i.entries ?? {} } as ChartIndex;
}

/** Options of {@link addChartToIndex}. */
export interface AddChartOptions {
  /** URLs of the archive, relative to the repository (`shop-1.0.0.tgz`) or absolute. */
  urls: string[];
  /** `sha256:`-less hex digest of the archive, as helm writes it. */
  digest: string;
  /** Replace an entry of the same version instead of failing with `CAP_ERR_HELM_USAGE`. */
  replace?: boolean;
  /** Timestamp of the entry and the index. Default now. */
  now?: Date;
}

/** Add one chart version to an index (a new one when `index` is undefined); returns the new index. */
export function addChartToIndex(
  index: ChartIndex | undefined,
  chart: ChartMetadata,
  options: AddChartOptions,
): ChartIndex {
  const now = (options.now ?? new Date()).toISOString();
  const next: ChartIndex = index
    ? { ...index, entries: { ...index.entries } }
    : { apiVersion: 'v1', entries: {} };
  const versions = [...(next.entries[chart.name] ?? [])];
  const existing = versions.findIndex((v) => String(v['version']) === chart.version);
  if (existing !== -1) {
    if (!options.replace)
      throw new HelmError(
        HelmErrorCode.usage,
        `${chart.name} ${chart.version} is already in the repository (push with --force to replace it)`,
      );
    versions.splice(existing, 1);
  }
  versions.push({ ...chart, created: now, digest: options.digest, urls: options.urls });
  versions.sort((a, b) => compareVersions(String(b['version']), String(a['version'])));
  next.entries[chart.name] = versions;
  next.generated = now;
  return next;
}

/** index.yaml text for an index. */
export function formatChartIndex(index: ChartIndex): string {
  return stringify(index);
}

/** Options of {@link pushChart}. */
export interface PushChartOptions {
  /** Replace a version already in the index. */
  force?: boolean;
  signal?: AbortSignal;
  /** Tries of the read-modify-write of index.yaml when another push wins the race. Default 5. */
  attempts?: number;
}

/** What {@link pushChart} did. */
export interface PushedChart {
  readonly name: string;
  readonly version: string;
  /** `s3://bucket/prefix/name-version.tgz`. */
  readonly url: string;
  readonly digest: string;
}

/**
 * Push a packaged chart to an s3:// repository: upload the archive next to index.yaml and add it to the index
 * (created if missing). The index is written conditionally on the ETag it was read with, and read again when
 * another writer got there first, so concurrent pushes do not lose each other's entries (on servers that honour
 * `If-Match`; others simply overwrite).
 */
export async function pushChart(
  archivePath: string,
  repositoryUrl: string,
  settings: S3Settings,
  options: PushChartOptions = {},
): Promise<PushedChart> {
  const repo = parseS3Url(repositoryUrl);
  let archive: Buffer;
  try {
    archive = readFileSync(archivePath);
  } catch (err) {
    throw new HelmError(HelmErrorCode.badChart, `cannot read ${archivePath}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  const chart = readChartArchive(archive, archivePath);
  const digest = createHash('sha256').update(archive).digest('hex');
  const file = `${chart.name}-${chart.version}.tgz`;
  const indexLocation = { bucket: repo.bucket, key: s3Key(repo.key, 'index.yaml') };
  await using bucket = new ChartBucket(settings);
  const signal = options.signal;
  const attempts = options.attempts ?? 5;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    let current: ChartIndex | undefined;
    let etag: string | undefined;
    try {
      const got = await bucket.get(indexLocation, signal ? { signal } : {});
      current = parseChartIndex(
        Buffer.from(got.body).toString('utf8'),
        `s3://${repo.bucket}/${indexLocation.key}`,
      );
      etag = got.etag;
    } catch (err) {
      if (
        (err as HelmError).code !== HelmErrorCode.s3NotFound ||
        (err as Error).message.includes('NoSuchBucket')
      )
        throw err;
    }
    // Checked before the upload: a refused push leaves the bucket as it was.
    const next = addChartToIndex(current, chart, { urls: [file], digest, replace: options.force ?? false });
    if (attempt === 1) {
      await bucket.put({ bucket: repo.bucket, key: s3Key(repo.key, file) }, archive, {
        contentType: 'application/gzip',
        ...(signal ? { signal } : {}),
      });
    }
    const { written } = await bucket.put(indexLocation, formatChartIndex(next), {
      contentType: 'application/x-yaml',
      ...(etag ? { ifMatch: etag } : { ifNoneMatch: '*' as const }),
      ...(signal ? { signal } : {}),
    });
    if (written)
      return {
        name: chart.name,
        version: chart.version,
        url: `s3://${repo.bucket}/${s3Key(repo.key, file)}`,
        digest,
      };
  }
  throw new HelmError(HelmErrorCode.s3Failed, `index.yaml kept changing under the push (${attempts} tries)`);
}
