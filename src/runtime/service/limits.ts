// Limits that keep a slow or hostile client from holding a server's sockets, streams and memory: how long
// headers, a whole request and an idle connection may take, and how many connections and streams at once.

import type { ServerOptions } from 'node:http';
import {
  type Http2SecureServer,
  type Http2Server,
  type Http2Session,
  constants as h2,
  type ServerHttp2Stream,
} from 'node:http2';
import { ServiceError, ServiceErrorCode } from './errors.ts';

/** Timeouts and caps of a server; every duration is in milliseconds. See {@link defaultServerLimits}. */
export interface ServerLimits {
  /**
   * HTTP/1.1: time to receive a request's complete headers; past it the client gets 408 and the socket
   * is closed. HTTP/2: time from a session's start to its first request's headers (a dribbled preface
   * or HEADERS frame); past it the session is closed.
   */
  headersTimeoutMs: number;
  /**
   * Time to receive a whole request, headers and body. HTTP/1.1: 408 and the socket closed. HTTP/2: the
   * stream is answered 408 (or reset when its response had begun); the session's other streams go on.
   */
  requestTimeoutMs: number;
  /**
   * HTTP/1.1: how long a keep-alive connection may wait for its next request. HTTP/2: how long a session
   * may stay without any open stream before it is closed with GOAWAY.
   */
  idleTimeoutMs: number;
  /** Connections (HTTP/1.1 sockets and HTTP/2 sessions) open at once; those past it are closed on accept. */
  maxConnections: number;
  /** HTTP/2: streams open at once in one session (SETTINGS_MAX_CONCURRENT_STREAMS); more are refused. */
  maxConcurrentStreams: number;
}

/**
 * Defaults of {@link ServerLimits}, stricter than Node's own (headers 60 s, request 300 s, no cap on
 * connections, 2^32-1 streams per HTTP/2 session).
 */
export const defaultServerLimits: Readonly<ServerLimits> = Object.freeze({
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 60_000,
  idleTimeoutMs: 5_000,
  maxConnections: 10_000,
  maxConcurrentStreams: 100,
});

/** Fill `limits` from the defaults and check every value; a bad one is {@link ServiceErrorCode.invalid}. */
export function resolveServerLimits(limits: Partial<ServerLimits> = {}): ServerLimits {
  const resolved = { ...defaultServerLimits, ...limits };
  for (const [key, value] of Object.entries(resolved)) {
    // Zero would mean "no limit" to Node for several of these: refuse it rather than turn a limit off.
    // The cap keeps a timer's delay below 2^31-1 ms (a larger one fires at once).
    if (!Number.isInteger(value) || value < 1 || value > 2_147_483_647) {
      throw new ServiceError(
        ServiceErrorCode.invalid,
        `server limit ${key} must be an integer from 1 to 2147483647, got ${value}`,
      );
    }
  }
  if (resolved.headersTimeoutMs > resolved.requestTimeoutMs) {
    throw new ServiceError(
      ServiceErrorCode.invalid,
      `server limit headersTimeoutMs (${resolved.headersTimeoutMs}) must not exceed requestTimeoutMs (${resolved.requestTimeoutMs})`,
    );
  }
  return resolved;
}

/** `node:http` server options carrying `limits` (`maxConnections` is set on the server, not here). */
export function http1ServerOptions(limits: ServerLimits): ServerOptions {
  return {
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.idleTimeoutMs,
    // Node checks the two timeouts above every 30 s by default: a short timeout would run up to 30 s late.
    connectionsCheckingInterval: Math.max(100, Math.min(1_000, Math.floor(limits.headersTimeoutMs / 4))),
  };
}

/**
 * Apply {@link ServerLimits} to an HTTP/2 server (`http2.createServer` or `createSecureServer`), before it
 * listens. Node's HTTP/2 server has no header, request or idle timeout of its own and accepts 2^32-1
 * streams per session; this adds them: `maxConcurrentStreams` in the SETTINGS every session sends (streams
 * past it are refused), `maxConnections` on the listener, a per-session headers and idle timer (time without
 * an open stream, so bytes dribbled in do not keep a session alive), and a per-stream request timer (the
 * request body must end in time). HTTP/1.1 connections of an `allowHTTP1` secure server are not covered;
 * the TLS handshake is bounded by the server's own `handshakeTimeout` option.
 *
 * ```ts
 * const server = limitHttp2Server(http2.createServer(handler), { requestTimeoutMs: 30_000 });
 * lifecycle.addServer(server);
 * ```
 */
export function limitHttp2Server<S extends Http2Server | Http2SecureServer>(
  server: S,
  limits: Partial<ServerLimits> = {},
): S {
  const resolved = resolveServerLimits(limits);
  server.updateSettings({ maxConcurrentStreams: resolved.maxConcurrentStreams });
  server.maxConnections = resolved.maxConnections;
  server.on('session', (session: Http2Session) => limitSession(session, resolved));
  server.on('stream', (stream: ServerHttp2Stream) => limitStream(stream, resolved));
  return server;
}

function limitSession(session: Http2Session, limits: ServerLimits): void {
  let open = 0;
  let timer: NodeJS.Timeout | undefined;
  const arm = (ms: number) => {
    clearTimeout(timer);
    // GOAWAY, then the session ends at once: it has no open stream to wait for.
    timer = setTimeout(() => {
      if (!session.closed && !session.destroyed) session.close();
    }, ms).unref();
  };
  arm(limits.headersTimeoutMs);
  session.on('stream', (stream: ServerHttp2Stream) => {
    open++;
    clearTimeout(timer);
    stream.once('close', () => {
      if (--open === 0 && !session.closed && !session.destroyed) arm(limits.idleTimeoutMs);
    });
  });
  session.once('close', () => clearTimeout(timer));
}

function limitStream(stream: ServerHttp2Stream, limits: ServerLimits): void {
  const timer = setTimeout(() => {
    // remoteClose: the client sent END_STREAM, the request is whole; a slow response is the handler's.
    if (stream.closed || stream.destroyed || stream.state.remoteClose) return;
    const begun = stream.headersSent;
    if (!begun) stream.respond({ ':status': 408 }, { endStream: true });
    // RST_STREAM once the 408 is out: NO_ERROR tells the client to stop sending, the response stands
    // (RFC 9113 §8.1); CANCEL when a response had begun, so it is not taken as complete.
    stream.close(begun ? h2.NGHTTP2_CANCEL : h2.NGHTTP2_NO_ERROR);
  }, limits.requestTimeoutMs).unref();
  stream.once('close', () => clearTimeout(timer));
}
