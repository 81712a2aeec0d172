// Kubernetes Events (events.k8s.io/v1) from a controller: what `kubectl describe` and `kubectl events` show.
// Recording is best effort, as in client-go: a failed write is reported, never thrown into a reconcile; and a
// repeat of the same event within the series window updates a count instead of creating another object.
import { hostname } from 'node:os';
import { Event } from './builtin.ts';
import type { KubeClient } from './client.ts';
import type { Clock } from './clock.ts';
import { systemClock } from './clock.ts';
import type { HasMetadata } from './owner.ts';
import { apiVersionOf, type ResourceType } from './resource-type.ts';

/** One event about an object. */
export interface EventInput {
  /** `Normal` (default) or `Warning`. */
  type?: 'Normal' | 'Warning';
  /** CamelCase, why: `Created`, `ApplyFailed`, `CleanedUp`. */
  reason: string;
  /** CamelCase, what the controller did or tried: `Apply`, `Delete`, `Reconcile`. */
  action: string;
  /** Human-readable detail (at most 1 KiB is kept). */
  note?: string;
}

/** Options of an {@link EventRecorder}. */
export interface EventRecorderOptions {
  client: KubeClient;
  /** `reportingController`: the controller's name, e.g. `example.com/website-controller`. */
  controller: string;
  /** `reportingInstance`: which replica; default the host name (a pod's name in a cluster). */
  instance?: string;
  /** Repeats within this window update the first event's series. Default 10 min (client-go's). */
  seriesWindowMs?: number;
  /** A write failed (the event is dropped). */
  onError?: (error: unknown) => void;
  clock?: Clock;
}

interface Recorded {
  namespace: string;
  name: string;
  count: number;
  firstMs: number;
}

const MAX_NOTE = 1024;
/** Recently recorded events kept for series; old ones are forgotten first. */
const MAX_REMEMBERED = 4096;

/** MicroTime: RFC 3339 with six fractional digits, what `eventTime` and `series.lastObservedTime` take. */
function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/Z$/, '000Z');
}

/**
 * Records events about objects as `events.k8s.io/v1` Events in the object's namespace (`default` for
 * cluster-scoped objects). A repeat (same object, type, reason, action and note) within the series window
 * bumps `series.count` on the first event instead of creating one per reconcile.
 */
export class EventRecorder {
  readonly #client: KubeClient;
  readonly #controller: string;
  readonly #instance: string;
  readonly #windowMs: number;
  readonly #onError: (error: unknown) => void;
  readonly #clock: Clock;
  readonly #recent = new Map<string, Recorded>();
  #seq = 0;

  constructor(options: EventRecorderOptions) {
    this.#client = options.client;
    this.#controller = options.controller;
    this.#instance = options.instance ?? hostname();
    this.#windowMs = options.seriesWindowMs ?? 600_000;
    this.#onError = options.onError ?? (() => {});
    this.#clock = options.clock ?? systemClock;
  }

  /** Record `event` about `object` (of `type`). Never rejects; failures go to `onError`. */
  async record(type: ResourceType, object: HasMetadata, event: EventInput): Promise<void> {
    try {
      await this.#record(type, object, event);
    } catch (err) {
      this.#onError(err);
    }
  }

  async #record(type: ResourceType, object: HasMetadata, event: EventInput): Promise<void> {
    const meta = object.metadata ?? {};
    const namespace = meta.namespace || 'default';
    const now = this.#clock.now();
    const note = (event.note ?? '').slice(0, MAX_NOTE);
    const eventType = event.type ?? 'Normal';
    const key = [meta.uid ?? `${namespace}/${meta.name}`, eventType, event.reason, event.action, note].join(
      '\u0000',
    );
    const events = this.#client.resource(Event, namespace);
    const seen = this.#recent.get(key);
    if (seen && now - seen.firstMs < this.#windowMs) {
      seen.count++;
      try {
        await events.patch(seen.name, { series: { count: seen.count, lastObservedTime: microTime(now) } });
        return;
      } catch {
        // The event expired or was deleted: record a new one.
        this.#recent.delete(key);
      }
    }
    const name = `${meta.name ?? 'object'}.${(now * 1000 + (this.#seq++ % 1000)).toString(16)}`;
    await events.create({
      apiVersion: 'events.k8s.io/v1',
      kind: 'Event',
      metadata: { name, namespace },
      eventTime: microTime(now),
      reportingController: this.#controller,
      reportingInstance: this.#instance,
      type: eventType,
      reason: event.reason,
      action: event.action,
      note,
      regarding: {
        apiVersion: apiVersionOf(type),
        kind: type.kind,
        name: meta.name,
        ...(meta.namespace ? { namespace: meta.namespace } : {}),
        ...(meta.uid ? { uid: meta.uid } : {}),
        ...(meta.resourceVersion ? { resourceVersion: meta.resourceVersion } : {}),
      },
    } as Event);
    if (this.#recent.size >= MAX_REMEMBERED) {
      const oldest = this.#recent.keys().next().value;
      if (oldest !== undefined) this.#recent.delete(oldest);
    }
    this.#recent.set(key, { namespace, name, count: 1, firstMs: now });
  }
}
