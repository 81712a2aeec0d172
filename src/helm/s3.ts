// s3:// for Helm: the downloader behind `helm repo add x s3://bucket/charts`, `helm pull` and `helm install`,
// on any S3-compatible endpoint. @aws-sdk/client-s3 is loaded on first use: importing capstan/helm does not
// load the SDK.
import type { S3Client } from '@aws-sdk/client-s3';
import { raceAbort } from '../runtime/index.ts';
import { HelmError, HelmErrorCode } from './errors.ts';
import { defineDownloader, type HelmDownloader } from './plugin.ts';

/** A bucket and a key (or key prefix) from an `s3://bucket/key` URL. */
export interface S3Location {
  readonly bucket: string;
  /** The key, without a leading slash; may be empty for the bucket's root. */
  readonly key: string;
}

/**
 * Split `s3://bucket/path/to/key`. The key keeps its case and characters (percent-escapes decoded);
 * a trailing slash is dropped (a repository URL names a prefix).
 */
export function parseS3Url(href: string): S3Location {
  const match = /^s3:\/\/([^/?#]+)(\/[^?#]*)?$/.exec(href);
  if (!match) throw new HelmError(HelmErrorCode.s3BadUrl, `not an s3://bucket/key URL: ${href}`);
  const bucket = match[1]!;
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket))
    throw new HelmError(HelmErrorCode.s3BadUrl, `not a bucket name: ${bucket} (in ${href})`);
  let key: string;
  try {
    key = decodeURIComponent((match[2] ?? '').replace(/^\/+/, '').replace(/\/+$/, ''));
  } catch (err) {
    throw new HelmError(HelmErrorCode.s3BadUrl, `bad escape in ${href}`, { cause: err });
  }
  return { bucket, key };
}

/** Join a prefix and a name into a key (`charts` + `index.yaml` → `charts/index.yaml`). */
export function s3Key(prefix: string, name: string): string {
  return prefix === '' ? name : `${prefix}/${name}`;
}

/** Where and how to reach S3 (see {@link s3SettingsFromEnv}). */
export interface S3Settings {
  /** A custom endpoint (`http://127.0.0.1:7070`); undefined for AWS itself. */
  readonly endpoint: string | undefined;
  readonly region: string;
  /** `https://endpoint/bucket/key` instead of `https://bucket.endpoint/key`. */
  readonly forcePathStyle: boolean;
  /** Explicit credentials; undefined: the SDK's default chain (environment, profiles, SSO, instance role). */
  readonly credentials:
    | { readonly accessKeyId: string; readonly secretAccessKey: string; readonly sessionToken?: string }
    | undefined;
  /** Deadline of one call, retries included (the SDK's abort does not stop its retries). Default 60 s. */
  readonly timeoutMs: number;
}

/**
 * S3 settings from the usual AWS variables: endpoint `AWS_ENDPOINT_URL_S3`, else `AWS_ENDPOINT_URL`; region
 * `AWS_REGION`, else `AWS_DEFAULT_REGION`, else `us-east-1`; credentials left to the SDK's default chain
 * (`AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN`, `AWS_PROFILE` and ~/.aws). Path-style
 * addressing is on with a custom endpoint (what S3-compatible servers expect) and off for AWS, unless
 * `AWS_S3_FORCE_PATH_STYLE` says `true` or `false`. `CAPSTAN_S3_TIMEOUT_MS` bounds each call.
 */
export function s3SettingsFromEnv(env: NodeJS.ProcessEnv = process.env): S3Settings {
  const endpoint = env['AWS_ENDPOINT_URL_S3'] || env['AWS_ENDPOINT_URL'] || undefined;
  const pathStyle = env['AWS_S3_FORCE_PATH_STYLE'];
  const timeout = Number(env['CAPSTAN_S3_TIMEOUT_MS']);
  return {
    endpoint,
    region: env['AWS_REGION'] || env['AWS_DEFAULT_REGION'] || 'us-east-1',
    forcePathStyle: pathStyle === 'true' ? true : pathStyle === 'false' ? false : endpoint !== undefined,
    credentials: undefined,
    timeoutMs: Number.isFinite(timeout) && timeout > 0 ? timeout : 60_000,
  };
}

/** What went wrong, as an S3 error names it (`NoSuchKey`, `InvalidAccessKeyId`...). */
function s3Error(err: unknown, what: string): HelmError {
  if (err instanceof HelmError) return err;
  const e = err as {
    name?: string;
    Code?: string;
    message?: string;
    $metadata?: { httpStatusCode?: number };
  };
  const name = e.Code ?? e.name ?? '';
  const status = e.$metadata?.httpStatusCode;
  const detail = `${name}${status ? ` ${status}` : ''}${e.message && e.message !== name ? `: ${e.message}` : ''}`;
  if (['NoSuchKey', 'NoSuchBucket', 'NotFound'].includes(name) || status === 404)
    return new HelmError(HelmErrorCode.s3NotFound, `${what}: not found (${detail})`, { cause: err });
  if (name === 'CredentialsProviderError')
    return new HelmError(
      HelmErrorCode.s3AccessDenied,
      `${what}: no credentials (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE)`,
      {
        cause: err,
      },
    );
  if (
    ['AccessDenied', 'InvalidAccessKeyId', 'SignatureDoesNotMatch', 'Forbidden', 'ExpiredToken'].includes(
      name,
    ) ||
    status === 403 ||
    status === 401
  )
    return new HelmError(HelmErrorCode.s3AccessDenied, `${what}: access denied (${detail})`, { cause: err });
  return new HelmError(HelmErrorCode.s3Failed, `${what}: ${detail || String(err)}`, { cause: err });
}

/** One object read back: its bytes and its ETag (for a conditional write after it). */
export interface S3Object {
  readonly body: Uint8Array;
  readonly etag: string | undefined;
}

/** A small S3 client for charts: get and put objects, with a deadline on every call. */
export class ChartBucket {
  readonly #settings: S3Settings;
  #client: Promise<S3Client> | undefined;

  constructor(settings: S3Settings) {
    this.#settings = settings;
  }

  #sdk(): Promise<S3Client> {
    this.#client ??= import('@aws-sdk/client-s3').then(
      ({ S3Client }) =>
        new S3Client({
          region: this.#settings.region,
          forcePathStyle: this.#settings.forcePathStyle,
          maxAttempts: 3,
          ...(this.#settings.endpoint ? { endpoint: this.#settings.endpoint } : {}),
          ...(this.#settings.credentials ? { credentials: this.#settings.credentials } : {}),
        }),
    );
    return this.#client;
  }

  async #call<T>(
    what: string,
    signal: AbortSignal | undefined,
    work: (abortSignal: AbortSignal) => Promise<T>,
  ): Promise<T> {
    const timeout = AbortSignal.timeout(this.#settings.timeoutMs);
    const all = signal ? AbortSignal.any([signal, timeout]) : timeout;
    try {
      // raceAbort as well as the SDK's abortSignal: the SDK keeps retrying after an abort (aws-sdk-js-v3 4871).
      return await raceAbort(work(all), all);
    } catch (err) {
      if (timeout.aborted && !signal?.aborted)
        throw new HelmError(
          HelmErrorCode.s3Failed,
          `${what}: no answer within ${this.#settings.timeoutMs} ms`,
          {
            cause: err,
          },
        );
      throw s3Error(err, what);
    }
  }

  /** The object's bytes and ETag; `CAP_ERR_HELM_S3_NOT_FOUND` when there is none. */
  async get(location: S3Location, options: { signal?: AbortSignal } = {}): Promise<S3Object> {
    const client = await this.#sdk();
    const { GetObjectCommand } = await import('@aws-sdk/client-s3');
    return this.#call(`get s3://${location.bucket}/${location.key}`, options.signal, async (abortSignal) => {
      const out = await client.send(new GetObjectCommand({ Bucket: location.bucket, Key: location.key }), {
        abortSignal,
      });
      if (!out.Body) throw new HelmError(HelmErrorCode.s3Failed, 'empty answer');
      return { body: await out.Body.transformToByteArray(), etag: out.ETag };
    });
  }

  /**
   * Write an object. `ifMatch` (an ETag) or `ifNoneMatch: '*'` make the write conditional: a server that
   * honours them answers 412 when someone else wrote first, which comes back as `{ written: false }`.
   */
  async put(
    location: S3Location,
    body: Uint8Array | string,
    options: { contentType?: string; ifMatch?: string; ifNoneMatch?: '*'; signal?: AbortSignal } = {},
  ): Promise<{ written: boolean }> {
    const client = await this.#sdk();
    const { PutObjectCommand } = await import('@aws-sdk/client-s3');
    try {
      await this.#call(`put s3://${location.bucket}/${location.key}`, options.signal, (abortSignal) =>
        client.send(
          new PutObjectCommand({
            Bucket: location.bucket,
            Key: location.key,
            Body: body,
            ...(options.contentType ? { ContentType: options.contentType } : {}),
            ...(options.ifMatch ? { IfMatch: options.ifMatch } : {}),
            ...(options.ifNoneMatch ? { IfNoneMatch: options.ifNoneMatch } : {}),
          }),
          { abortSignal },
        ),
      );
      return { written: true };
    } catch (err) {
      const cause = (err as { cause?: { name?: string; $metadata?: { httpStatusCode?: number } } }).cause;
      if (cause?.name === 'PreconditionFailed' || cause?.$metadata?.httpStatusCode === 412)
        return { written: false };
      throw err;
    }
  }

  /** Close the SDK's connections. */
  async close(): Promise<void> {
    const client = await this.#client?.catch(() => undefined);
    client?.destroy();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/**
 * The `s3://` downloader: Helm's certFile/keyFile/caFile are not used (S3 signs requests; the endpoint's TLS
 * is the system's or `AWS_CA_BUNDLE`'s), the settings come from the AWS variables ({@link s3SettingsFromEnv}).
 */
export const s3Downloader: HelmDownloader = defineDownloader({
  protocols: ['s3'],
  async fetch({ href, env, signal }) {
    const location = parseS3Url(href);
    if (location.key === '') throw new HelmError(HelmErrorCode.s3BadUrl, `no object key in ${href}`);
    await using bucket = new ChartBucket(s3SettingsFromEnv(env.vars));
    return (await bucket.get(location, { signal })).body;
  },
});
