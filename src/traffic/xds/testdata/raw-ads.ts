// A raw ADS client of our own: one stream, requests written as given, responses queued, for tests of the
// protocol details a real client does not exercise on demand (delta, NACKs, unsubscribing, bad requests).
import * as grpc from '@grpc/grpc-js';
import { envoyTypes } from '../protos.ts';

type Message = Record<string, unknown>;

/** One ADS stream, `sotw` (StreamAggregatedResources) or `delta` (DeltaAggregatedResources). */
export class RawAdsStream {
  readonly #client: grpc.Client;
  readonly #call: grpc.ClientDuplexStream<Message, Message>;
  readonly #queue: Message[] = [];
  readonly #waiters: Array<(m: Message) => void> = [];
  /** The stream's final status. */
  readonly status: Promise<grpc.StatusObject>;

  constructor(address: string, mode: 'sotw' | 'delta') {
    const definition = envoyTypes()[
      'envoy.service.discovery.v3.AggregatedDiscoveryService'
    ] as grpc.ServiceDefinition;
    const Ads = grpc.makeGenericClientConstructor(definition, 'AggregatedDiscoveryService');
    this.#client = new Ads(address, grpc.credentials.createInsecure());
    const method = mode === 'sotw' ? 'StreamAggregatedResources' : 'DeltaAggregatedResources';
    this.#call = (this.#client as unknown as Record<string, () => grpc.ClientDuplexStream<Message, Message>>)[
      method
    ]!();
    this.#call.on('data', (m: Message) => {
      const waiter = this.#waiters.shift();
      if (waiter) waiter(m);
      else this.#queue.push(m);
    });
    this.#call.on('error', () => {});
    this.status = new Promise((resolve) => this.#call.on('status', resolve));
  }

  send(request: Message): void {
    this.#call.write(request);
  }

  /** The next response, or a rejection after `timeoutMs`. */
  next(timeoutMs = 10_000): Promise<Message> {
    const queued = this.#queue.shift();
    if (queued) return Promise.resolve(queued);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = this.#waiters.indexOf(waiter);
        if (i >= 0) this.#waiters.splice(i, 1);
        reject(new Error(`no response within ${timeoutMs} ms`));
      }, timeoutMs);
      const waiter = (m: Message) => {
        clearTimeout(timer);
        resolve(m);
      };
      this.#waiters.push(waiter);
    });
  }

  /** Responses received and not yet taken. */
  get queued(): number {
    return this.#queue.length;
  }

  /** Cancel the stream (a client going away). */
  cancel(): void {
    this.#call.cancel();
  }

  /** Half-close (the client is done). */
  end(): void {
    this.#call.end();
  }

  close(): void {
    this.#call.cancel();
    this.#client.close();
  }
}

/** Names of a delta response's resources. */
export function deltaNames(response: Message): string[] {
  return ((response['resources'] as Array<{ name: string }>) ?? []).map((r) => r.name).sort();
}

/** Names of a state-of-the-world response's resources (`name`, or `cluster_name` of a load assignment). */
export function sotwNames(response: Message): string[] {
  return ((response['resources'] as Array<Record<string, unknown>>) ?? [])
    .map((r) => String(r['name'] ?? r['cluster_name']))
    .sort();
}
