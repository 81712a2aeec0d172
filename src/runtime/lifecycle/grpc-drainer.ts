import type { Drainer, ServerDrainReport } from './drainer.ts';

/**
 * The part of `@grpc/grpc-js`'s `Server` the lifecycle uses. Typed structurally so the runtime does not
 * load grpc-js for services that do not use it.
 */
export interface GrpcServerLike {
  tryShutdown(callback: (error?: Error) => void): void;
  forceShutdown(): void;
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
 * Drains a grpc-js server: `tryShutdown` unbinds the ports, sends GOAWAY on every HTTP/2 session and
 * calls back once running calls finish; `forceShutdown` at the deadline cancels what is left. grpc-js
 * does not expose how many calls are running, so `inFlightAtClose` and `cut` are `null`.
 */
export class GrpcDrainer implements Drainer {
  readonly name: string;
  readonly kind = 'grpc' as const;
  readonly drained: Promise<void>;
  readonly #server: GrpcServerLike;
  #resolveDrained!: () => void;
  #draining = false;
  #forced = false;

  constructor(server: GrpcServerLike, name: string) {
    this.#server = server;
    this.name = name;
    this.drained = new Promise((resolve) => {
      this.#resolveDrained = resolve;
    });
  }

  beginDrain(_idleGraceMs: number): void {
    if (this.#draining) return;
    this.#draining = true;
    // An error here means "already shut down": nothing is left to drain either way.
    this.#server.tryShutdown(() => this.#resolveDrained());
  }

  forceClose(): void {
    this.#forced = true;
    this.#server.forceShutdown();
    this.#resolveDrained();
  }

  report(): ServerDrainReport {
    return {
      name: this.name,
      kind: this.kind,
      inFlightAtClose: null,
      acceptedWhileDraining: 0,
      idleClosed: 0,
      cut: null,
      forced: this.#forced,
    };
  }

  detach(): void {}
}
