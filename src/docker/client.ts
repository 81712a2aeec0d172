import { statSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  createHttpTransport,
  HttpError,
  type HttpLogSink,
  type HttpResponse,
  type HttpTransport,
  isConnectionFailure,
  isTlsVerifyFailure,
} from '../runtime/index.ts';
import {
  DOCKER_SKIP_VERIFY_ENV,
  type DockerEndpoint,
  type DockerTlsOptions,
  resolveEndpoint,
} from './connection.ts';
import { type DemuxOptions, demux, demuxChunks, type Frame } from './demux.ts';
import { codeForStatus, DockerError, DockerErrorCode } from './errors.ts';
import { ndjson, throwIfStreamError } from './ndjson.ts';
import { formatDockerTime, toNs } from './time.ts';
import type {
  CallOptions,
  ContainerCreateSpec,
  ContainerInspect,
  ContainerSummary,
  DockerEvent,
  ExecResult,
  Filters,
  ImageSummary,
  ProgressEvent,
} from './types.ts';

/** The newest Engine API version this client speaks; the daemon's is used when older. */
export const CLIENT_API_VERSION = '1.45';

/** Options of {@link DockerClient}. */
export interface DockerClientOptions {
  /** `unix:///path`, `tcp://host:2376`, ... Default: `DOCKER_HOST`, else `/var/run/docker.sock`. */
  host?: string;
  /** Environment to read `DOCKER_*` from. Default `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** Pin the API version (else negotiated with `/_ping`). */
  apiVersion?: string;
  /** Where to log one line per request (method, path without query, status, timings); none by default. */
  log?: HttpLogSink;
  /**
   * TLS settings over the environment's. Giving `tls` turns TLS on for a `tcp://` host (as `DOCKER_TLS`
   * does). The daemon's certificate is always verified unless `insecureSkipVerify` says otherwise.
   */
  tls?: DockerTlsOptions;
  /**
   * Where the client's warnings go (today one: TLS verification is off), once per client. Default
   * `process.emitWarning` (printed on stderr).
   */
  onWarning?: (message: string) => void;
}

/** A point in time for `since` / `until`: Date, Unix seconds, RFC3339(Nano), or a duration ago (`'10m'`). */
export type TimeSpec = Date | number | string;

/** Options of {@link DockerClient.logs}. */
export interface LogsOptions extends CallOptions {
  follow?: boolean;
  stdout?: boolean;
  stderr?: boolean;
  since?: TimeSpec;
  until?: TimeSpec;
  /** Number of lines from the end, or `'all'`. */
  tail?: number | 'all';
  timestamps?: boolean;
  /** The container has a TTY; looked up with inspect when omitted. */
  tty?: boolean;
  onTruncated?: DemuxOptions['onTruncated'];
}

/** Options of {@link DockerClient.events}. */
export interface EventsOptions extends CallOptions {
  since?: TimeSpec;
  until?: TimeSpec;
  filters?: Filters;
}

/** Options of {@link DockerClient.exec}. */
export interface ExecOptions extends CallOptions {
  env?: string[];
  user?: string;
  workingDir?: string;
  tty?: boolean;
  /** Called with each output frame as it arrives (output is still collected in the result). */
  onFrame?: (frame: Frame) => void;
}

interface RequestSpec extends CallOptions {
  method?: 'GET' | 'POST' | 'DELETE' | 'PUT' | 'HEAD';
  path: string;
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  rawBody?: Buffer | Readable | AsyncIterable<Uint8Array>;
  headers?: Record<string, string>;
  /** Long-lived response (logs -f, events): no body timeout. */
  streaming?: boolean;
  /** Skip the `/vX.Y` prefix (`/_ping`). */
  unversioned?: boolean;
}

function encodeFilters(filters: Filters | undefined): string | undefined {
  if (!filters) return undefined;
  const out: Record<string, string[]> = {};
  for (const [k, v] of Object.entries(filters)) {
    if (v === undefined) continue;
    out[k] = Array.isArray(v) ? v : [v];
  }
  return Object.keys(out).length ? JSON.stringify(out) : undefined;
}

function compareVersions(a: string, b: string): number {
  const [am = 0, an = 0] = a.split('.').map(Number);
  const [bm = 0, bn = 0] = b.split('.').map(Number);
  return am - bm || an - bn;
}

/** True when `err` means the daemon could not be reached or the connection broke (worth a retry). */
export function isConnectionError(err: unknown): boolean {
  if (err instanceof DockerError) return err.code === DockerErrorCode.connect;
  return isConnectionFailure(err);
}

/** The Node or undici error under the transport's wrapper: messages and `cause` show what the socket said. */
function underlying(err: unknown): unknown {
  return err instanceof HttpError && err.cause !== undefined ? err.cause : err;
}

/**
 * Docker Engine API client over undici. Connects like the Docker CLI (`DOCKER_HOST`, TLS variables),
 * negotiates the API version once (`/_ping`), streams logs, events, exec and pull progress as async
 * iterables, and raises {@link DockerError} with the daemon's message and HTTP status.
 */
export class DockerClient {
  /** The resolved endpoint. */
  readonly endpoint: DockerEndpoint;
  readonly #http: HttpTransport;
  #version: Promise<string> | undefined;
  #closed = false;

  constructor(options: DockerClientOptions = {}) {
    this.endpoint = resolveEndpoint(options.host, options.env ?? process.env, {
      ...(options.tls ? { tls: options.tls } : {}),
    });
    if (this.endpoint.tls && !this.endpoint.tls.rejectUnauthorized) {
      const how = options.tls?.insecureSkipVerify ? 'tls.insecureSkipVerify' : `${DOCKER_SKIP_VERIFY_ENV}=1`;
      const message =
        `TLS verification of the Docker daemon at ${this.endpoint.host} is off (${how}): anyone on the ` +
        'network path can read and change this traffic';
      // Said once, here, not per request or reconnect: a warning repeated per line would drown the logs.
      if (options.onWarning) options.onWarning(message);
      else process.emitWarning(message, { code: 'CAP_DOCKER_TLS_INSECURE' });
    }
    const pinned = options.apiVersion ?? this.endpoint.apiVersion;
    if (pinned) this.#version = Promise.resolve(pinned);
    this.#http = createHttpTransport({
      origin: this.endpoint.origin,
      ...(this.endpoint.socketPath ? { socketPath: this.endpoint.socketPath } : {}),
      ...(this.endpoint.tls ? { tls: { ...this.endpoint.tls } } : {}),
      // Idle keep-alive sockets die with a daemon restart; keep them short-lived.
      keepAliveTimeoutMs: 4_000,
      keepAliveMaxTimeoutMs: 10_000,
      // No transparent retries: a failed call must surface, because the followers of logs and events
      // reconnect themselves and tell a daemon restart from a cut connection by what failed and when.
      retry: false,
      ...(options.log ? { log: options.log } : {}),
    });
  }

  /** The API version in use: min(ours, the daemon's), asked once per client. */
  apiVersion(options: CallOptions = {}): Promise<string> {
    if (!this.#version) {
      const p = this.#negotiate(options);
      this.#version = p;
      // A failed negotiation (daemon down) must be retried on the next call, not cached.
      p.catch(() => {
        if (this.#version === p) this.#version = undefined;
      });
    }
    return this.#version;
  }

  async #negotiate(options: CallOptions): Promise<string> {
    const res = await this.#send({ path: '/_ping', unversioned: true, ...options });
    await res.body.dump();
    const server = res.headers['api-version'];
    const v = typeof server === 'string' ? server : undefined;
    if (!v) return '1.24';
    return compareVersions(v, CLIENT_API_VERSION) < 0 ? v : CLIENT_API_VERSION;
  }

  async #send(spec: RequestSpec): Promise<HttpResponse> {
    if (this.#closed) throw new DockerError(DockerErrorCode.connect, 'client is closed');
    const version = spec.unversioned ? '' : `/v${await this.apiVersion({ signal: spec.signal })}`;
    try {
      return await this.#http.request({
        method: spec.method ?? 'GET',
        path: `${version}${spec.path}`,
        ...(spec.query ? { query: spec.query } : {}),
        ...(spec.headers ? { headers: spec.headers } : {}),
        ...(spec.body !== undefined ? { json: spec.body } : spec.rawBody ? { body: spec.rawBody } : {}),
        ...(spec.signal ? { signal: spec.signal } : {}),
        ...(spec.streaming ? { stream: true } : {}),
      });
    } catch (err) {
      if (spec.signal?.aborted) throw spec.signal.reason ?? err;
      const cause = underlying(err);
      if (isTlsVerifyFailure(err)) {
        throw new DockerError(
          DockerErrorCode.tls,
          `the Docker daemon at ${this.endpoint.host} presented a certificate that does not verify (the CA ` +
            `in use is ca.pem in DOCKER_CERT_PATH, else the system's; the name must be the host's): ` +
            (cause as Error).message,
          { cause },
        );
      }
      if (isConnectionFailure(err)) {
        throw new DockerError(
          DockerErrorCode.connect,
          `cannot reach the Docker daemon at ${this.endpoint.host}: ${(cause as Error).message}`,
          { cause },
        );
      }
      throw err;
    }
  }

  /**
   * For a unix socket, the socket file's device and inode. A daemon that restarted has made a new socket,
   * so a change tells a restart from a cut connection even when the daemon was back before any retry.
   * Undefined for TCP and when the socket is missing.
   */
  daemonSocketIdentity(): string | undefined {
    if (!this.endpoint.socketPath) return undefined;
    try {
      const st = statSync(this.endpoint.socketPath);
      return `${st.dev}:${st.ino}`;
    } catch {
      return undefined;
    }
  }

  /** Send a request; a 4xx/5xx answer becomes a {@link DockerError} carrying the daemon's message. */
  async #request(spec: RequestSpec): Promise<HttpResponse> {
    const res = await this.#send(spec);
    if (res.status < 400) return res;
    let message = '';
    try {
      const text = await res.body.text();
      try {
        message = (JSON.parse(text) as { message?: string }).message ?? text;
      } catch {
        message = text;
      }
    } catch {}
    message = message.trim();
    throw new DockerError(
      codeForStatus(res.status),
      `${spec.method ?? 'GET'} ${spec.path}: ${res.status} ${message || 'error'}`,
      { status: res.status, daemonMessage: message },
    );
  }

  async #json<T>(spec: RequestSpec): Promise<T> {
    const res = await this.#request(spec);
    if (res.status === 204 || res.status === 304) {
      await res.body.dump();
      return undefined as T;
    }
    const text = await res.body.text();
    return (text ? JSON.parse(text) : undefined) as T;
  }

  /** `GET /_ping`: resolves when the daemon answers. */
  async ping(options: CallOptions = {}): Promise<void> {
    const res = await this.#request({ path: '/_ping', unversioned: true, ...options });
    await res.body.dump();
  }

  /** `GET /version`. */
  version(
    options: CallOptions = {},
  ): Promise<{ Version: string; ApiVersion: string; MinAPIVersion?: string }> {
    return this.#json({ path: '/version', ...options });
  }

  /** `GET /containers/json`; `all` includes stopped containers; filters like `{ label: ['app=web'] }`. */
  listContainers(options: CallOptions & { all?: boolean; filters?: Filters; limit?: number } = {}) {
    return this.#json<ContainerSummary[]>({
      path: '/containers/json',
      query: { all: options.all, limit: options.limit, filters: encodeFilters(options.filters) },
      signal: options.signal,
    });
  }

  /** `GET /containers/{id}/json`. 404 raises `CAP_ERR_DOCKER_NOT_FOUND`. */
  inspectContainer(id: string, options: CallOptions = {}): Promise<ContainerInspect> {
    return this.#json({ path: `/containers/${encodeURIComponent(id)}/json`, ...options });
  }

  /** `POST /containers/create`. 409 (`CAP_ERR_DOCKER_CONFLICT`) when the name is taken. */
  createContainer(
    spec: ContainerCreateSpec,
    options: CallOptions & { name?: string } = {},
  ): Promise<{ Id: string; Warnings: string[] | null }> {
    return this.#json({
      method: 'POST',
      path: '/containers/create',
      query: { name: options.name },
      body: spec,
      signal: options.signal,
    });
  }

  /** `POST /containers/{id}/start` (already started is not an error). */
  async startContainer(id: string, options: CallOptions = {}): Promise<void> {
    await this.#json({ method: 'POST', path: `/containers/${encodeURIComponent(id)}/start`, ...options });
  }

  /** `POST /containers/{id}/stop`; `timeout` seconds before SIGKILL (already stopped is not an error). */
  async stopContainer(id: string, options: CallOptions & { timeout?: number } = {}): Promise<void> {
    await this.#json({
      method: 'POST',
      path: `/containers/${encodeURIComponent(id)}/stop`,
      query: { t: options.timeout },
      signal: options.signal,
    });
  }

  /** `POST /containers/{id}/restart`. */
  async restartContainer(id: string, options: CallOptions & { timeout?: number } = {}): Promise<void> {
    await this.#json({
      method: 'POST',
      path: `/containers/${encodeURIComponent(id)}/restart`,
      query: { t: options.timeout },
      signal: options.signal,
    });
  }

  /** `POST /containers/{id}/kill`. 409 when the container is not running. */
  async killContainer(id: string, options: CallOptions & { killSignal?: string } = {}): Promise<void> {
    await this.#json({
      method: 'POST',
      path: `/containers/${encodeURIComponent(id)}/kill`,
      query: { signal: options.killSignal },
      signal: options.signal,
    });
  }

  /** `DELETE /containers/{id}`; `force` kills a running one. */
  async removeContainer(
    id: string,
    options: CallOptions & { force?: boolean; volumes?: boolean } = {},
  ): Promise<void> {
    await this.#json({
      method: 'DELETE',
      path: `/containers/${encodeURIComponent(id)}`,
      query: { force: options.force, v: options.volumes },
      signal: options.signal,
    });
  }

  /** `POST /containers/{id}/wait`: resolves with the exit code once the condition is met. */
  async waitContainer(
    id: string,
    options: CallOptions & { condition?: 'not-running' | 'next-exit' | 'removed' } = {},
  ): Promise<{ StatusCode: number; Error?: { Message: string } | null }> {
    return this.#json({
      method: 'POST',
      path: `/containers/${encodeURIComponent(id)}/wait`,
      query: { condition: options.condition },
      signal: options.signal,
      streaming: true,
    });
  }

  /** `GET /images/json`. */
  listImages(options: CallOptions & { all?: boolean; filters?: Filters } = {}): Promise<ImageSummary[]> {
    return this.#json({
      path: '/images/json',
      query: { all: options.all, filters: encodeFilters(options.filters) },
      signal: options.signal,
    });
  }

  /** `GET /images/{name}/json`. */
  inspectImage(name: string, options: CallOptions = {}): Promise<{ Id: string; RepoTags: string[] }> {
    return this.#json({ path: `/images/${encodeURIComponent(name)}/json`, ...options });
  }

  /** `DELETE /images/{name}`. */
  async removeImage(name: string, options: CallOptions & { force?: boolean } = {}): Promise<void> {
    await this.#json({
      method: 'DELETE',
      path: `/images/${encodeURIComponent(name)}`,
      query: { force: options.force },
      signal: options.signal,
    });
  }

  /**
   * `POST /images/create?fromImage=`: pull, reading the progress stream to its end (an unread stream
   * would stall the daemon). A failure reported inside the 200 body raises `CAP_ERR_DOCKER_STREAM`.
   * `ref` is what `docker pull` takes: `name`, `name:tag`, `name@sha256:...` (a digest wins over a tag).
   * Returns the number of progress objects seen and the last status line.
   */
  async pullImage(
    ref: string,
    options: CallOptions & {
      onProgress?: (event: ProgressEvent) => void;
      platform?: string;
      auth?: RegistryAuth;
    } = {},
  ): Promise<{ events: number; lastStatus: string | undefined }> {
    const { name, tag, digest } = parseImageRef(ref);
    const res = await this.#request({
      method: 'POST',
      path: '/images/create',
      query: { fromImage: name, tag: digest ?? tag ?? 'latest', platform: options.platform },
      headers: { 'x-registry-auth': encodeRegistryAuth(options.auth) },
      signal: options.signal,
      streaming: true,
    });
    return consumeProgress(res.body, `pull ${ref}`, options.onProgress);
  }

  /**
   * `POST /images/{name}/push`: push `name:tag` (default `latest`) to its registry, reading the progress
   * stream to its end. A failure inside the 200 body (registry refused, unreachable) raises
   * `CAP_ERR_DOCKER_STREAM`. Returns the pushed manifest's digest, from the daemon's final aux object.
   */
  async pushImage(
    ref: string,
    options: CallOptions & { onProgress?: (event: ProgressEvent) => void; auth?: RegistryAuth } = {},
  ): Promise<{ events: number; digest: string | undefined }> {
    const { name, tag, digest } = parseImageRef(ref);
    if (digest !== undefined) {
      throw new DockerError(DockerErrorCode.badRequest, `cannot push a digest reference: ${ref}`);
    }
    const res = await this.#request({
      method: 'POST',
      path: `/images/${encodeURIComponent(name)}/push`,
      query: { tag: tag ?? 'latest' },
      headers: { 'x-registry-auth': encodeRegistryAuth(options.auth) },
      signal: options.signal,
      streaming: true,
    });
    let pushed: string | undefined;
    const { events } = await consumeProgress(res.body, `push ${ref}`, (event) => {
      if (event.aux?.Digest) pushed = event.aux.Digest;
      options.onProgress?.(event);
    });
    return { events, digest: pushed };
  }

  /** `POST /images/{source}/tag`: give image `source` (name or id) the reference `ref` (`repo:tag`). */
  async tagImage(source: string, ref: string, options: CallOptions = {}): Promise<void> {
    const { name, tag, digest } = parseImageRef(ref);
    if (digest !== undefined) {
      throw new DockerError(DockerErrorCode.badRequest, `a tag cannot be a digest: ${ref}`);
    }
    await this.#json({
      method: 'POST',
      path: `/images/${encodeURIComponent(source)}/tag`,
      query: { repo: name, tag: tag ?? 'latest' },
      signal: options.signal,
    });
  }

  /**
   * `POST /images/create?fromSrc=-`: import a root filesystem tarball as an image (`repo:tag`).
   * Returns the new image id.
   */
  async importImage(
    tarball: Buffer | Readable | AsyncIterable<Uint8Array>,
    ref: string,
    options: CallOptions & { onProgress?: (event: ProgressEvent) => void } = {},
  ): Promise<string> {
    const { name: repo, tag } = parseImageRef(ref);
    const res = await this.#request({
      method: 'POST',
      path: '/images/create',
      query: { fromSrc: '-', repo, tag: tag ?? 'latest' },
      rawBody: tarball,
      headers: { 'content-type': 'application/x-tar' },
      signal: options.signal,
      streaming: true,
    });
    let id = '';
    await consumeProgress(res.body, `import ${ref}`, (event) => {
      if (event.status?.startsWith('sha256:')) id = event.status;
      options.onProgress?.(event);
    });
    return id;
  }

  /**
   * Run a command in a running container and collect its demultiplexed output and exit code
   * (`POST /containers/{id}/exec`, `POST /exec/{id}/start`, `GET /exec/{id}/json`).
   */
  async exec(id: string, cmd: string[], options: ExecOptions = {}): Promise<ExecResult> {
    const tty = options.tty ?? false;
    const created = await this.#json<{ Id: string }>({
      method: 'POST',
      path: `/containers/${encodeURIComponent(id)}/exec`,
      body: {
        AttachStdout: true,
        AttachStderr: true,
        Tty: tty,
        Cmd: cmd,
        Env: options.env,
        User: options.user,
        WorkingDir: options.workingDir,
      },
      signal: options.signal,
    });
    const res = await this.#request({
      method: 'POST',
      path: `/exec/${created.Id}/start`,
      body: { Detach: false, Tty: tty },
      signal: options.signal,
      streaming: true,
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    for await (const frame of demux(res.body, { tty })) {
      options.onFrame?.(frame);
      (frame.stream === 'stderr' ? err : out).push(Buffer.from(frame.data));
    }
    // The output stream can close a moment before the daemon records the exit code.
    for (let i = 0; ; i++) {
      const info = await this.#json<{ Running: boolean; ExitCode: number | null }>({
        path: `/exec/${created.Id}/json`,
        signal: options.signal,
      });
      if (!info.Running && info.ExitCode !== null) {
        return { exitCode: info.ExitCode, stdout: Buffer.concat(out), stderr: Buffer.concat(err) };
      }
      await sleep(Math.min(10 * 2 ** i, 200), undefined, { signal: options.signal });
    }
  }

  /**
   * `GET /containers/{id}/logs` as demultiplexed frames (raw passthrough when the container has a TTY).
   * See `followLogs` for a follow that survives restarts and reconnects.
   */
  async *logs(id: string, options: LogsOptions = {}): AsyncGenerator<Frame> {
    for await (const frames of this.logChunks(id, options)) {
      for (let i = 0; i < frames.length; i++) yield frames[i]!;
    }
  }

  /** {@link DockerClient.logs} yielding the frames of each received chunk together (fewer awaits). */
  async *logChunks(id: string, options: LogsOptions = {}): AsyncGenerator<Frame[]> {
    const tty = options.tty ?? (await this.inspectContainer(id, options)).Config.Tty;
    const res = await this.#request({
      path: `/containers/${encodeURIComponent(id)}/logs`,
      query: {
        follow: options.follow,
        stdout: options.stdout ?? true,
        stderr: options.stderr ?? true,
        since: options.since === undefined ? undefined : formatDockerTime(toNs(options.since)),
        until: options.until === undefined ? undefined : formatDockerTime(toNs(options.until)),
        tail: options.tail,
        timestamps: options.timestamps,
      },
      signal: options.signal,
      streaming: true,
    });
    yield* demuxChunks(res.body, { tty, onTruncated: options.onTruncated ?? 'throw' });
  }

  /**
   * `GET /events` as a typed async iterator. Without `until` it runs until aborted or the connection ends
   * (daemon restart): see `watchEvents` for a watcher that reconnects.
   */
  async *events(options: EventsOptions = {}): AsyncGenerator<DockerEvent> {
    const res = await this.#request({
      path: '/events',
      query: {
        since: options.since === undefined ? undefined : formatDockerTime(toNs(options.since)),
        until: options.until === undefined ? undefined : formatDockerTime(toNs(options.until)),
        filters: encodeFilters(options.filters),
      },
      signal: options.signal,
      streaming: true,
    });
    yield* ndjson<DockerEvent>(res.body);
  }

  /** Close all connections (in-flight streams are destroyed). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#http.destroy();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** Credentials for a registry, as the daemon takes them in `X-Registry-Auth`. */
export interface RegistryAuth {
  username?: string;
  password?: string;
  /** A token from `docker login` against a registry that issues them, instead of a password. */
  identitytoken?: string;
  /** The registry host (`registry.example.com:5000`). */
  serveraddress?: string;
}

/** `X-Registry-Auth`: URL-safe base64 of the JSON, as the Docker CLI sends it (`{}` when anonymous). */
function encodeRegistryAuth(auth: RegistryAuth | undefined): string {
  return Buffer.from(JSON.stringify(auth ?? {})).toString('base64url');
}

/** An image reference split the way the Docker CLI sends it: name, tag, digest. */
export interface ImageRef {
  /** Everything before the tag or digest, registry host and port included (`127.0.0.1:5000/app`). */
  name: string;
  tag?: string;
  /** `sha256:<hex>` when the reference is pinned by digest. */
  digest?: string;
}

/**
 * Split `[host[:port]/]path[:tag][@digest]`. The tag is the part after the last `:` that follows the last
 * `/`, so a registry port is never taken for a tag.
 */
export function parseImageRef(ref: string): ImageRef {
  let rest = ref;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at !== -1) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
  }
  const colon = rest.lastIndexOf(':');
  const tag = colon > rest.lastIndexOf('/') ? rest.slice(colon + 1) : undefined;
  const name = tag === undefined ? rest : rest.slice(0, colon);
  if (
    name === '' ||
    tag === '' ||
    digest === '' ||
    (digest !== undefined && !/^[a-z0-9]+:[0-9a-f]+$/i.test(digest))
  ) {
    throw new DockerError(DockerErrorCode.badRequest, `invalid image reference: ${ref}`);
  }
  return { name, ...(tag !== undefined ? { tag } : {}), ...(digest !== undefined ? { digest } : {}) };
}

async function consumeProgress(
  body: AsyncIterable<Uint8Array>,
  what: string,
  onProgress?: (event: ProgressEvent) => void,
): Promise<{ events: number; lastStatus: string | undefined }> {
  let events = 0;
  let lastStatus: string | undefined;
  for await (const event of ndjson<ProgressEvent>(body)) {
    throwIfStreamError(event, what);
    events++;
    lastStatus = event.status ?? lastStatus;
    onProgress?.(event);
  }
  return { events, lastStatus };
}
