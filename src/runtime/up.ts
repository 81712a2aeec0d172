// The contract between `capstan up` and the areas: each area's index exports `upServices`, and the CLI
// joins every area's list, so an area joins `up` without the CLI changing.
import type { Lifecycle } from './lifecycle/lifecycle.ts';
import type { Logger } from './log/logger.ts';

/** What `capstan up` hands each service it starts. Settings come as values: a service reads no environment. */
export interface UpContext {
  /** Address to listen on (`--host`, default `127.0.0.1`). Ports are the service's: 0 picks a free one. */
  readonly host: string;
  /** Shared by every service: add servers, jobs and hooks to it; one Ctrl-C stops them all together. */
  readonly lifecycle: Lifecycle;
  /** Parent logger; a service logs through a child naming itself. */
  readonly logger: Logger;
  /** Aborted when `up` is stopping, including during startup: a slow start should give up on it. */
  readonly signal: AbortSignal;
  /**
   * The environment `capstan up` was started with, read once by the CLI. `up` runs services on embedded
   * defaults; a service that honours a variable parses it from here with its own definition.
   */
  readonly env: Readonly<Record<string, string | undefined>>;
}

/** A service once started: where to reach it, and how to stop what the lifecycle does not own. */
export interface UpStarted {
  /** Labelled URLs printed by `capstan up`, e.g. `{ metrics: 'http://127.0.0.1:41234/metrics' }`. */
  readonly urls: Readonly<Record<string, string>>;
  /** Called on shutdown as a lifecycle hook, for resources not registered with the lifecycle. */
  stop?(): Promise<void> | void;
}

/** One service `capstan up` runs. An area contributes its services through `upServices` in its index. */
export interface UpService {
  /** Unique across areas, kebab-case: what `capstan up --only` takes. */
  readonly name: string;
  /** One line, printed next to the URLs. */
  readonly description: string;
  /** Start listening and return the URLs; reject to make `up` stop what started and exit 1. */
  start(ctx: UpContext): Promise<UpStarted>;
}
