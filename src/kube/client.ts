import { readFileSync } from 'node:fs';
import {
  createHttpTransport,
  HttpError,
  HttpErrorCode,
  type HttpResponse,
  type HttpTransport,
  type HttpTransportOptions,
  httpRequest,
} from '../runtime/index.ts';
import {
  defaultKubeConfig,
  type KubeClientConfig,
  type LoadKubeconfigOptions,
  loadKubeconfig,
} from './config.ts';
import { KubeError, KubeErrorCode } from './errors.ts';
import { codeForStatus, type KubeApi, type KubeRequest, kubeErrorFromResponse } from './request.ts';
import { ResourceClient } from './resource-client.ts';
import type { ResourceType } from './resource-type.ts';

/** Transport settings a {@link KubeClient} passes on to the runtime's HTTP transport. */
export type KubeHttpOptions = Pick<
  HttpTransportOptions,
  'timeouts' | 'retry' | 'log' | 'connections' | 'connectTimeoutMs' | 'keepAliveTimeoutMs' | 'interceptors'
>;

/** Options of {@link KubeClient}. */
export interface KubeClientOptions {
  /**
   * Transport settings. Default retry: 3 retries of idempotent requests (GET, PUT, DELETE, server-side
   * apply) on a broken connection, 429 (the apiserver's priority and fairness says "later") and 502/503/504.
   */
  http?: KubeHttpOptions;
  /** `User-Agent` of every request (the apiserver logs and audits it). Default `capstan-kube`. */
  userAgent?: string;
  /** The field manager of writes and server-side apply unless a call names its own. Default `capstan`. */
  fieldManager?: string;
}

/** The `/version` answer. */
export interface KubeVersion {
  major: string;
  minor: string;
  gitVersion: string;
  platform?: string;
  [field: string]: unknown;
}

/** One resource of discovery (`APIResourceList.resources[]`). */
export interface ApiResource {
  name: string;
  singularName?: string;
  namespaced: boolean;
  kind: string;
  verbs: string[];
  shortNames?: string[];
  categories?: string[];
  group?: string;
  version?: string;
}

/** A discovery document for one group version. */
export interface ApiResourceList {
  groupVersion: string;
  resources: ApiResource[];
}

const TOKEN_REREAD_MS = 60_000;

/** Where the `Authorization` header comes from, refreshed the way the config asks. */
class Credentials {
  readonly #config: KubeClientConfig;
  #fileToken: string | undefined;
  #readAt = 0;

  constructor(config: KubeClientConfig) {
    this.#config = config;
  }

  /** True when asking again may give a different answer (worth one retry after a 401). */
  get refreshable(): boolean {
    return this.#config.authorization !== undefined || this.#config.tokenFile !== undefined;
  }

  async authorization(refresh: boolean): Promise<string | undefined> {
    const c = this.#config;
    if (c.authorization) return c.authorization({ refresh });
    if (c.tokenFile) {
      // client-go re-reads its token file every minute: a projected token rotates well before it expires.
      if (refresh || this.#fileToken === undefined || Date.now() - this.#readAt > TOKEN_REREAD_MS) {
        try {
          this.#fileToken = readFileSync(c.tokenFile, 'utf8').trim();
          this.#readAt = Date.now();
        } catch (err) {
          // A token being swapped (atomic rename) can vanish for an instant: keep the last one if any.
          if (this.#fileToken === undefined) {
            throw new KubeError(KubeErrorCode.config, `cannot read token file ${c.tokenFile}`, {
              cause: err,
            });
          }
        }
      }
      return `Bearer ${this.#fileToken}`;
    }
    if (c.token) return `Bearer ${c.token}`;
    if (c.username !== undefined) {
      return `Basic ${Buffer.from(`${c.username}:${c.password ?? ''}`).toString('base64')}`;
    }
    return undefined;
  }
}

/** A transport failure as a {@link KubeError}; an abort's reason and KubeErrors pass unchanged. */
function fromTransport(err: unknown, what: string): unknown {
  if (!(err instanceof HttpError)) return err;
  switch (err.code) {
    case HttpErrorCode.connect:
      return new KubeError(KubeErrorCode.connect, `${what}: ${err.message}`, { cause: err });
    case HttpErrorCode.timeout:
      return new KubeError(KubeErrorCode.timeout, `${what}: ${err.message}`, { cause: err });
    case HttpErrorCode.tls:
      // The CA in the configuration does not match the server: no retry fixes that.
      return new KubeError(KubeErrorCode.config, `${what}: ${err.message}`, { cause: err });
    case HttpErrorCode.status:
      return new KubeError(codeForStatus(err.status), `${what}: ${err.message}`, {
        cause: err,
        status: err.status,
      });
    default:
      return new KubeError(KubeErrorCode.api, `${what}: ${err.message}`, { cause: err });
  }
}

function closedError(what: string): KubeError {
  return new KubeError(KubeErrorCode.usage, `${what}: the client is closed`);
}

/**
 * A Kubernetes API client on the runtime's one HTTP transport: an undici pool to the apiserver with its TLS
 * (CA, client certificate), credentials (token, rotating token file, exec plugin), retry of idempotent
 * requests and time limits. {@link resource} gives a typed client per kind; {@link request} and
 * {@link json} reach any path (discovery, subresources, aggregated APIs).
 *
 * ```ts
 * await using kube = await KubeClient.fromKubeconfig();
 * const pods = kube.resource(Pod, 'default');
 * for (const pod of (await pods.list()).items) console.log(pod.metadata?.name);
 * ```
 */
export class KubeClient implements KubeApi {
  /** The apiserver URL. */
  readonly server: string;
  /** The namespace of the configuration's context (or the pod's): what `resource(type, kube.namespace)` uses. */
  readonly namespace: string;
  /** The field manager writes use unless a call names its own. */
  readonly fieldManager: string;
  readonly #transport: HttpTransport;
  readonly #prefix: string;
  readonly #credentials: Credentials;
  readonly #userAgent: string;
  readonly #impersonate: string | undefined;
  readonly #closing = new AbortController();

  constructor(config: KubeClientConfig, options: KubeClientOptions = {}) {
    let url: URL;
    try {
      url = new URL(config.server);
    } catch (err) {
      throw new KubeError(KubeErrorCode.config, `server is not a URL: ${config.server}`, { cause: err });
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') {
      throw new KubeError(KubeErrorCode.config, `server must be http(s), got ${config.server}`);
    }
    this.server = config.server;
    this.namespace = config.namespace;
    this.fieldManager = options.fieldManager ?? 'capstan';
    this.#prefix = url.pathname.replace(/\/+$/, '');
    this.#credentials = new Credentials(config);
    this.#userAgent = options.userAgent ?? 'capstan-kube';
    this.#impersonate = config.impersonateUser;
    const http = options.http ?? {};
    this.#transport = createHttpTransport({
      ...http,
      origin: url.origin,
      tls: {
        ...(config.caPem ? { ca: config.caPem } : {}),
        ...(config.certPem && config.keyPem ? { cert: config.certPem, key: config.keyPem } : {}),
        ...(config.tlsServerName ? { servername: config.tlsServerName } : {}),
        rejectUnauthorized: !config.insecureSkipTlsVerify,
      },
      retry: http.retry === false ? false : { statusCodes: [429, 502, 503, 504], ...http.retry },
    });
  }

  /** A client from a kubeconfig ({@link loadKubeconfig}). */
  static async fromKubeconfig(
    options: LoadKubeconfigOptions = {},
    clientOptions: KubeClientOptions = {},
  ): Promise<KubeClient> {
    return new KubeClient(await loadKubeconfig(options), clientOptions);
  }

  /** A client from the environment, as controller-runtime finds one ({@link defaultKubeConfig}). */
  static async fromDefault(clientOptions: KubeClientOptions = {}): Promise<KubeClient> {
    return new KubeClient(await defaultKubeConfig(), clientOptions);
  }

  /**
   * The typed client of one kind. With `namespace`, every call is in that namespace; without it, a
   * namespaced kind lists and watches across all namespaces, and single-object calls take the namespace
   * from the object (`create`, `replace`, `apply`) or fail with `CAP_ERR_KUBE_USAGE` (`get`, `delete`).
   */
  resource<T>(type: ResourceType<T>, namespace?: string): ResourceClient<T> {
    return new ResourceClient<T>(this, type, namespace);
  }

  /**
   * Send one request and return the answer whatever its status (read or dump the body). Transport failures
   * reject with a {@link KubeError} (`CONNECT`, `TIMEOUT`, `CONFIG` for a certificate that does not verify),
   * an abort with the signal's reason. A 401 with rotating credentials is retried once with fresh ones.
   */
  async request(req: KubeRequest): Promise<HttpResponse> {
    const res = await this.#send(req, false);
    if (res.status !== 401 || !this.#credentials.refreshable) return res;
    await res.body.dump();
    return this.#send(req, true);
  }

  async #send(req: KubeRequest, refresh: boolean): Promise<HttpResponse> {
    const method = req.method ?? 'GET';
    const headers: Record<string, string> = {
      accept: req.accept ?? 'application/json',
      'user-agent': this.#userAgent,
      ...req.headers,
    };
    // Streams (watches) never end on their own: close() must be able to end them.
    const signal = req.stream
      ? req.signal
        ? AbortSignal.any([req.signal, this.#closing.signal])
        : this.#closing.signal
      : req.signal;
    const authorization = await this.#credentials.authorization(refresh);
    if (authorization) headers.authorization = authorization;
    if (this.#impersonate) headers['impersonate-user'] = this.#impersonate;
    let body: string | Buffer | undefined = req.body;
    if (req.json !== undefined) body = JSON.stringify(req.json);
    if (body !== undefined) headers['content-type'] = req.contentType ?? 'application/json';
    try {
      return await httpRequest(this.#transport, {
        method: method as 'GET',
        path: `${this.#prefix}${req.path}`,
        headers,
        ...(req.query ? { query: req.query } : {}),
        ...(body !== undefined ? { body } : {}),
        ...(signal ? { signal } : {}),
        ...(req.stream ? { stream: true, idempotent: false } : {}),
        ...(req.idempotent !== undefined && !req.stream ? { idempotent: req.idempotent } : {}),
        ...(req.timeoutMs !== undefined ? { timeouts: { deadlineMs: req.timeoutMs } } : {}),
      });
    } catch (err) {
      if (this.#closing.signal.aborted) throw closedError(`${method} ${req.path}`);
      throw fromTransport(err, `${method} ${req.path}`);
    }
  }

  /**
   * {@link request} for JSON: the parsed body of a 2xx answer (undefined when empty), else a
   * {@link KubeError} mapped from the status (404 `NOT_FOUND`, 409 `CONFLICT`, 422 `INVALID`, 403
   * `FORBIDDEN`, 410 `GONE`...) carrying the `Status`'s `reason` and message.
   */
  async json<T = unknown>(req: KubeRequest): Promise<T> {
    const res = await this.request(req);
    const what = `${req.method ?? 'GET'} ${req.path}`;
    let text: string;
    try {
      text = await res.body.text();
    } catch (err) {
      if (req.signal?.aborted) throw req.signal.reason;
      throw new KubeError(KubeErrorCode.connect, `${what}: the answer broke off: ${(err as Error).message}`, {
        cause: err,
        status: res.status,
      });
    }
    if (res.status < 200 || res.status >= 300) throw kubeErrorFromResponse(res.status, text, what);
    if (text === '') return undefined as T;
    try {
      return JSON.parse(text) as T;
    } catch (err) {
      throw new KubeError(KubeErrorCode.decode, `${what}: the answer is not JSON: ${text.slice(0, 100)}`, {
        cause: err,
        status: res.status,
      });
    }
  }

  /** The apiserver's version (`/version`). */
  version(options: { signal?: AbortSignal } = {}): Promise<KubeVersion> {
    return this.json<KubeVersion>({
      path: '/version',
      ...(options.signal ? { signal: options.signal } : {}),
    });
  }

  /**
   * Discovery of one group version (`v1`, `apps/v1`, `example.com/v1alpha1`): the resources it serves, with
   * kind, plural, scope and verbs. A group version that is not served fails with `CAP_ERR_KUBE_NOT_FOUND`.
   */
  apiResources(groupVersion: string, options: { signal?: AbortSignal } = {}): Promise<ApiResourceList> {
    const path = groupVersion.includes('/') ? `/apis/${groupVersion}` : `/api/${groupVersion}`;
    return this.json<ApiResourceList>({ path, ...(options.signal ? { signal: options.signal } : {}) });
  }

  /**
   * The {@link ResourceType} serving `kind` in `apiVersion`, found by discovery: for objects known only at
   * run time (a manifest's). Fails with `CAP_ERR_KUBE_NOT_FOUND` when the group version does not serve it.
   */
  async resourceTypeFor(
    apiVersion: string,
    kind: string,
    options: { signal?: AbortSignal } = {},
  ): Promise<ResourceType<unknown>> {
    const list = await this.apiResources(apiVersion, options);
    // Subresources (`deployments/scale`) repeat the kind of their parent's scale object: skip them.
    const found = list.resources.find((r) => r.kind === kind && !r.name.includes('/'));
    if (!found) {
      throw new KubeError(KubeErrorCode.notFound, `${apiVersion} serves no kind ${kind}`, { status: 404 });
    }
    const slash = apiVersion.indexOf('/');
    return {
      group: slash === -1 ? '' : apiVersion.slice(0, slash),
      version: slash === -1 ? apiVersion : apiVersion.slice(slash + 1),
      kind,
      plural: found.name,
      namespaced: found.namespaced,
    };
  }

  /** Aborted once {@link close} or {@link destroy} is called: watchers on this client end with it. */
  get closedSignal(): AbortSignal {
    return this.#closing.signal;
  }

  /** End every watch, let other in-flight requests finish, then close the connections. Idempotent. */
  async close(): Promise<void> {
    this.#closing.abort(closedError('close'));
    await this.#transport.close();
  }

  /** Close every connection now: in-flight requests and watches fail. */
  async destroy(): Promise<void> {
    this.#closing.abort(closedError('destroy'));
    await this.#transport.destroy();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
