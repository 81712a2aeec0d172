// A static file of endpoints (YAML or JSON), watched: an edit, a rename over it (editors, ConfigMap volumes
// swap a symlink) or a slow poll re-reads it. A file that stops parsing is reported and the last good set
// stays.
import { type FSWatcher, watch } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { type BackoffOptions, sleep } from '../../runtime/index.ts';
import { TrafficError, TrafficErrorCode } from '../errors.ts';
import { type EndpointInput, normalizeEndpoints } from './endpoint.ts';
import { type DiscoveryEvent, type DiscoverySource, runRounds } from './source.ts';

const SETTLE_MS = 25;

/** Options of {@link staticFileSource}. */
export interface StaticFileOptions {
  /**
   * The file: `endpoints:` (or the document itself) is a list of `{ address, port, weight?, health?, tags?,
   * metadata? }`. `.json` is read as JSON, anything else as YAML (a superset of JSON).
   */
  path: string;
  /** Re-read at least this often even without a change notification, ms. Default 5 000; 0 turns it off. */
  pollMs?: number;
  /** Retry backoff after a failed read. */
  backoff?: BackoffOptions;
}

/** Parse the text of an endpoints file; throws {@link TrafficErrorCode.discovery} on anything wrong. */
export function parseEndpointsFile(text: string, path: string) {
  let doc: unknown;
  try {
    doc = path.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw new TrafficError(TrafficErrorCode.discovery, `${path}: ${(err as Error).message.split('\n')[0]}`, {
      cause: err,
    });
  }
  const list = Array.isArray(doc) ? doc : (doc as { endpoints?: unknown } | null)?.endpoints;
  if (!Array.isArray(list)) {
    throw new TrafficError(
      TrafficErrorCode.discovery,
      `${path}: want a list of endpoints or an "endpoints:" list`,
    );
  }
  return normalizeEndpoints(list as EndpointInput[], path);
}

/** Endpoints from a YAML or JSON file, re-read when it changes. */
export function staticFileSource(options: StaticFileOptions): DiscoverySource {
  const path = resolve(options.path);
  const pollMs = options.pollMs ?? 5_000;
  if (!Number.isInteger(pollMs) || pollMs < 0 || pollMs > 2_147_483_647) {
    throw new TrafficError(
      TrafficErrorCode.invalid,
      `pollMs must be a whole number of ms >= 0, got ${pollMs}`,
    );
  }
  const description = `file ${path}`;
  return {
    description,
    watch({ signal } = {}) {
      return watchFile(path, pollMs, description, options.backoff, signal ?? new AbortController().signal);
    },
  };
}

async function* watchFile(
  path: string,
  pollMs: number,
  what: string,
  backoff: BackoffOptions | undefined,
  signal: AbortSignal,
): AsyncGenerator<DiscoveryEvent> {
  // The folder, not the file: a rename over the file (how editors and kubelet update it) ends a watch on
  // the file's inode, while the folder's watch keeps reporting.
  let changed = false;
  let wake: (() => void) | undefined;
  const poke = () => {
    changed = true;
    wake?.();
  };
  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(dirname(path), { persistent: false }, (_event, name) => {
      if (name === null || name === basename(path) || name.startsWith('..')) poke();
    });
    watcher.on('error', () => {});
  } catch {
    // No folder (yet) or no inotify: the poll alone finds changes.
  }
  try {
    yield* runRounds({
      what,
      signal,
      ...(backoff ? { backoff } : {}),
      round: async (s) => {
        // A change notification comes at the first write: let the writer finish before reading.
        if (changed) await sleep(SETTLE_MS, s);
        changed = false;
        return parseEndpointsFile(await readFile(path, 'utf8'), path);
      },
      pause: (s) =>
        new Promise<void>((done) => {
          if (changed || s.aborted) return done();
          const timer = pollMs > 0 ? setTimeout(finish, pollMs) : undefined;
          function finish() {
            clearTimeout(timer);
            s.removeEventListener('abort', finish);
            wake = undefined;
            done();
          }
          wake = finish;
          s.addEventListener('abort', finish, { once: true });
        }),
    });
  } finally {
    watcher?.close();
  }
}
