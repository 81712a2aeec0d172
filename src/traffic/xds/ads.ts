// The Aggregated Discovery Service: one gRPC stream per client carrying every resource type, in both
// protocol variants. State of the world (StreamAggregatedResources): each response holds every subscribed
// resource of a type and is acknowledged by type. Incremental (DeltaAggregatedResources): responses hold only
// what changed, plus the names removed, and the client tells which versions it has when it reconnects.
// Each stream keeps, per type, what the client subscribed to, what it was sent and the nonce of the last
// response; a snapshot change wakes every stream of its node, which sends only what differs.
import type * as grpc from '@grpc/grpc-js';
import { Counter, Gauge, type Logger, type MetricsRegistry } from '../../runtime/index.ts';
import { TrafficError, TrafficErrorCode } from '../errors.ts';
import type { Node } from './node.ts';
import { envoyTypes } from './protos.ts';
import {
  type EncodedResource,
  kindOfTypeUrl,
  RESOURCE_KINDS,
  type ResourceKind,
  TYPE_URLS,
} from './resources.ts';
import type { Snapshot, SnapshotCache } from './snapshot.ts';

/** The two variants of the protocol. */
export type XdsMode = 'sotw' | 'delta';

/** What the client's `error_detail` said when it rejected a response. */
export interface NackDetail {
  /** A google.rpc.Code (grpc-js-xds sends 14, UNAVAILABLE). */
  readonly code: number;
  readonly message: string;
}

/** What the ADS server reports, to `onEvent` listeners. */
export type XdsEvent =
  | { type: 'stream-opened'; stream: number; mode: XdsMode; peer: string }
  | {
      type: 'stream-closed';
      stream: number;
      mode: XdsMode;
      peer: string;
      node: string | undefined;
      reason: string;
    }
  | {
      type: 'sent';
      stream: number;
      mode: XdsMode;
      node: string;
      kind: ResourceKind;
      /** The type's version (SotW `version_info`, delta `system_version_info`). */
      version: string;
      nonce: string;
      resources: readonly string[];
      /** Delta only: names the client is told are gone. */
      removed: readonly string[];
    }
  | {
      type: 'ack';
      stream: number;
      mode: XdsMode;
      node: string;
      kind: ResourceKind;
      version: string;
      nonce: string;
    }
  | {
      type: 'nack';
      stream: number;
      mode: XdsMode;
      node: string;
      kind: ResourceKind;
      /** The version the client rejected; it keeps the one it had. */
      version: string;
      nonce: string;
      /** Names in the rejected response. */
      resources: readonly string[];
      detail: NackDetail;
      /** {@link TrafficErrorCode.xdsNack}, with the client's message. */
      error: TrafficError;
    }
  | { type: 'bad-request'; stream: number; mode: XdsMode; peer: string; error: TrafficError };

/** Where one stream stands with one kind: what it asked for, was sent, and acknowledged. */
export interface StreamKindStatus {
  /** Subscribed to every resource of the kind. */
  readonly wildcard: boolean;
  readonly subscribed: readonly string[];
  /** Version of the last response, if any. */
  readonly sent: string | undefined;
  readonly acked: string | undefined;
  /** The last version the client rejected, if any (cleared by a later ACK). */
  readonly nacked: string | undefined;
}

/** One open stream, as {@link AdsServer.streams} lists it. */
export interface StreamStatus {
  readonly id: number;
  readonly mode: XdsMode;
  readonly peer: string;
  /** Node id, once the first request came. */
  readonly node: string | undefined;
  readonly kinds: Partial<Record<ResourceKind, StreamKindStatus>>;
}

interface Metrics {
  streams: Gauge<'mode'>;
  responses: Counter<'kind' | 'mode'>;
  acks: Counter<'kind' | 'mode'>;
  nacks: Counter<'kind' | 'mode'>;
  badRequests: Counter<'mode'>;
}

function makeMetrics(registry: MetricsRegistry): Metrics {
  const registers = [registry];
  return {
    streams: new Gauge({
      name: 'capstan_xds_streams',
      help: 'Open ADS streams, by protocol variant (sotw, delta).',
      labelNames: ['mode'],
      registers,
    }),
    responses: new Counter({
      name: 'capstan_xds_responses_total',
      help: 'Responses pushed to xDS clients, by resource kind and protocol variant.',
      labelNames: ['kind', 'mode'],
      registers,
    }),
    acks: new Counter({
      name: 'capstan_xds_acks_total',
      help: 'Responses xDS clients accepted.',
      labelNames: ['kind', 'mode'],
      registers,
    }),
    nacks: new Counter({
      name: 'capstan_xds_nacks_total',
      help: 'Responses xDS clients rejected (they keep their previous configuration).',
      labelNames: ['kind', 'mode'],
      registers,
    }),
    badRequests: new Counter({
      name: 'capstan_xds_bad_requests_total',
      help: 'Streams ended for a request the control plane cannot serve (unknown type URL, no node).',
      labelNames: ['mode'],
      registers,
    }),
  };
}

/** Options of {@link AdsServer}. */
export interface AdsServerOptions {
  cache: SnapshotCache;
  logger: Logger;
  metrics?: MetricsRegistry;
  /** Sent as `control_plane.identifier` in responses. Default `capstan`. */
  identifier?: string;
}

type Call = grpc.ServerDuplexStream<Record<string, unknown>, Record<string, unknown>>;

/** A `google.rpc.Status` from a request's `error_detail`, or undefined. */
function errorDetail(request: Record<string, unknown>): NackDetail | undefined {
  const detail = request['error_detail'] as { code?: number; message?: string } | null | undefined;
  if (!detail) return undefined;
  return { code: detail.code ?? 0, message: detail.message ?? '' };
}

function strings(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

/** Listeners and clusters are subscribed to as a whole when no name is given (the legacy wildcard). */
const WILDCARD_KINDS: ReadonlySet<ResourceKind> = new Set(['listener', 'cluster']);

/** What both variants share: the call, its node, ordered writes that coalesce under backpressure. */
abstract class AdsStream {
  readonly id: number;
  readonly peer: string;
  abstract readonly mode: XdsMode;
  node: Node | undefined;
  key: string | undefined;
  protected readonly call: Call;
  protected readonly server: AdsServer;
  #unwatch: (() => void) | undefined;
  #nonce = 0;
  /** A write did not fit the buffer: hold responses until 'drain', then send what is current. */
  #blocked = false;
  closed = false;

  constructor(server: AdsServer, call: Call, id: number) {
    this.server = server;
    this.call = call;
    this.id = id;
    this.peer = call.getPeer();
    call.on('drain', () => {
      this.#blocked = false;
      this.respondAll();
    });
  }

  get nodeId(): string {
    return this.node?.id ?? '';
  }

  nextNonce(): string {
    this.#nonce += 1;
    return `${this.id}-${this.#nonce}`;
  }

  get blocked(): boolean {
    return this.#blocked;
  }

  /** Take the node from the stream's first request; later requests may omit it. */
  identify(request: Record<string, unknown>): void {
    if (this.node) return;
    const node = request['node'] as Node | null | undefined;
    if (!node || typeof node.id !== 'string' || node.id === '') {
      throw new TrafficError(
        TrafficErrorCode.xdsRequest,
        'the first request of a stream must carry a node with an id (envoy.config.core.v3.Node)',
      );
    }
    this.node = node;
    this.key = this.server.cache.nodeHash(node);
    this.#unwatch = this.server.cache.watch(this.key, () => this.respondAll());
  }

  /** The kind of a request's type URL; a {@link TrafficErrorCode.xdsRequest} error when it is not served. */
  kindOf(request: Record<string, unknown>): ResourceKind {
    const typeUrl = request['type_url'];
    const kind = typeof typeUrl === 'string' ? kindOfTypeUrl(typeUrl) : undefined;
    if (!kind) {
      throw new TrafficError(
        TrafficErrorCode.xdsRequest,
        typeUrl === '' || typeof typeUrl !== 'string'
          ? 'a request on the aggregated stream must name its type_url'
          : `unknown resource type URL ${JSON.stringify(typeUrl)}; this control plane serves ${RESOURCE_KINDS.map((k) => TYPE_URLS[k]).join(', ')}`,
      );
    }
    return kind;
  }

  snapshot(): Snapshot | undefined {
    return this.key === undefined ? undefined : this.server.cache.get(this.key);
  }

  write(message: Record<string, unknown>): void {
    if (!this.call.write(message)) this.#blocked = true;
  }

  abstract handle(request: Record<string, unknown>): void;
  abstract respond(kind: ResourceKind): void;
  abstract status(): StreamStatus;

  respondAll(): void {
    if (this.closed) return;
    for (const kind of RESOURCE_KINDS) this.respond(kind);
  }

  /** End the stream with a status (OK ends it cleanly: the client reconnects). */
  end(code: grpc.status, details: string): void {
    if (this.closed) return;
    if (code === 0) this.call.end();
    else this.call.emit('error', { code, details });
  }

  cleanup(): void {
    this.closed = true;
    this.#unwatch?.();
    this.#unwatch = undefined;
  }
}

interface SotwKind {
  wildcard: boolean;
  names: Set<string>;
  /** Must answer even if nothing changed: the first request of the type on this stream. */
  initial: boolean;
  nonce: string | undefined;
  sentVersion: string | undefined;
  /** Name → resource version of the last response. */
  sent: Map<string, string>;
  acked: string | undefined;
  nacked: string | undefined;
}

class SotwStream extends AdsStream {
  readonly mode = 'sotw' as const;
  readonly #kinds = new Map<ResourceKind, SotwKind>();

  handle(request: Record<string, unknown>): void {
    this.identify(request);
    const kind = this.kindOf(request);
    let st = this.#kinds.get(kind);
    const nonce = typeof request['response_nonce'] === 'string' ? request['response_nonce'] : '';
    if (st && nonce !== '' && nonce !== st.nonce) return; // stale: an answer to a response superseded since
    if (!st) {
      st = {
        wildcard: false,
        names: new Set(),
        initial: true,
        nonce: undefined,
        sentVersion: undefined,
        sent: new Map(),
        acked: undefined,
        nacked: undefined,
      };
      this.#kinds.set(kind, st);
    } else if (nonce === '') {
      st.initial = true; // the client asks again from scratch
    } else {
      const detail = errorDetail(request);
      if (detail) this.server.nack(this, kind, st.sentVersion ?? '', nonce, [...st.sent.keys()], detail);
      else this.server.ack(this, kind, st.sentVersion ?? '', nonce);
      if (detail) st.nacked = st.sentVersion;
      else {
        st.acked = st.sentVersion;
        st.nacked = undefined;
      }
    }
    const names = strings(request['resource_names']);
    st.wildcard = names.includes('*') || (names.length === 0 && WILDCARD_KINDS.has(kind));
    st.names = new Set(names.filter((n) => n !== '*'));
    this.respond(kind);
  }

  respond(kind: ResourceKind): void {
    const st = this.#kinds.get(kind);
    if (!st || this.closed || this.blocked) return;
    const snapshot = this.snapshot();
    if (!snapshot) return;
    const all = snapshot.resources(kind);
    const selected: EncodedResource[] = st.wildcard
      ? [...all.values()]
      : [...st.names].flatMap((n) => {
          const r = all.get(n);
          return r ? [r] : [];
        });
    // Send when asked afresh, when a selected resource is new or changed, or (listeners and clusters, where
    // a response lists everything that exists) when one sent before is gone. Equal content is not sent
    // again: a rejected response is not repeated until something changes.
    const changed =
      st.initial ||
      selected.some((r) => st.sent.get(r.name) !== r.version) ||
      (WILDCARD_KINDS.has(kind) && selected.length !== st.sent.size);
    if (!changed) return;
    const nonce = this.nextNonce();
    const version = snapshot.version(kind);
    this.write({
      version_info: version,
      resources: selected.map((r) => r.any),
      type_url: TYPE_URLS[kind],
      nonce,
      control_plane: { identifier: this.server.identifier },
    });
    st.initial = false;
    st.nonce = nonce;
    st.sentVersion = version;
    st.sent = new Map(selected.map((r) => [r.name, r.version]));
    this.server.sent(this, kind, version, nonce, [...st.sent.keys()], []);
  }

  status(): StreamStatus {
    const kinds: Partial<Record<ResourceKind, StreamKindStatus>> = {};
    for (const [kind, st] of this.#kinds) {
      kinds[kind] = {
        wildcard: st.wildcard,
        subscribed: [...st.names],
        sent: st.sentVersion,
        acked: st.acked,
        nacked: st.nacked,
      };
    }
    return { id: this.id, mode: this.mode, peer: this.peer, node: this.node?.id, kinds };
  }
}

interface DeltaKind {
  wildcard: boolean;
  names: Set<string>;
  /** Name → version the client has (told by it on reconnect, or sent since). */
  known: Map<string, string>;
  /** Subscribed names already reported as not existing. */
  toldAbsent: Set<string>;
  /** Responses not yet answered: nonce → the type version and names they carried. */
  pending: Map<string, { version: string; names: string[] }>;
  sentVersion: string | undefined;
  acked: string | undefined;
  nacked: string | undefined;
}

/** Unanswered responses kept per type; older ones are forgotten (their ACK then counts for nothing). */
const MAX_PENDING = 64;

class DeltaStream extends AdsStream {
  readonly mode = 'delta' as const;
  readonly #kinds = new Map<ResourceKind, DeltaKind>();

  handle(request: Record<string, unknown>): void {
    this.identify(request);
    const kind = this.kindOf(request);
    const subscribe = strings(request['resource_names_subscribe']);
    const unsubscribe = strings(request['resource_names_unsubscribe']);
    let st = this.#kinds.get(kind);
    if (!st) {
      st = {
        wildcard: subscribe.length === 0 && WILDCARD_KINDS.has(kind),
        names: new Set(),
        known: new Map(),
        toldAbsent: new Set(),
        pending: new Map(),
        sentVersion: undefined,
        acked: undefined,
        nacked: undefined,
      };
      const initial = request['initial_resource_versions'] as Record<string, string> | null | undefined;
      for (const [name, version] of Object.entries(initial ?? {})) {
        if (typeof version === 'string') st.known.set(name, version);
      }
      this.#kinds.set(kind, st);
    }
    const nonce = typeof request['response_nonce'] === 'string' ? request['response_nonce'] : '';
    const answered = nonce === '' ? undefined : st.pending.get(nonce);
    if (answered) {
      st.pending.delete(nonce);
      const detail = errorDetail(request);
      if (detail) {
        st.nacked = answered.version;
        this.server.nack(this, kind, answered.version, nonce, answered.names, detail);
      } else {
        st.acked = answered.version;
        st.nacked = undefined;
        this.server.ack(this, kind, answered.version, nonce);
      }
    }
    for (const name of subscribe) {
      if (name === '*') st.wildcard = true;
      else st.names.add(name);
    }
    for (const name of unsubscribe) {
      if (name === '*') st.wildcard = false;
      else {
        st.names.delete(name);
        st.toldAbsent.delete(name);
        // Not covered by the wildcard any more either: the client drops it, so a later subscription resends it.
        if (!st.wildcard) st.known.delete(name);
      }
    }
    this.respond(kind);
  }

  respond(kind: ResourceKind): void {
    const st = this.#kinds.get(kind);
    if (!st || this.closed || this.blocked) return;
    const snapshot = this.snapshot();
    if (!snapshot) return;
    const all = snapshot.resources(kind);
    const send: EncodedResource[] = [];
    const removed: string[] = [];
    for (const name of [...st.known.keys()]) {
      if (!all.has(name) && (st.wildcard || st.names.has(name))) {
        removed.push(name);
        st.known.delete(name);
        st.toldAbsent.add(name);
      }
    }
    const candidates = st.wildcard ? new Set([...all.keys(), ...st.names]) : st.names;
    for (const name of candidates) {
      const r = all.get(name);
      if (r) {
        if (st.known.get(name) !== r.version) send.push(r);
      } else if (st.names.has(name) && !st.toldAbsent.has(name)) {
        // A name subscribed to that does not exist: say so, once, so the client need not wait for a timeout.
        removed.push(name);
        st.toldAbsent.add(name);
      }
    }
    if (send.length === 0 && removed.length === 0) return;
    const nonce = this.nextNonce();
    const version = snapshot.version(kind);
    this.write({
      system_version_info: version,
      resources: send.map((r) => ({ name: r.name, version: r.version, resource: r.any })),
      type_url: TYPE_URLS[kind],
      removed_resources: removed,
      nonce,
      control_plane: { identifier: this.server.identifier },
    });
    for (const r of send) {
      st.known.set(r.name, r.version);
      st.toldAbsent.delete(r.name);
    }
    st.sentVersion = version;
    st.pending.set(nonce, { version, names: send.map((r) => r.name) });
    if (st.pending.size > MAX_PENDING) st.pending.delete(st.pending.keys().next().value as string);
    this.server.sent(
      this,
      kind,
      version,
      nonce,
      send.map((r) => r.name),
      removed,
    );
  }

  status(): StreamStatus {
    const kinds: Partial<Record<ResourceKind, StreamKindStatus>> = {};
    for (const [kind, st] of this.#kinds) {
      kinds[kind] = {
        wildcard: st.wildcard,
        subscribed: [...st.names],
        sent: st.sentVersion,
        acked: st.acked,
        nacked: st.nacked,
      };
    }
    return { id: this.id, mode: this.mode, peer: this.peer, node: this.node?.id, kinds };
  }
}

/**
 * The ADS service: `definition` and `implementation` go to a grpc-js `Server`'s `addService`. Streams are
 * served from `cache`; every stream is cleaned up (watch removed, gauge lowered) when it ends, however it
 * ends.
 */
export class AdsServer {
  readonly cache: SnapshotCache;
  readonly identifier: string;
  readonly #log: Logger;
  readonly #metrics: Metrics | undefined;
  readonly #streams = new Map<number, AdsStream>();
  readonly #listeners = new Set<(event: XdsEvent) => void>();
  #nextId = 0;
  #closing = false;

  constructor(options: AdsServerOptions) {
    this.cache = options.cache;
    this.identifier = options.identifier ?? 'capstan';
    this.#log = options.logger.child({ component: 'xds' });
    this.#metrics = options.metrics ? makeMetrics(options.metrics) : undefined;
  }

  /** The service definition (`envoy.service.discovery.v3.AggregatedDiscoveryService`). */
  get definition(): grpc.ServiceDefinition {
    return envoyTypes()['envoy.service.discovery.v3.AggregatedDiscoveryService'] as grpc.ServiceDefinition;
  }

  /** The handlers of {@link definition}. */
  get implementation(): grpc.UntypedServiceImplementation {
    return {
      StreamAggregatedResources: (call: Call) =>
        this.#serve(new SotwStream(this, call, ++this.#nextId), call),
      DeltaAggregatedResources: (call: Call) =>
        this.#serve(new DeltaStream(this, call, ++this.#nextId), call),
    };
  }

  /** Listen for {@link XdsEvent}s; returns a function that stops listening. */
  onEvent(listener: (event: XdsEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** The open streams and where each stands. */
  streams(): StreamStatus[] {
    return [...this.#streams.values()].map((s) => s.status());
  }

  /**
   * End every stream cleanly (status OK) and refuse new ones: at shutdown, so clients reconnect elsewhere
   * (keeping their configuration meanwhile) and the gRPC server drains at once.
   */
  closeAll(): void {
    this.#closing = true;
    for (const stream of [...this.#streams.values()]) stream.end(0, 'control plane shutting down');
  }

  #emit(event: XdsEvent): void {
    for (const listener of this.#listeners) {
      try {
        listener(event);
      } catch (err) {
        this.#log.warn({ err }, 'an xDS event listener threw');
      }
    }
  }

  #serve(stream: AdsStream, call: Call): void {
    if (this.#closing) {
      call.emit('error', { code: 14, details: 'control plane shutting down' });
      return;
    }
    this.#streams.set(stream.id, stream);
    this.#metrics?.streams.inc({ mode: stream.mode });
    this.#log.debug({ stream: stream.id, mode: stream.mode, peer: stream.peer }, 'xDS stream opened');
    this.#emit({ type: 'stream-opened', stream: stream.id, mode: stream.mode, peer: stream.peer });
    let reason = 'ended by the client';
    const finish = () => {
      if (stream.closed) return;
      stream.cleanup();
      this.#streams.delete(stream.id);
      this.#metrics?.streams.dec({ mode: stream.mode });
      this.#log.debug({ stream: stream.id, node: stream.node?.id, reason }, 'xDS stream closed');
      this.#emit({
        type: 'stream-closed',
        stream: stream.id,
        mode: stream.mode,
        peer: stream.peer,
        node: stream.node?.id,
        reason,
      });
    };
    call.on('data', (request: Record<string, unknown>) => {
      if (stream.closed) return;
      try {
        stream.handle(request);
      } catch (err) {
        const error =
          err instanceof TrafficError
            ? err
            : new TrafficError(TrafficErrorCode.xdsRequest, (err as Error).message, { cause: err });
        this.#metrics?.badRequests.inc({ mode: stream.mode });
        this.#log.warn({ stream: stream.id, peer: stream.peer, err: error.message }, 'bad xDS request');
        this.#emit({ type: 'bad-request', stream: stream.id, mode: stream.mode, peer: stream.peer, error });
        reason = `bad request: ${error.message}`;
        stream.end(3, error.message); // INVALID_ARGUMENT
        finish();
      }
    });
    call.on('end', () => {
      // The client half-closed: end our side too.
      finish();
      call.end();
    });
    call.on('cancelled', () => {
      reason = 'cancelled';
      finish();
    });
    call.on('error', () => finish());
    call.on('close', () => finish());
  }

  /** @internal called by streams. */
  sent(
    stream: AdsStream,
    kind: ResourceKind,
    version: string,
    nonce: string,
    resources: readonly string[],
    removed: readonly string[],
  ): void {
    this.#metrics?.responses.inc({ kind, mode: stream.mode });
    this.#emit({
      type: 'sent',
      stream: stream.id,
      mode: stream.mode,
      node: stream.nodeId,
      kind,
      version,
      nonce,
      resources,
      removed,
    });
  }

  /** @internal called by streams. */
  ack(stream: AdsStream, kind: ResourceKind, version: string, nonce: string): void {
    this.#metrics?.acks.inc({ kind, mode: stream.mode });
    this.#emit({
      type: 'ack',
      stream: stream.id,
      mode: stream.mode,
      node: stream.nodeId,
      kind,
      version,
      nonce,
    });
  }

  /** @internal called by streams. */
  nack(
    stream: AdsStream,
    kind: ResourceKind,
    version: string,
    nonce: string,
    resources: readonly string[],
    detail: NackDetail,
  ): void {
    this.#metrics?.nacks.inc({ kind, mode: stream.mode });
    const error = new TrafficError(
      TrafficErrorCode.xdsNack,
      `node ${stream.nodeId} rejected ${kind} version ${version} (${resources.join(', ') || 'no resources'}): ${detail.message}`,
    );
    this.#log.warn(
      { stream: stream.id, node: stream.nodeId, kind, version, resources, detail: detail.message },
      'xDS client rejected a configuration (NACK); it keeps its previous one',
    );
    this.#emit({
      type: 'nack',
      stream: stream.id,
      mode: stream.mode,
      node: stream.nodeId,
      kind,
      version,
      nonce,
      resources,
      detail,
      error,
    });
  }
}
