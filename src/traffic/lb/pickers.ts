// Policies choosing a backend for each request from the live set. A picker only reads: it never changes a
// backend's state, so sources and health checks can swap the set under it between two requests.
import { TrafficError, TrafficErrorCode } from '../errors.ts';
import type { Backend } from './backend.ts';

/** The policies of {@link createPicker}. */
export const LB_POLICIES = ['round-robin', 'least-request', 'weighted', 'consistent-hash'] as const;
/** One of {@link LB_POLICIES}. */
export type LbPolicy = (typeof LB_POLICIES)[number];

/** What a picker may look at besides the backends. */
export interface PickContext {
  /** The consistent-hash key (the configured header's value), when the request has one. */
  hashKey?: string | undefined;
  /** Backends already tried for this request: a retry goes elsewhere. */
  exclude?: ReadonlySet<Backend> | undefined;
}

/**
 * Chooses a backend. `backends` is the set's `available` list and `version` its version: a picker that
 * derives state from the list (a hash ring, weights) rebuilds it when the version changes.
 */
export interface Picker {
  readonly policy: LbPolicy;
  pick(backends: readonly Backend[], version: number, ctx: PickContext): Backend | undefined;
}

/** Options of {@link createPicker}. */
export interface PickerOptions {
  /** Test hook: a source of numbers in [0, 1). */
  random?: () => number;
  /** Ring points per unit of weight for `consistent-hash`. Default 100. */
  pointsPerWeight?: number;
}

function without(
  backends: readonly Backend[],
  exclude: ReadonlySet<Backend> | undefined,
): readonly Backend[] {
  return exclude && exclude.size > 0 ? backends.filter((b) => !exclude.has(b)) : backends;
}

/** Each backend in turn. */
class RoundRobin implements Picker {
  readonly policy = 'round-robin' as const;
  #next = 0;
  pick(backends: readonly Backend[], _version: number, ctx: PickContext): Backend | undefined {
    const list = without(backends, ctx.exclude);
    if (list.length === 0) return undefined;
    const i = this.#next++ % list.length;
    if (this.#next >= 2 ** 30) this.#next = 0;
    return list[i];
  }
}

/**
 * Power of two choices: two backends at random, the one with fewer requests in flight per unit of
 * weight. Close to the least-loaded choice without scanning, and without the herd a strict
 * "least" causes when every proxy sees the same counts.
 */
class LeastRequest implements Picker {
  readonly policy = 'least-request' as const;
  readonly #random: () => number;
  constructor(random: () => number) {
    this.#random = random;
  }
  pick(backends: readonly Backend[], _version: number, ctx: PickContext): Backend | undefined {
    const list = without(backends, ctx.exclude);
    if (list.length <= 1) return list[0];
    const a = Math.floor(this.#random() * list.length);
    let b = Math.floor(this.#random() * (list.length - 1));
    if (b >= a) b++;
    const x = list[a]!;
    const y = list[b]!;
    return x.inflight / x.weight <= y.inflight / y.weight ? x : y;
  }
}

/**
 * Smooth weighted round robin (nginx's): each pick adds every backend's weight to its score and takes the
 * highest, which then loses the total. Weights 5:1:1 give a a b a c a a, not a a a a a b c.
 */
class Weighted implements Picker {
  readonly policy = 'weighted' as const;
  readonly #score = new WeakMap<Backend, number>();
  pick(backends: readonly Backend[], _version: number, ctx: PickContext): Backend | undefined {
    const list = without(backends, ctx.exclude);
    if (list.length <= 1) return list[0];
    let total = 0;
    let best: Backend | undefined;
    let bestScore = -Infinity;
    for (const b of list) {
      const score = (this.#score.get(b) ?? 0) + b.weight;
      this.#score.set(b, score);
      total += b.weight;
      if (score > bestScore) {
        bestScore = score;
        best = b;
      }
    }
    this.#score.set(best!, bestScore - total);
    return best;
  }
}

/** FNV-1a, 32 bits, then a murmur3 finaliser so nearby strings spread over the ring. */
export function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * A hash ring over the available backends, `pointsPerWeight × weight` points each, placed by the backend's
 * origin: when a backend leaves, only its keys move. Requests without a key go round robin.
 */
class ConsistentHash implements Picker {
  readonly policy = 'consistent-hash' as const;
  readonly #pointsPerWeight: number;
  readonly #fallback = new RoundRobin();
  #version = -1;
  #points = new Uint32Array(0);
  #owners: Backend[] = [];

  constructor(pointsPerWeight: number) {
    this.#pointsPerWeight = pointsPerWeight;
  }

  #build(backends: readonly Backend[]): void {
    const entries: Array<[number, Backend]> = [];
    for (const b of backends) {
      for (let i = 0; i < this.#pointsPerWeight * b.weight; i++) entries.push([hash32(`${b.id}#${i}`), b]);
    }
    entries.sort((x, y) => x[0] - y[0] || (x[1].id < y[1].id ? -1 : 1));
    this.#points = Uint32Array.from(entries, (e) => e[0]);
    this.#owners = entries.map((e) => e[1]);
  }

  pick(backends: readonly Backend[], version: number, ctx: PickContext): Backend | undefined {
    if (ctx.hashKey === undefined) return this.#fallback.pick(backends, version, ctx);
    if (backends.length === 0) return undefined;
    if (version !== this.#version) {
      this.#build(backends);
      this.#version = version;
    }
    const h = hash32(ctx.hashKey);
    // First point at or after h, wrapping around.
    let lo = 0;
    let hi = this.#points.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#points[mid]! < h) lo = mid + 1;
      else hi = mid;
    }
    const n = this.#owners.length;
    for (let k = 0; k < n; k++) {
      const owner = this.#owners[(lo + k) % n]!;
      if (!ctx.exclude?.has(owner)) return owner;
    }
    return undefined;
  }
}

/** A picker for `policy`. */
export function createPicker(policy: LbPolicy, options: PickerOptions = {}): Picker {
  const random = options.random ?? Math.random;
  switch (policy) {
    case 'round-robin':
      return new RoundRobin();
    case 'least-request':
      return new LeastRequest(random);
    case 'weighted':
      return new Weighted();
    case 'consistent-hash': {
      const points = options.pointsPerWeight ?? 100;
      if (!Number.isInteger(points) || points < 1 || points > 10_000) {
        throw new TrafficError(TrafficErrorCode.invalid, `pointsPerWeight must be 1..10000, got ${points}`);
      }
      return new ConsistentHash(points);
    }
    default:
      throw new TrafficError(
        TrafficErrorCode.invalid,
        `unknown policy ${JSON.stringify(policy)}; one of ${LB_POLICIES.join(', ')}`,
      );
  }
}
