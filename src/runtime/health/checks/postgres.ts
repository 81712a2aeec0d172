import { raceAbort } from '../../abort.ts';
import { scrub, urlSecrets } from '../../redact.ts';
import { healthAbortError } from '../aborted.ts';
import { HealthError } from '../errors.ts';
import type { CheckFunction } from '../types.ts';

/** Anything with a `query(sql)` method: a `pg` Pool or Client, or a wrapper of your own. */
export interface PostgresQueryable {
  query(sql: string): Promise<unknown>;
}

/** Options of {@link postgresCheck}. */
export interface PostgresCheckOptions {
  /** Statement to run. Default `SELECT 1`. */
  query?: string;
}

// pg is CommonJS; its default export carries Client. Only the shape used here is typed.
interface PgClient {
  connect(): Promise<void>;
  query(sql: string): Promise<unknown>;
  end(): Promise<void>;
  on(event: 'error', listener: (err: Error) => void): unknown;
}
type PgModule = { Client: new (config: { connectionString: string }) => PgClient };

let pgModule: Promise<PgModule> | undefined;
function loadPg(): Promise<PgModule> {
  // Loaded on first use, so services that pass their own pool (or no Postgres at all) never load it.
  pgModule ??= import('pg').then((m) => ((m as unknown as { default?: PgModule }).default ?? m) as PgModule);
  return pgModule;
}

/**
 * A check that runs `SELECT 1` against PostgreSQL.
 *
 * - With a connection URL, each run opens a fresh connection with the `pg` driver (a dependency of
 *   Capstan, loaded lazily) and closes it, so the check proves a new connection works, and a pool's
 *   stale sockets cannot hide an outage. Abort closes the connection.
 * - With your own pool or client, it runs the query through it (what your handlers would see). Such
 *   calls cannot be cancelled; the registry stops waiting at the timeout.
 *
 * Errors never contain the password from the URL.
 */
export function postgresCheck(
  target: string | PostgresQueryable,
  options: PostgresCheckOptions = {},
): CheckFunction {
  const sql = options.query ?? 'SELECT 1';
  if (typeof target !== 'string') {
    if (!target || typeof target.query !== 'function') {
      throw new HealthError(
        'CAP_ERR_RUNTIME_HEALTH_INVALID',
        'postgresCheck needs a connection URL or an object with a query(sql) method',
      );
    }
    return async (signal) => {
      try {
        await raceAbort(Promise.resolve(target.query(sql)), signal, healthAbortError);
      } catch (err) {
        if (signal.aborted) throw err;
        throw new HealthError('CAP_ERR_RUNTIME_HEALTH_POSTGRES', `postgres: ${(err as Error).message}`, {
          cause: err,
        });
      }
    };
  }
  const url = target;
  const protocol = URL.parse(url)?.protocol;
  if (protocol !== 'postgres:' && protocol !== 'postgresql:') {
    throw new HealthError(
      'CAP_ERR_RUNTIME_HEALTH_INVALID',
      'postgresCheck: not a postgres:// or postgresql:// URL',
    );
  }
  const secrets = urlSecrets(url);
  return async (signal) => {
    const pg = await loadPg();
    const client = new pg.Client({ connectionString: url });
    // A server-side disconnect is emitted as 'error'; unhandled, it would crash the process.
    client.on('error', () => {});
    const onAbort = () => void client.end().catch(() => {});
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      await raceAbort(client.connect(), signal, healthAbortError);
      await raceAbort(client.query(sql), signal, healthAbortError);
    } catch (err) {
      if (signal.aborted) throw err;
      throw new HealthError(
        'CAP_ERR_RUNTIME_HEALTH_POSTGRES',
        `postgres: ${scrub((err as Error).message || String(err), secrets)}`,
      );
    } finally {
      signal.removeEventListener('abort', onAbort);
      // Not awaited: pg's end() waits for the server's goodbye, which a dying server may never send.
      client.end().catch(() => {});
    }
  };
}
