import type { Http2SecureServer, Http2Server, Http2Session, ServerHttp2Stream } from 'node:http2';
import { Server as NetServer, type Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { type Drainer, drainCounts, type ServerDrainReport } from './drainer.ts';

/**
 * Drains an HTTP/2 server (`http2.createServer` / `createSecureServer`): the listener closes, then each
 * session gets `session.close()`, which sends GOAWAY naming the last stream it will process, lets those
 * streams finish and then ends the session. Streams a client opens after GOAWAY are refused with a
 * retriable error, so no grace period is needed as with HTTP/1 keep-alive.
 */
export class Http2Drainer implements Drainer {
  readonly name: string;
  readonly kind = 'http2' as const;
  readonly drained: Promise<void>;
  readonly #server: Http2Server | Http2SecureServer;
  readonly #sessions = new Set<Http2Session>();
  /** Raw sockets, so connections still in the TLS handshake or preface can be cut at the deadline. */
  readonly #raw = new Set<Socket>();
  #streams = 0;
  #draining = false;
  #listenerClosed = false;
  #resolveDrained!: () => void;
  readonly #counts = drainCounts();
  readonly #onSession: (session: Http2Session) => void;
  readonly #onStream: (stream: ServerHttp2Stream) => void;
  readonly #onConnection: (socket: Socket) => void;
  readonly #onSecure: (socket: TLSSocket) => void;
  /** TLS socket over each raw socket: HTTP/1.1 fallback connections (`allowHTTP1`) have no session. */
  readonly #tlsOf = new WeakMap<Socket, TLSSocket>();
  #sweep: NodeJS.Timeout | undefined;

  constructor(server: Http2Server | Http2SecureServer, name: string) {
    this.#server = server;
    this.name = name;
    this.drained = new Promise((resolve) => {
      this.#resolveDrained = resolve;
    });
    this.#onSession = (session) => {
      this.#sessions.add(session);
      session.once('close', () => {
        this.#sessions.delete(session);
        this.#checkDrained();
      });
      if (this.#draining) session.close();
    };
    this.#onStream = (stream) => {
      this.#streams++;
      if (this.#draining) this.#counts.acceptedWhileDraining++;
      stream.once('close', () => {
        this.#streams--;
      });
    };
    this.#onConnection = (socket) => {
      this.#raw.add(socket);
      socket.once('close', () => {
        this.#raw.delete(socket);
        this.#checkDrained();
      });
    };
    this.#onSecure = (tls) => {
      const raw = (tls as TLSSocket & { _parent?: Socket })._parent;
      if (raw) this.#tlsOf.set(raw, tls);
    };
    server.on('secureConnection', this.#onSecure);
    server.on('session', this.#onSession);
    server.on('stream', this.#onStream);
    server.on('connection', this.#onConnection);
  }

  beginDrain(idleGraceMs: number): void {
    if (this.#draining) return;
    this.#draining = true;
    this.#counts.inFlightAtClose = this.#streams;
    // net.Server's close only stops accepting; the sessions are closed here, one GOAWAY each.
    if (this.#server.listening) NetServer.prototype.close.call(this.#server);
    this.#listenerClosed = true;
    for (const session of this.#sessions) session.close();
    this.#checkDrained();
    // Connections without a session (HTTP/1.1 fallback, handshakes in progress) get no GOAWAY: close
    // them once idle, checking every grace period until everything is gone.
    const sweep = () => {
      const sessionSockets = new Set<unknown>();
      for (const session of this.#sessions) {
        const socket = session.socket as (Socket & { _parent?: Socket }) | undefined;
        sessionSockets.add(socket?._parent ?? socket);
      }
      for (const raw of this.#raw) {
        if (sessionSockets.has(raw)) continue;
        const tls = this.#tlsOf.get(raw) as (TLSSocket & { _httpMessage?: unknown }) | undefined;
        if (tls?._httpMessage) continue; // an HTTP/1.1 response is in progress
        this.#counts.idleClosed++;
        raw.destroy();
      }
      if (this.#raw.size > 0) this.#sweep = setTimeout(sweep, idleGraceMs);
    };
    if (this.#raw.size > 0) this.#sweep = setTimeout(sweep, idleGraceMs);
  }

  #checkDrained(): void {
    if (this.#listenerClosed && this.#sessions.size === 0 && this.#raw.size === 0) {
      clearTimeout(this.#sweep);
      this.#resolveDrained();
    }
  }

  forceClose(): void {
    clearTimeout(this.#sweep);
    this.#counts.forced = true;
    this.#counts.cut += this.#streams;
    for (const session of this.#sessions) session.destroy();
    for (const raw of this.#raw) raw.destroy();
  }

  report(): ServerDrainReport {
    return { name: this.name, kind: this.kind, ...this.#counts };
  }

  detach(): void {
    this.#server.off('session', this.#onSession);
    this.#server.off('stream', this.#onStream);
    this.#server.off('connection', this.#onConnection);
    this.#server.off('secureConnection', this.#onSecure);
  }
}
