// The seam between the inventory and where hosts come from. A source is one object with a name and a
// `collect` call; the static file, Docker, Consul and Kubernetes sources implement it, and so will the cloud
// source. Collection runs every source at once, each under its own timeout, and fails naming each source
// that failed: an inventory missing a whole source would run a play against the wrong set of machines.
import { ansibleError } from './fail.ts';
import { type InventoryHost, type SourceHost, toInventoryHost } from './inventory.ts';

/** Options of {@link InventorySource.collect}. */
export interface CollectOptions {
  /** Aborted when the source's timeout passes or the caller gives up; stop and release connections then. */
  signal: AbortSignal;
}

/** Where hosts come from. Implement it to add a source; {@link collectHosts} runs it. */
export interface InventorySource {
  /** Unique among the sources of one inventory; rules match it with `source:`. */
  readonly name: string;
  /** What it reads, for messages: `docker unix:///var/run/docker.sock`. */
  readonly description: string;
  /** Every host the source knows now. Reject (with the reason) when it cannot tell. */
  collect(options: CollectOptions): Promise<SourceHost[]>;
}

/** A source with the time it may take. */
export interface TimedSource {
  source: InventorySource;
  /** Milliseconds; past them the source fails with `CAP_ERR_ANSIBLE_TIMEOUT`. */
  timeoutMs: number;
  /** Every host of the source joins this group. */
  group?: string;
}

type Outcome =
  | { ok: true; hosts: InventoryHost[] }
  | { ok: false; timedOut: boolean; message: string; cause: unknown };

/** One source under its timeout. The timer is a ref'd one: a source that hangs must not let the process end with nothing printed. */
async function collectOne(timed: TimedSource, signal: AbortSignal | undefined): Promise<Outcome> {
  const { source, timeoutMs } = timed;
  const controller = new AbortController();
  const abort = () => controller.abort(signal?.reason);
  signal?.addEventListener('abort', abort, { once: true });
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => {
      resolve('timeout');
      controller.abort(new Error(`no answer within ${timeoutMs} ms`));
    }, timeoutMs);
  });
  try {
    const result = await Promise.race([source.collect({ signal: controller.signal }), expired]);
    if (result === 'timeout') {
      return {
        ok: false,
        timedOut: true,
        message: `source ${source.name} (${source.description}): no answer within ${formatMs(timeoutMs)}`,
        cause: undefined,
      };
    }
    const hosts = result.map((h) => toInventoryHost(h, source.name, timed.group));
    return { ok: true, hosts };
  } catch (err) {
    if (signal?.aborted) throw signal.reason;
    return {
      ok: false,
      timedOut: false,
      message: `source ${source.name} (${source.description}): ${(err as Error)?.message ?? String(err)}`,
      cause: err,
    };
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', abort);
  }
}

function formatMs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

/**
 * Collect the hosts of every source at once, each under its own timeout, in source order. When any fails,
 * rejects with one error naming each failed source: `CAP_ERR_ANSIBLE_TIMEOUT` when all of them timed out,
 * else `CAP_ERR_ANSIBLE_SOURCE` (the first failure is the `cause`). `signal` aborts it all.
 */
export async function collectHosts(
  sources: readonly TimedSource[],
  options: { signal?: AbortSignal } = {},
): Promise<InventoryHost[]> {
  const outcomes = await Promise.all(sources.map((s) => collectOne(s, options.signal)));
  const failures = outcomes.filter((o) => !o.ok);
  if (failures.length > 0) {
    const problems = failures.map((f) => f.message);
    const message =
      failures.length === 1
        ? problems[0]!
        : `${failures.length} inventory sources failed:\n${problems.map((p) => `  - ${p}`).join('\n')}`;
    throw await ansibleError(failures.every((f) => f.timedOut) ? 'timeout' : 'source', message, {
      problems,
      cause: failures.find((f) => f.cause !== undefined)?.cause,
    });
  }
  return outcomes.flatMap((o) => (o.ok ? o.hosts : []));
}
