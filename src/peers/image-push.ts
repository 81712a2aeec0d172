import { createReadStream } from 'node:fs';
import { createHttpTransport, type HttpTransport, httpRequest } from '../runtime/index.ts';
import { PeerError } from './errors.ts';
import type { BuiltImage, ImageBlob } from './images.ts';

/** An image reference split the way the distribution API needs it. */
export interface ImageReference {
  /** `127.0.0.1:5000`: the registry's host and port. */
  registry: string;
  /** `capstan/redis`: the repository inside the registry. */
  repository: string;
  /** `7`, or a digest `sha256:...`. */
  tag: string;
}

/**
 * Split `registry/repository:tag` (or `@sha256:...`). The first part is a registry only when it has a dot, a
 * colon or is `localhost` (Docker's rule); references without one have no registry to push to.
 */
export function parseImageReference(ref: string): ImageReference {
  const slash = ref.indexOf('/');
  const first = slash === -1 ? '' : ref.slice(0, slash);
  if (!/[.:]/.test(first) && first !== 'localhost') {
    throw new PeerError(
      'CAP_ERR_PEER_CONFIG',
      `image reference ${ref} names no registry (host:port/name:tag)`,
    );
  }
  const rest = ref.slice(slash + 1);
  const at = rest.indexOf('@');
  if (at !== -1) return { registry: first, repository: rest.slice(0, at), tag: rest.slice(at + 1) };
  const colon = rest.lastIndexOf(':');
  return colon === -1
    ? { registry: first, repository: rest, tag: 'latest' }
    : { registry: first, repository: rest.slice(0, colon), tag: rest.slice(colon + 1) };
}

/** Options of {@link pushImage}. */
export interface PushImageOptions {
  /** Where to push; default the image's own name (which must then name a registry). */
  reference?: string;
  /**
   * Speak plain HTTP. Default: for loopback registries (`127.0.0.1`, `localhost`), as Docker and containerd
   * do; HTTPS otherwise.
   */
  plainHttp?: boolean;
  /** A transport to use instead of a fresh one (TLS settings, logging). */
  transport?: HttpTransport;
  signal?: AbortSignal;
}

/** What {@link pushImage} did. */
export interface PushResult {
  /** `registry/repository:tag` pushed. */
  reference: string;
  /** The manifest's digest, as the registry computed it (`Docker-Content-Digest`). */
  digest: string;
  /** Blobs uploaded, and blobs the registry already had (skipped). */
  uploaded: number;
  skipped: number;
}

async function check(
  res: { status: number; body: { text(): Promise<string> } },
  ok: number[],
  what: string,
): Promise<void> {
  if (ok.includes(res.status)) return;
  const text = (await res.body.text()).slice(0, 400);
  throw new PeerError('CAP_ERR_PEER_REQUEST', `${what}: registry answered ${res.status} ${text}`.trim());
}

/**
 * Push a built image to a registry with the OCI distribution API, as `docker push` does: each blob (layers,
 * config) the registry lacks (`HEAD /v2/<name>/blobs/<digest>`) is uploaded in one piece (`POST
 * /v2/<name>/blobs/uploads/`, then `PUT <location>?digest=`), then the manifest goes under the tag
 * (`PUT /v2/<name>/manifests/<tag>`). Blobs stream from the content store. No authentication: for the
 * registry peer and registries on this machine.
 */
export async function pushImage(image: BuiltImage, options: PushImageOptions = {}): Promise<PushResult> {
  const ref = parseImageReference(options.reference ?? image.name);
  const loopback = /^(127\.\d+\.\d+\.\d+|localhost|\[::1\])(:\d+)?$/.test(ref.registry);
  const scheme = (options.plainHttp ?? loopback) ? 'http' : 'https';
  const origin = `${scheme}://${ref.registry}`;
  // An Agent, not a pool bound to the registry: an upload location may name another origin.
  const http = options.transport ?? createHttpTransport({ retry: false });
  const { signal } = options;
  const base = `/v2/${ref.repository}`;
  let uploaded = 0;
  let skipped = 0;
  try {
    const pushBlob = async (blob: ImageBlob) => {
      const head = await httpRequest(http, {
        origin,
        method: 'HEAD',
        path: `${base}/blobs/${blob.digest}`,
        signal,
      });
      await head.body.dump();
      if (head.status === 200) {
        skipped++;
        return;
      }
      const start = await httpRequest(http, {
        origin,
        method: 'POST',
        path: `${base}/blobs/uploads/`,
        signal,
      });
      await check(start, [202], `start upload of ${blob.digest} to ${ref.repository}`);
      await start.body.dump();
      const location = String(start.headers.location ?? '');
      if (!location) throw new PeerError('CAP_ERR_PEER_REQUEST', `upload of ${blob.digest}: no Location`);
      // The location may be absolute or a path, and carries the registry's own state in its query.
      const url = new URL(location, origin);
      url.searchParams.set('digest', blob.digest);
      const put = await httpRequest(http, {
        origin: url.origin,
        method: 'PUT',
        path: `${url.pathname}${url.search}`,
        headers: { 'content-type': 'application/octet-stream', 'content-length': String(blob.size) },
        body: createReadStream(blob.path),
        signal,
        timeouts: { deadlineMs: 0 },
      });
      await check(put, [201], `upload of ${blob.digest} to ${ref.repository}`);
      await put.body.dump();
      uploaded++;
    };
    // One at a time: on loopback the disk is the limit, and a failure names one blob.
    for (const blob of [...image.layers, image.config]) await pushBlob(blob);
    const put = await httpRequest(http, {
      origin,
      method: 'PUT',
      path: `${base}/manifests/${ref.tag}`,
      headers: { 'content-type': JSON.parse(image.manifest.toString()).mediaType as string },
      body: image.manifest,
      signal,
    });
    await check(put, [201], `manifest ${ref.repository}:${ref.tag}`);
    await put.body.dump();
    const digest = String(put.headers['docker-content-digest'] ?? image.manifestDigest);
    return { reference: `${ref.registry}/${ref.repository}:${ref.tag}`, digest, uploaded, skipped };
  } finally {
    if (!options.transport) await http.destroy();
  }
}
