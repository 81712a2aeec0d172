import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { ensurePeers, PeerError, type PeerProcess, peerBinary, startPeerProcess } from '../peers/index.ts';
import { canConnect, createHttpTransport, freePort, httpRequest, makeProcessDir } from '../runtime/index.ts';

// Like fetch before it: one pooled client for every instance, no transparent retries (the callers poll).
const http = createHttpTransport({ retry: false });

/** Options of {@link startS3}. */
export interface StartS3Options {
  /** Root credentials. Random by default. */
  accessKeyId?: string;
  secretAccessKey?: string;
  /** Region the gateway signs for. Default `us-east-1`. */
  region?: string;
  /**
   * Create this bucket before returning (through the S3 API, so it is a bucket in every respect).
   * Needs the optional `@aws-sdk/client-s3` package.
   */
  bucket?: string;
  /** Default 60 s. */
  readyTimeoutMs?: number;
}

/** A running S3-compatible server (Versity Gateway over a private local folder). */
export interface S3Peer {
  /** `http://127.0.0.1:port`; use path-style addressing (`forcePathStyle: true`). */
  readonly endpoint: string;
  readonly port: number;
  /** The server's process id. */
  readonly pid: number;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly region: string;
  /** The bucket made at start, if one was asked for. */
  readonly bucket?: string;
  /** Folder whose sub-folders are the buckets and whose files are the objects. Removed on stop. */
  readonly dataDir: string;
  logTail(lines?: number): string;
  /** Stops the server and removes its folder. Idempotent. */
  stop(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Path of the pinned `versitygw` binary, building it on first use (see scripts/peers/versions.json). */
export function s3Binary(): string {
  ensurePeers(['s3']);
  return peerBinary('s3', 'versitygw');
}

/**
 * Start an S3-compatible server: Versity Gateway (`versitygw`, Apache-2.0, built from the Go module
 * proxy) with its posix backend on a private temp folder, on a free loopback port, with random root
 * credentials. Object metadata lives in extended attributes, so the temp dir's filesystem must support
 * `user.*` xattrs (ext4, xfs, btrfs and recent tmpfs do).
 */
export async function startS3(options: StartS3Options = {}): Promise<S3Peer> {
  const binary = s3Binary();
  const accessKeyId = options.accessKeyId ?? `capstan${randomBytes(6).toString('hex')}`;
  const secretAccessKey = options.secretAccessKey ?? randomBytes(20).toString('hex');
  const region = options.region ?? 'us-east-1';
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  const dir = makeProcessDir('s3');
  const dataDir = join(dir, 'data');
  mkdirSync(dataDir);

  const ready = async (): Promise<boolean> => {
    if (!(await canConnect(port))) return false;
    // Any S3 answer (an unsigned request gets an XML AccessDenied) proves the API is being served.
    const res = await httpRequest(http, { origin: endpoint, path: '/', timeouts: { deadlineMs: 5_000 } });
    const body = await res.body.text();
    return body.includes('<Error>') || body.includes('ListAllMyBucketsResult');
  };

  const peer: PeerProcess = await startPeerProcess({
    name: 's3',
    command: binary,
    args: ['--port', `127.0.0.1:${port}`, '--region', region, 'posix', dataDir],
    dir,
    // Root credentials through the environment (versitygw's ROOT_ACCESS_KEY_ID / ROOT_SECRET_ACCESS_KEY), not
    // flags: a command line is readable by every local user in /proc/<pid>/cmdline, the environment only by
    // the process's owner.
    env: {
      PATH: process.env.PATH,
      HOME: dir,
      ROOT_ACCESS_KEY_ID: accessKeyId,
      ROOT_SECRET_ACCESS_KEY: secretAccessKey,
    },
    ready,
    readyTimeoutMs: options.readyTimeoutMs ?? 60_000,
  });

  if (options.bucket) {
    try {
      const { S3Client, CreateBucketCommand } = await import('@aws-sdk/client-s3');
      const client = new S3Client({
        endpoint,
        region,
        forcePathStyle: true,
        credentials: { accessKeyId, secretAccessKey },
      });
      try {
        await client.send(new CreateBucketCommand({ Bucket: options.bucket }));
      } finally {
        client.destroy();
      }
    } catch (err) {
      await peer.stop();
      throw new PeerError('CAP_ERR_PEER_INIT', `could not create bucket "${options.bucket}"`, '', {
        cause: err,
      });
    }
  }

  return {
    endpoint,
    port,
    pid: peer.pid,
    accessKeyId,
    secretAccessKey,
    region,
    bucket: options.bucket,
    dataDir,
    logTail: (lines) => peer.logTail(lines),
    stop: () => peer.stop(),
    [Symbol.asyncDispose]: () => peer.stop(),
  };
}
