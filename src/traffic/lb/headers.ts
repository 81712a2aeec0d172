// What a proxy changes in the headers it forwards: hop-by-hop headers never cross it (RFC 9110 §7.6.1),
// and X-Forwarded-For/Proto/Host are taken from the client only when the client is a proxy we trust
// (Go's ReverseProxy appended to whatever the client sent and enabled spoofing: go 50465).
import { BlockList, isIP } from 'node:net';
import { TrafficError, TrafficErrorCode } from '../errors.ts';

/** Headers that describe one connection, not the message: removed in both directions. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'http2-settings',
]);

/** Request headers the proxy sets itself or cannot forward (undici refuses `expect`; 100-continue is answered here). */
const REQUEST_DROPPED = new Set([
  'expect',
  'forwarded',
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
]);

const NO_TOKENS: ReadonlySet<string> = new Set();

/** Header names listed in `Connection` (hop-by-hop by declaration), lowercased. */
export function connectionTokens(value: string | string[] | undefined): ReadonlySet<string> {
  // Most messages name nothing (keep-alive is the default): no Set for them.
  if (value === undefined) return NO_TOKENS;
  const tokens = new Set<string>();
  for (const v of Array.isArray(value) ? value : [value]) {
    for (const t of v.split(',')) {
      const token = t.trim().toLowerCase();
      if (token) tokens.add(token);
    }
  }
  return tokens;
}

/**
 * Which clients may tell us who the original client was: a list of addresses and CIDR ranges
 * (`10.0.0.0/8`, `::1`). Empty by default: every client is the original one.
 */
export class TrustedProxies {
  readonly #list = new BlockList();
  readonly size: number;

  constructor(entries: readonly string[] = []) {
    for (const entry of entries) {
      const [address, bits, extra] = entry.trim().split('/');
      const family = isIP(address ?? '');
      const prefix = bits === undefined ? (family === 6 ? 128 : 32) : Number(bits);
      if (
        family === 0 ||
        extra !== undefined ||
        !Number.isInteger(prefix) ||
        prefix < 0 ||
        prefix > (family === 6 ? 128 : 32)
      ) {
        throw new TrafficError(
          TrafficErrorCode.invalid,
          `trusted proxy ${JSON.stringify(entry)} is not an address or CIDR range`,
        );
      }
      this.#list.addSubnet(address!, prefix, family === 6 ? 'ipv6' : 'ipv4');
    }
    this.size = entries.length;
  }

  /** True when `address` (as the socket reports it, IPv4-mapped IPv6 included) is trusted. */
  has(address: string | undefined): boolean {
    if (this.size === 0 || !address) return false;
    const mapped = address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
    const family = isIP(mapped);
    if (family === 0) return false;
    return this.#list.check(mapped, family === 6 ? 'ipv6' : 'ipv4');
  }
}

/** What {@link forwardHeaders} needs to know about the client side. */
export interface ForwardContext {
  /** The peer's address (`socket.remoteAddress`). */
  peer: string | undefined;
  /** `https` when the client reached us over TLS. */
  scheme: 'http' | 'https';
  /** The Host (or `:authority`) the client asked for. */
  host: string | undefined;
  trusted: TrustedProxies;
}

function first(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/**
 * The request headers to send to a backend, as a flat `[name, value, ...]` list: the client's headers
 * (duplicates kept, in order) minus hop-by-hop ones, those named in `Connection`, HTTP/2 pseudo-headers
 * and `Expect`; then `X-Forwarded-For` (the peer appended to the client's list only when the peer is a
 * trusted proxy, else the peer alone), `X-Forwarded-Proto` and `X-Forwarded-Host` (kept from a trusted
 * proxy, else ours). `Forwarded` from an untrusted client is dropped.
 */
export function forwardHeaders(
  rawHeaders: readonly string[],
  headers: Record<string, string | string[] | undefined>,
  ctx: ForwardContext,
): string[] {
  const listed = connectionTokens(headers['connection']);
  const out: string[] = [];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    const lower = name.toLowerCase();
    if (lower.charCodeAt(0) === 58 /* ':' */) continue;
    if (HOP_BY_HOP.has(lower) || REQUEST_DROPPED.has(lower) || listed.has(lower)) continue;
    out.push(name, rawHeaders[i + 1]!);
  }
  // An HTTP/2 request names its host in :authority only.
  if (headers['host'] === undefined && ctx.host !== undefined) out.push('host', ctx.host);
  const peer = ctx.peer?.startsWith('::ffff:') ? ctx.peer.slice(7) : (ctx.peer ?? '');
  if (ctx.trusted.has(ctx.peer)) {
    const prior = headers['x-forwarded-for'];
    const chain = (Array.isArray(prior) ? prior.join(', ') : (prior ?? '')).trim();
    out.push('x-forwarded-for', chain ? `${chain}, ${peer}` : peer);
    out.push('x-forwarded-proto', first(headers['x-forwarded-proto']) ?? ctx.scheme);
    const host = first(headers['x-forwarded-host']) ?? ctx.host;
    if (host !== undefined) out.push('x-forwarded-host', host);
    const forwarded = headers['forwarded'];
    if (forwarded !== undefined)
      out.push('forwarded', Array.isArray(forwarded) ? forwarded.join(', ') : forwarded);
  } else {
    out.push('x-forwarded-for', peer, 'x-forwarded-proto', ctx.scheme);
    if (ctx.host !== undefined) out.push('x-forwarded-host', ctx.host);
  }
  return out;
}

/**
 * A backend's response headers for the client: hop-by-hop ones and those named in its `Connection`
 * removed (Node frames the response to the client itself).
 */
export function responseHeaders(
  headers: Record<string, string | string[] | undefined>,
): Record<string, string | string[]> {
  const listed = connectionTokens(headers['connection']);
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || HOP_BY_HOP.has(name) || listed.has(name)) continue;
    out[name] = value;
  }
  return out;
}
