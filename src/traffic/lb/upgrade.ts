// Upgrade pass-through (WebSocket and any other `Upgrade:` protocol): the request goes to a backend with
// undici's `upgrade` option; on 101 the two sockets are joined byte for byte, on any other answer that
// answer is relayed and the client's connection closed.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { Backend } from './backend.ts';
import { type ForwardContext, forwardHeaders, responseHeaders } from './headers.ts';
import type { ProxyState } from './proxy.ts';
import { classifyError } from './proxy.ts';

type Controller = Dispatcher.DispatchController;

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+(\/[!#$%&'*+.^_`|~0-9A-Za-z-]+)?$/;

function writeResponse(
  socket: Duplex,
  status: number,
  headers: Record<string, string | string[]>,
  body: Buffer,
): void {
  if (socket.destroyed) return;
  let head = `HTTP/1.1 ${status} ${status === 101 ? 'Switching Protocols' : 'Upgrade Refused'}\r\n`;
  for (const [name, value] of Object.entries(headers)) {
    if (name === 'content-length') continue;
    for (const v of Array.isArray(value) ? value : [value]) head += `${name}: ${v}\r\n`;
  }
  head += `content-length: ${body.length}\r\nconnection: close\r\n\r\n`;
  socket.end(Buffer.concat([Buffer.from(head, 'latin1'), body]));
}

function fail(socket: Duplex, status: number, reason: string): void {
  writeResponse(
    socket,
    status,
    { 'content-type': 'application/json; charset=utf-8' },
    Buffer.from(JSON.stringify({ error: 'upgrade failed', reason })),
  );
}

class UpgradeHandler implements Dispatcher.DispatchHandler {
  readonly #state: ProxyState;
  readonly #backend: Backend;
  readonly #client: Duplex;
  readonly #head: Buffer;
  #status = 0;
  #headers: Record<string, string | string[]> = {};
  readonly #chunks: Buffer[] = [];
  #done = false;

  constructor(state: ProxyState, backend: Backend, client: Duplex, head: Buffer) {
    this.#state = state;
    this.#backend = backend;
    this.#client = client;
    this.#head = head;
  }

  #finish(status: number | 'error', kind?: string): void {
    if (this.#done) return;
    this.#done = true;
    this.#backend.inflight--;
    const failed = status === 'error' || status >= 500;
    this.#state.record(this.#backend, status === 'error' ? 'gateway' : failed ? '5xx' : 'success');
    this.#state.observer.attemptEnded(this.#backend, failed ? 'gateway' : 'success', status, kind, 0);
  }

  onRequestStart(controller: Controller): void {
    if (this.#client.destroyed) controller.abort(new Error('client went away'));
    else this.#client.once('close', () => controller.abort(new Error('client went away')));
  }

  onRequestUpgrade(
    controller: Controller,
    statusCode: number,
    _headers: Record<string, string | string[] | undefined>,
    upstream: Duplex,
  ): void {
    this.#finish(statusCode);
    const client = this.#client;
    // controller.rawHeaders keeps the backend's names and order (Sec-WebSocket-Accept, extensions...).
    const raw = (controller as Controller & { rawHeaders?: Buffer[] }).rawHeaders ?? [];
    let head = 'HTTP/1.1 101 Switching Protocols\r\n';
    for (let i = 0; i + 1 < raw.length; i += 2)
      head += `${raw[i]!.toString('latin1')}: ${raw[i + 1]!.toString('latin1')}\r\n`;
    head += '\r\n';
    if (client.destroyed) {
      upstream.destroy();
      return;
    }
    const idle = this.#state.timeouts.idleMs;
    client.write(head);
    if (this.#head.length > 0) upstream.write(this.#head);
    const close = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', close).on('close', close);
    upstream.on('error', close).on('close', close);
    if (idle > 0) {
      // Idle means no byte either way: each side's timer is reset by traffic on it, so watch both.
      let last = Date.now();
      const touch = () => {
        last = Date.now();
      };
      client.on('data', touch);
      upstream.on('data', touch);
      const timer = setInterval(
        () => {
          if (Date.now() - last >= idle) close();
        },
        Math.min(idle, 1_000),
      ).unref();
      client.once('close', () => clearInterval(timer));
    }
    client.pipe(upstream);
    upstream.pipe(client);
  }

  onResponseStart(
    _c: Controller,
    statusCode: number,
    headers: Record<string, string | string[] | undefined>,
  ): void {
    this.#status = statusCode;
    this.#headers = responseHeaders(headers);
  }

  onResponseData(_c: Controller, chunk: Buffer): void {
    // The refusal's body, kept small: anything past 64 KiB is dropped.
    if (this.#chunks.reduce((n, c) => n + c.length, 0) < 65_536) this.#chunks.push(chunk);
  }

  onResponseEnd(): void {
    this.#finish(this.#status);
    writeResponse(this.#client, this.#status, this.#headers, Buffer.concat(this.#chunks));
  }

  onResponseError(_c: Controller, error: Error): void {
    const { kind, status } = classifyError(error);
    this.#finish('error', this.#client.destroyed ? 'client' : kind);
    fail(this.#client, status, (error as { code?: string }).code ?? error.message);
  }
}

/** Forward an `Upgrade:` request (the server's `upgrade` event) to a backend and join the connections. */
export function proxyUpgrade(
  state: ProxyState,
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  forward: Omit<ForwardContext, 'trusted'>,
): void {
  socket.on('error', () => socket.destroy());
  const protocol = req.headers.upgrade ?? '';
  if (!TOKEN.test(protocol) || (req.url ?? '')[0] !== '/') {
    fail(socket, 400, 'bad Upgrade header or request target');
    return;
  }
  if (protocol.toLowerCase() === 'h2c') {
    fail(socket, 400, 'h2c upgrade is not forwarded');
    return;
  }
  state.budget.recordRequest();
  const backend = state.picker.pick(state.set.available, state.set.version, {
    hashKey:
      state.hashHeader !== undefined ? (req.headers[state.hashHeader] as string | undefined) : undefined,
  });
  if (!backend) {
    state.observer.noBackend();
    fail(socket, 503, 'no backend available');
    return;
  }
  backend.inflight++;
  const headers = forwardHeaders(req.rawHeaders, req.headers, { ...forward, trusted: state.trusted });
  backend.pool.dispatch(
    {
      method: (req.method ?? 'GET') as Dispatcher.HttpMethod,
      path: req.url ?? '/',
      headers,
      upgrade: protocol,
      body: null,
      headersTimeout: state.timeouts.headersMs,
      bodyTimeout: state.timeouts.idleMs,
    },
    new UpgradeHandler(state, backend, socket, head),
  );
}
