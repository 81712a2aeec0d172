// What every discovery source yields: endpoints in one shape, checked and in a stable order, so two
// snapshots of the same set compare equal whichever source (or answer order) produced them.
import { isIP } from 'node:net';
import { TrafficError, TrafficErrorCode } from '../errors.ts';
import type { BackendEndpoint } from '../lb/backend.ts';

/**
 * Whether an endpoint may take traffic: `healthy` takes new requests; `draining` is going away but still
 * serves (a terminating pod that is still serving): used only when no endpoint is healthy, as kube-proxy
 * does; `unhealthy` takes none.
 */
export type EndpointHealth = 'healthy' | 'draining' | 'unhealthy';

/** One instance of a service, as a discovery source sees it. */
export interface Endpoint {
  /** IP address (v4 or v6) or host name. */
  readonly address: string;
  readonly port: number;
  /** Share of traffic relative to the others, 1..1000. */
  readonly weight: number;
  readonly health: EndpointHealth;
  /** Consul tags, Kubernetes zone... whatever the source has; sorted. */
  readonly tags: readonly string[];
  /** Source-specific details (`consul.node`, `k8s.pod`, `dns.priority`...). */
  readonly metadata: Readonly<Record<string, string>>;
}

/** What a source may hand to {@link normalizeEndpoints}: weight, health, tags and metadata are optional. */
export interface EndpointInput {
  address: string;
  port: number;
  weight?: number;
  health?: EndpointHealth;
  tags?: readonly string[];
  metadata?: Record<string, string>;
}

const HEALTH: ReadonlySet<string> = new Set(['healthy', 'draining', 'unhealthy']);
const HOST_NAME = /^(?=.{1,253}$)[a-z0-9_]([a-z0-9_-]{0,62})(\.[a-z0-9_]([a-z0-9_-]{0,62}))*\.?$/i;

/** `address:port`, with brackets around IPv6: the identity of an endpoint in a set. */
export function endpointKey(e: { address: string; port: number }): string {
  return isIP(e.address) === 6 ? `[${e.address}]:${e.port}` : `${e.address}:${e.port}`;
}

/** Clamp a source's weight (SRV 0..65535, Consul 1..N) into the load balancer's 1..1000. */
export function clampWeight(weight: number): number {
  if (!Number.isFinite(weight)) return 1;
  return Math.min(1000, Math.max(1, Math.round(weight)));
}

/**
 * Check endpoints and put them in one shape and order (by address, then port). Throws
 * {@link TrafficErrorCode.discovery} naming each bad entry: a source reports that as an error and keeps
 * its last good set. An address listed twice keeps its first entry (EndpointSlices of one service may
 * overlap while the controller moves endpoints between them).
 */
export function normalizeEndpoints(inputs: readonly EndpointInput[], what: string): Endpoint[] {
  const problems: string[] = [];
  const byKey = new Map<string, Endpoint>();
  inputs.forEach((input, i) => {
    const at = `${what}: endpoint ${i}`;
    if (typeof input !== 'object' || input === null) {
      problems.push(`${at} is not an object`);
      return;
    }
    const address = typeof input.address === 'string' ? input.address.trim() : '';
    if (!address || (isIP(address) === 0 && !HOST_NAME.test(address))) {
      problems.push(`${at}: address ${JSON.stringify(input.address)} is not an IP or host name`);
      return;
    }
    if (!Number.isInteger(input.port) || input.port < 1 || input.port > 65535) {
      problems.push(`${at}: port ${JSON.stringify(input.port)} is not 1..65535`);
      return;
    }
    const weight = input.weight ?? 1;
    if (typeof weight !== 'number' || !Number.isInteger(weight) || weight < 1 || weight > 1000) {
      problems.push(`${at}: weight ${JSON.stringify(weight)} is not an integer 1..1000`);
      return;
    }
    const health = input.health ?? 'healthy';
    if (!HEALTH.has(health)) {
      problems.push(`${at}: health ${JSON.stringify(health)} is not healthy, draining or unhealthy`);
      return;
    }
    const tags = input.tags ?? [];
    if (!Array.isArray(tags) || tags.some((t) => typeof t !== 'string')) {
      problems.push(`${at}: tags must be a list of strings`);
      return;
    }
    const metadata = input.metadata ?? {};
    if (
      typeof metadata !== 'object' ||
      Array.isArray(metadata) ||
      Object.values(metadata).some((v) => typeof v !== 'string')
    ) {
      problems.push(`${at}: metadata must map strings to strings`);
      return;
    }
    const endpoint: Endpoint = Object.freeze({
      address,
      port: input.port,
      weight,
      health,
      tags: Object.freeze([...new Set(tags)].sort()),
      metadata: Object.freeze(
        Object.fromEntries(Object.entries(metadata).sort(([a], [b]) => (a < b ? -1 : 1))),
      ),
    });
    const key = endpointKey(endpoint);
    if (!byKey.has(key)) byKey.set(key, endpoint);
  });
  if (problems.length > 0) {
    throw new TrafficError(
      TrafficErrorCode.discovery,
      problems.length === 1 ? problems[0]! : `${what}: bad endpoints`,
      {
        problems,
      },
    );
  }
  return [...byKey.values()].sort(compareEndpoints);
}

function compareEndpoints(a: Endpoint, b: Endpoint): number {
  if (a.address !== b.address) return a.address < b.address ? -1 : 1;
  return a.port - b.port;
}

/** Two normalized snapshots hold the same endpoints with the same weight, health, tags and metadata. */
export function sameEndpoints(a: readonly Endpoint[], b: readonly Endpoint[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (
      x.address !== y.address ||
      x.port !== y.port ||
      x.weight !== y.weight ||
      x.health !== y.health ||
      x.tags.length !== y.tags.length ||
      x.tags.some((t, j) => t !== y.tags[j]) ||
      JSON.stringify(x.metadata) !== JSON.stringify(y.metadata)
    ) {
      return false;
    }
  }
  return true;
}

/**
 * The endpoints that should take new requests: the healthy ones, or when none is, the draining ones
 * (better a pod that is shutting down than no answer at all); never the unhealthy.
 */
export function routableEndpoints(endpoints: readonly Endpoint[]): Endpoint[] {
  const healthy = endpoints.filter((e) => e.health === 'healthy');
  return healthy.length > 0 ? healthy : endpoints.filter((e) => e.health === 'draining');
}

/** Options of {@link toBackendEndpoints}. */
export interface BackendMapping {
  /** Scheme of the backends' URLs. Default `http`. */
  scheme?: 'http' | 'https';
}

/** The {@link routableEndpoints} as a load balancer's backends (`http://10.0.0.7:8080`, weight kept). */
export function toBackendEndpoints(
  endpoints: readonly Endpoint[],
  mapping: BackendMapping = {},
): BackendEndpoint[] {
  const scheme = mapping.scheme ?? 'http';
  return routableEndpoints(endpoints).map((e) => ({
    url: `${scheme}://${endpointKey(e)}`,
    weight: e.weight,
  }));
}
