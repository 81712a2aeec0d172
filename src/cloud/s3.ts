// The S3 adapter of the ObjectStore port on @aws-sdk/client-s3 (imported lazily: the CLI's --help must not
// load it). Every call runs under a deadline of our own: the SDK's abortSignal does not stop its retries nor
// cover the credential look-up (aws-sdk-js-v3 4871, 5810), so the call is also raced against the deadline.
import type { S3Client } from '@aws-sdk/client-s3';
import { CloudError, CloudErrorCode } from './errors.ts';
import type { DeleteOutcome, ObjectStore, StoredObject } from './object-store.ts';

/** How to reach a bucket; unset fields come from the standard AWS env vars and config files. */
export interface S3StoreOptions {
  readonly bucket: string;
  /** A custom endpoint (MinIO, Versity, ...): path-style addressing is used then. */
  readonly endpoint?: string;
  readonly region?: string;
  readonly profile?: string;
  readonly credentials?: {
    readonly accessKeyId: string;
    readonly secretAccessKey: string;
    readonly sessionToken?: string;
  };
  /** Deadline of one call, its retries and credential look-up included (default 30 s). */
  readonly timeoutMs?: number;
  /** Attempts of one call, the first included (default 3). */
  readonly maxAttempts?: number;
}

const AUTH_ERRORS = new Set([
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'ExpiredToken',
  'InvalidToken',
  'CredentialsProviderError',
  'AuthorizationHeaderMalformed',
]);

/** Runs `call` with a signal that fires at the deadline or when `outer` does, and gives up then even if the SDK does not. */
async function withDeadline<T>(
  what: string,
  timeoutMs: number,
  outer: AbortSignal | undefined,
  call: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const timeout = AbortSignal.timeout(timeoutMs);
  const signal = outer ? AbortSignal.any([outer, timeout]) : timeout;
  signal.throwIfAborted();
  let onAbort: (() => void) | undefined;
  const abandoned = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([call(signal), abandoned]);
  } catch (error) {
    throw translate(what, timeoutMs, outer, timeout, error);
  } finally {
    if (onAbort) signal.removeEventListener('abort', onAbort);
  }
}

function translate(
  what: string,
  timeoutMs: number,
  outer: AbortSignal | undefined,
  timeout: AbortSignal,
  error: unknown,
): unknown {
  if (outer?.aborted) return outer.reason ?? error;
  if (timeout.aborted) {
    return new CloudError(
      CloudErrorCode.deadline,
      `${what}: no answer within ${timeoutMs} ms (retries included)`,
      {
        cause: error,
      },
    );
  }
  const name = (error as { name?: string } | null)?.name ?? '';
  const message = error instanceof Error ? error.message : String(error);
  if (AUTH_ERRORS.has(name) || /credential/i.test(name)) {
    return new CloudError(CloudErrorCode.auth, `${what}: credentials refused (${name}: ${message})`, {
      cause: error,
    });
  }
  return new CloudError(CloudErrorCode.request, `${what}: ${name ? `${name}: ` : ''}${message}`, {
    cause: error,
  });
}

/** An {@link ObjectStore} over one S3 bucket. */
export async function createS3Store(options: S3StoreOptions): Promise<ObjectStore & { close(): void }> {
  if (!options.bucket) throw new CloudError(CloudErrorCode.invalid, 'no bucket given');
  const timeoutMs = options.timeoutMs ?? 30_000;
  if (!(timeoutMs > 0))
    throw new CloudError(CloudErrorCode.invalid, `timeout must be above 0, got ${timeoutMs}`);
  const sdk = await import('@aws-sdk/client-s3');
  const client: S3Client = new sdk.S3Client({
    ...(options.endpoint ? { endpoint: options.endpoint, forcePathStyle: true } : {}),
    ...(options.region ? { region: options.region } : {}),
    ...(options.credentials ? { credentials: options.credentials } : {}),
    ...(options.profile ? { profile: options.profile } : {}),
    maxAttempts: options.maxAttempts ?? 3,
  });
  const bucket = options.bucket;
  return {
    async *listPages(prefix, signal) {
      // paginateListObjectsV2 has no per-page deadline; drive its iterator one page at a time under ours.
      // The paginator hands its extra argument to each send: a getter gives every page its own signal.
      let pageSignal: AbortSignal | undefined;
      const sendOptions = {
        get abortSignal() {
          return pageSignal;
        },
      };
      const pages = sdk.paginateListObjectsV2(
        { client, pageSize: 1000 },
        { Bucket: bucket, ...(prefix ? { Prefix: prefix } : {}) },
        sendOptions,
      );
      const iterator = pages[Symbol.asyncIterator]();
      for (;;) {
        const next = await withDeadline(`list s3://${bucket}/${prefix ?? ''}`, timeoutMs, signal, (s) => {
          pageSignal = s;
          return iterator.next();
        });
        if (next.done) return;
        const page: StoredObject[] = (next.value.Contents ?? []).map((object) => ({
          key: object.Key ?? '',
          size: object.Size ?? 0,
          lastModified: object.LastModified ?? new Date(0),
        }));
        yield page;
      }
    },
    async deleteBatch(keys, signal): Promise<DeleteOutcome> {
      const out = await withDeadline(
        `delete ${keys.length} objects from s3://${bucket}`,
        timeoutMs,
        signal,
        (s) =>
          client.send(
            new sdk.DeleteObjectsCommand({
              Bucket: bucket,
              Delete: { Objects: keys.map((Key) => ({ Key })), Quiet: false },
            }),
            { abortSignal: s },
          ),
      );
      return {
        deleted: (out.Deleted ?? []).map((d) => d.Key ?? ''),
        failed: (out.Errors ?? []).map((e) => ({ key: e.Key ?? '', message: `${e.Code}: ${e.Message}` })),
      };
    },
    close() {
      client.destroy();
    },
  };
}
