import { type DrainCounts, type Drainer, drainCounts, type ServerDrainReport } from './drainer.ts';

/**
 * The part of `@grpc/grpc-js`'s `Server` the lifecycle uses. Typed structurally so the runtime does not
 * load grpc-js for services that do not use it.
 */
export interface GrpcServerLike {
  tryShutdown(callback: (error?: Error) => void): void;
  forceShutdown(): void;
  /** Its channelz id; used to count running calls (`calls_started - succeeded - failed`). */
  getChannelzRef?(): { id: number | string };
}

/** True when `value` looks like a grpc-js Server. */
export function isGrpcServer(value: unknown): value is GrpcServerLike {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as GrpcServerLike).tryShutdown === 'function' &&
    typeof (value as GrpcServerLike).forceShutdown === 'function'
  );
}

/**
 * Running calls of a grpc-js server, from its channelz counters (on by default; the public
 * `getChannelzHandlers()` reads them). `null` when channelz is disabled or grpc-js cannot be loaded.
 */
async function runningCalls(server: GrpcServerLike): Promise<number | null> {
  try {
    const ref = server.getChannelzRef?.();
    if (!ref) return null;
    // Loaded lazily: services without gRPC never load grpc-js.
    const grpc = await import('@grpc/grpc-js');
    const handlers = grpc.getChannelzHandlers();
    const response = await new Promise<{ server?: { data?: Record<string, unknown> } } | undefined>(
      (resolve, reject) => {
        const call = { request: { server_id: String(ref.id) } };
        handlers.GetServer(call as never, (err: unknown, value?: unknown) =>
          err ? reject(err) : resolve(value as { server?: { data?: Record<string, unknown> } }),
        );
      },
    );
    const data = response?.server?.data;
    if (!data) return null;
    const n = Number(data.calls_started) - Number(data.calls_succeeded) - Number(data.calls_failed);
    return Number.isFinite(n) ? Math.max(0, n) : null;
  } catch {
    return null;
  }
}

/**
 * Drains a grpc-js server: `tryShutdown` unbinds the ports, sends GOAWAY on every HTTP/2 session and
 * calls back once running calls finish; `forceShutdown` at the deadline cancels what is left. Running
 * calls are counted from channelz; with channelz off, `inFlightAtClose` and `cut` are `null`.
 */
export class GrpcDrainer implements Drainer {
  readonly name: string;
  readonly kind = 'grpc' as const;
  readonly drained: Promise<void>;
  readonly #server: GrpcServerLike;
  #resolveDrained!: () => void;
  #draining = false;
  /** With channelz off the in-flight count is unknown until a count succeeds. */
  readonly #counts: DrainCounts = { ...drainCounts(), inFlightAtClose: null };

  constructor(server: GrpcServerLike, name: string) {
    this.#server = server;
    this.name = name;
    this.drained = new Promise((resolve) => {
      this.#resolveDrained = resolve;
    });
  }

  async beginDrain(_idleGraceMs: number): Promise<void> {
    if (this.#draining) return;
    this.#draining = true;
    this.#counts.inFlightAtClose = await runningCalls(this.#server);
    // An error here means "already shut down": nothing is left to drain either way.
    this.#server.tryShutdown(() => this.#resolveDrained());
  }

  async forceClose(): Promise<void> {
    this.#counts.forced = true;
    this.#counts.cut = await runningCalls(this.#server);
    this.#server.forceShutdown();
    this.#resolveDrained();
  }

  report(): ServerDrainReport {
    return { name: this.name, kind: this.kind, ...this.#counts };
  }

  detach(): void {}
}
