import type { Server as HttpServer, IncomingMessage, ServerResponse } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import { Server as NetServer, type Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { type Drainer, drainCounts, type ServerDrainReport } from './drainer.ts';

interface SocketState {
  readonly socket: Socket;
  /** Requests in progress on this socket (more than one only with pipelining). */
  busy: number;
  idleTimer: NodeJS.Timeout | undefined;
}

/** A response carrying, under a drainer's own key, its socket's state until it closes (detached by then). */
type TrackedResponse = ServerResponse & Record<symbol, SocketState | undefined>;

/**
 * Drains an HTTP/1.1 (or HTTPS) server. It tracks every connection and how many requests each one is
 * serving, because Node's own `server.close()` (since v19) destroys idle keep-alive sockets at once,
 * which races with a client that is just sending its next request (ECONNRESET upstream; the trap
 * http-terminator fixed in PR 48). Here the listener is closed with the plain `net.Server` close,
 * responses get `Connection: close`, and idle sockets get a grace period to send one last request.
 */
export class HttpDrainer implements Drainer {
  readonly name: string;
  readonly kind: 'http' | 'https';
  readonly drained: Promise<void>;
  readonly #server: HttpServer | HttpsServer;
  /** Sockets HTTP requests arrive on (TLS sockets for HTTPS). */
  readonly #sockets = new Map<Socket, SocketState>();
  /** Raw TCP sockets of an HTTPS server, so handshakes in progress can be cut too. */
  readonly #raw = new Set<Socket>();
  readonly #responses = new Set<ServerResponse>();
  #draining = false;
  #listenerClosed = false;
  #resolveDrained!: () => void;
  readonly #counts = drainCounts();
  #idleGraceMs = 0;
  readonly #onConnection: (socket: Socket) => void;
  readonly #onRawConnection: (socket: Socket) => void;
  readonly #onRequest: (req: IncomingMessage, res: ServerResponse) => void;
  readonly #key = Symbol('capstan.lifecycle.socketState');
  /** One 'close' listener for every response, not a closure per request. */
  readonly #onResponseClose: (this: ServerResponse) => void;

  constructor(server: HttpServer | HttpsServer, name: string, tls: boolean) {
    this.#server = server;
    this.name = name;
    this.kind = tls ? 'https' : 'http';
    this.drained = new Promise((resolve) => {
      this.#resolveDrained = resolve;
    });
    this.#onConnection = (socket) => this.#track(socket);
    this.#onRawConnection = (socket) => {
      this.#raw.add(socket);
      socket.once('close', () => {
        this.#raw.delete(socket);
        this.#checkDrained();
      });
    };
    this.#onRequest = (req, res) => this.#request(req, res);
    const drainer = this;
    this.#onResponseClose = function (this: ServerResponse) {
      drainer.#responseClosed(this as TrackedResponse);
    };
    server.on(tls ? 'secureConnection' : 'connection', this.#onConnection);
    if (tls) server.on('connection', this.#onRawConnection);
    // Prepended so Connection: close is decided before the application writes its headers.
    server.prependListener('request', this.#onRequest);
  }

  #track(socket: Socket): SocketState {
    let state = this.#sockets.get(socket);
    if (state) return state;
    state = { socket, busy: 0, idleTimer: undefined };
    this.#sockets.set(socket, state);
    socket.once('close', () => {
      clearTimeout(this.#sockets.get(socket)?.idleTimer);
      this.#sockets.delete(socket);
      this.#checkDrained();
    });
    if (this.#draining) this.#scheduleIdleClose(socket, state);
    return state;
  }

  #request(req: IncomingMessage, res: ServerResponse): void {
    const socket = req.socket;
    const state = this.#track(socket);
    state.busy++;
    clearTimeout(state.idleTimer);
    state.idleTimer = undefined;
    this.#responses.add(res);
    if (this.#draining) {
      this.#counts.acceptedWhileDraining++;
      // Node then writes `Connection: close` and ends the socket after this response.
      res.shouldKeepAlive = false;
    }
    (res as TrackedResponse)[this.#key] = state;
    // 'close' comes once per response.
    res.on('close', this.#onResponseClose);
  }

  #responseClosed(res: TrackedResponse): void {
    const state = res[this.#key];
    if (!state) return;
    res[this.#key] = undefined;
    this.#responses.delete(res);
    state.busy--;
    if (this.#draining && state.busy === 0 && !state.socket.destroyed)
      this.#scheduleIdleClose(state.socket, state);
  }

  /**
   * Close an idle socket once the grace period passes, unless bytes of a new request arrived
   * meanwhile (headers still being parsed count as busy, as Node's own idle check does).
   */
  #scheduleIdleClose(socket: Socket, state: SocketState): void {
    if (state.idleTimer || state.busy > 0) return;
    const bytesAtIdle = socket.bytesRead;
    state.idleTimer = setTimeout(() => {
      state.idleTimer = undefined;
      if (state.busy > 0 || socket.destroyed) return;
      if (socket.bytesRead !== bytesAtIdle) {
        this.#scheduleIdleClose(socket, state);
        return;
      }
      this.#counts.idleClosed++;
      socket.destroy();
    }, this.#idleGraceMs);
  }

  beginDrain(idleGraceMs: number): void {
    if (this.#draining) return;
    this.#draining = true;
    this.#idleGraceMs = idleGraceMs;
    for (const res of this.#responses) {
      this.#counts.inFlightAtClose++;
      if (!res.headersSent) res.shouldKeepAlive = false;
    }
    const markClosed = () => {
      this.#listenerClosed = true;
      this.#checkDrained();
    };
    if (this.#server.listening) {
      // net.Server's close, not http.Server's: the latter would destroy idle keep-alive sockets now.
      NetServer.prototype.close.call(this.#server);
      // 'close' fires only when all connections end; the listener itself is gone synchronously.
      markClosed();
    } else {
      markClosed();
    }
    for (const [socket, state] of this.#sockets) this.#scheduleIdleClose(socket, state);
    if (this.kind === 'https') {
      // Raw sockets still in their TLS handshake: give them the same grace, then cut.
      const timer = setTimeout(() => {
        const secured = new Set<unknown>();
        for (const s of this.#sockets.keys()) secured.add((s as TLSSocket & { _parent?: unknown })._parent);
        for (const raw of this.#raw) if (!secured.has(raw)) raw.destroy();
      }, idleGraceMs);
      timer.unref();
    }
  }

  #checkDrained(): void {
    if (this.#listenerClosed && this.#sockets.size === 0 && this.#raw.size === 0) this.#resolveDrained();
  }

  forceClose(): void {
    this.#counts.forced = true;
    for (const [socket, state] of this.#sockets) {
      this.#counts.cut += state.busy;
      socket.destroy();
    }
    for (const raw of this.#raw) raw.destroy();
  }

  report(): ServerDrainReport {
    return { name: this.name, kind: this.kind, ...this.#counts };
  }

  detach(): void {
    this.#server.off(this.kind === 'https' ? 'secureConnection' : 'connection', this.#onConnection);
    this.#server.off('connection', this.#onRawConnection);
    this.#server.off('request', this.#onRequest);
  }
}
