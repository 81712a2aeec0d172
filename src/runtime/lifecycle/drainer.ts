/** Kinds of servers a Lifecycle can drain. */
export type ServerKind = 'http' | 'https' | 'http2' | 'grpc';

/** What one server did during shutdown, as reported by {@link Drainer.report}. */
export interface ServerDrainReport extends DrainCounts {
  name: string;
  kind: ServerKind;
}

/** The counts a drainer keeps while draining; {@link drainCounts} starts them at zero. */
export interface DrainCounts {
  /** Requests (HTTP/1 requests, HTTP/2 streams, gRPC calls) running when the listener closed; `null` when unknown. */
  inFlightAtClose: number | null;
  /** Requests accepted after the listener closed, on connections opened before (served with `Connection: close`). */
  acceptedWhileDraining: number;
  /** Idle keep-alive connections closed by us once their grace period ended. */
  idleClosed: number;
  /** Requests still running at the drain deadline and cut; `null` when unknown (gRPC with channelz off). */
  cut: number | null;
  /** True when the deadline passed and remaining connections were destroyed. */
  forced: boolean;
}

/** Fresh counts for a drainer that can always count: nothing in flight, accepted, closed or cut yet. */
export function drainCounts(): DrainCounts & { inFlightAtClose: number; cut: number } {
  return { inFlightAtClose: 0, acceptedWhileDraining: 0, idleClosed: 0, cut: 0, forced: false };
}

/**
 * One tracked server. Tracking starts at registration so connections accepted before shutdown are
 * known; `beginDrain` stops accepting and starts the graceful part; `forceClose` is the deadline.
 */
export interface Drainer {
  readonly name: string;
  readonly kind: ServerKind;
  /** Stop accepting, ask clients to go away (Connection: close, GOAWAY) and close idle connections after `idleGraceMs`. */
  beginDrain(idleGraceMs: number): void | Promise<void>;
  /** Resolves once the listener is closed and every connection has ended. */
  readonly drained: Promise<void>;
  /** Destroy whatever is left (deadline passed). */
  forceClose(): void | Promise<void>;
  report(): ServerDrainReport;
  /** Remove the listeners added to the server (used when the lifecycle is discarded). */
  detach(): void;
}
