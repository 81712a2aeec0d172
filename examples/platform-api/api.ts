// A small internal "platform API": teams, their projects, and API keys of projects, as REST + JSON on the
// runtime's createService, persisted in SQLite (node:sqlite). It is what a company's platform team has and
// wants to manage from HCL: terraform-provider-capstanplatform (./provider.ts) is its provider.
//
//   PLATFORM_DB=platform.db PLATFORM_TOKEN=secret PORT=8080 node examples/platform-api/api.ts
import { randomBytes, randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { DatabaseSync } from 'node:sqlite';
import { createService, type Service } from 'capstan/runtime';

/** A team. */
export interface Team {
  id: string;
  name: string;
  description: string;
}
/** A project of a team. */
export interface Project {
  id: string;
  team_id: string;
  name: string;
  environment: 'dev' | 'staging' | 'prod';
  labels: Record<string, string>;
}
/** An API key of a project; `secret` is only ever shown when the key is created. */
export interface ApiKey {
  id: string;
  project_id: string;
  name: string;
  scopes: string[];
  created_at: string;
  secret?: string;
}

/** Options of {@link createPlatformApi}. */
export interface PlatformApiOptions {
  /** SQLite file (`:memory:` for none). */
  db: string;
  /** Bearer token every request must carry; none when absent. */
  token?: string;
  port?: number;
  host?: string;
}

class HttpProblem extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

const ENVIRONMENTS = new Set(['dev', 'staging', 'prod']);

function schema(db: DatabaseSync): void {
  db.exec(`
    PRAGMA foreign_keys = ON;
    CREATE TABLE IF NOT EXISTS teams (
      id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, description TEXT NOT NULL DEFAULT '');
    CREATE TABLE IF NOT EXISTS projects (
      id TEXT PRIMARY KEY, team_id TEXT NOT NULL REFERENCES teams(id), name TEXT NOT NULL,
      environment TEXT NOT NULL, labels TEXT NOT NULL DEFAULT '{}', UNIQUE (team_id, name));
    CREATE TABLE IF NOT EXISTS api_keys (
      id TEXT PRIMARY KEY, project_id TEXT NOT NULL REFERENCES projects(id), name TEXT NOT NULL,
      scopes TEXT NOT NULL DEFAULT '[]', secret_hash TEXT NOT NULL, created_at TEXT NOT NULL);
  `);
}

async function body(req: IncomingMessage): Promise<Record<string, unknown>> {
  let text = '';
  for await (const chunk of req) {
    text += chunk;
    if (text.length > 1_000_000) throw new HttpProblem(413, 'body too large');
  }
  try {
    const parsed = JSON.parse(text || '{}');
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
      throw new Error('not an object');
    return parsed as Record<string, unknown>;
  } catch {
    throw new HttpProblem(400, 'body must be a JSON object');
  }
}

function str(input: Record<string, unknown>, key: string, fallback?: string): string {
  const v = input[key] ?? fallback;
  if (typeof v !== 'string' || v === '') throw new HttpProblem(400, `"${key}" must be a non-empty string`);
  return v;
}

/** Create the platform API service (not started). */
export function createPlatformApi(options: PlatformApiOptions): Service & { db: DatabaseSync } {
  const db = new DatabaseSync(options.db);
  schema(db);

  const teamRow = (id: string): Team => {
    const row = db.prepare('SELECT id, name, description FROM teams WHERE id = ?').get(id) as
      | Team
      | undefined;
    if (!row) throw new HttpProblem(404, `team ${id} not found`);
    return { ...row };
  };
  const projectRow = (id: string): Project => {
    const row = db.prepare('SELECT * FROM projects WHERE id = ?').get(id) as
      | Record<string, string>
      | undefined;
    if (!row) throw new HttpProblem(404, `project ${id} not found`);
    return {
      id: row.id!,
      team_id: row.team_id!,
      name: row.name!,
      environment: row.environment as Project['environment'],
      labels: JSON.parse(row.labels!),
    };
  };
  const keyRow = (id: string): ApiKey => {
    const row = db.prepare('SELECT * FROM api_keys WHERE id = ?').get(id) as
      | Record<string, string>
      | undefined;
    if (!row) throw new HttpProblem(404, `api key ${id} not found`);
    return {
      id: row.id!,
      project_id: row.project_id!,
      name: row.name!,
      scopes: JSON.parse(row.scopes!),
      created_at: row.created_at!,
    };
  };
  const environment = (v: unknown): string => {
    const e = v ?? 'dev';
    if (typeof e !== 'string' || !ENVIRONMENTS.has(e))
      throw new HttpProblem(400, 'environment must be dev, staging or prod');
    return e;
  };
  const labels = (v: unknown): string => {
    const l = v ?? {};
    if (
      typeof l !== 'object' ||
      l === null ||
      Array.isArray(l) ||
      Object.values(l).some((x) => typeof x !== 'string')
    ) {
      throw new HttpProblem(400, 'labels must map strings to strings');
    }
    return JSON.stringify(l);
  };
  const conflict = (err: unknown): never => {
    if (err instanceof Error && /UNIQUE|FOREIGN KEY/.test(err.message))
      throw new HttpProblem(409, err.message);
    throw err;
  };

  type Route = (id: string | undefined, input: () => Promise<Record<string, unknown>>) => unknown;
  const routes: Record<string, Record<string, Route>> = {
    teams: {
      POST: async (_id, input) => {
        const b = await input();
        const id = `team-${randomUUID().slice(0, 8)}`;
        try {
          db.prepare('INSERT INTO teams (id, name, description) VALUES (?, ?, ?)').run(
            id,
            str(b, 'name'),
            typeof b.description === 'string' ? b.description : '',
          );
        } catch (err) {
          conflict(err);
        }
        return teamRow(id);
      },
      GET: (id) =>
        id ? teamRow(id) : db.prepare('SELECT id, name, description FROM teams ORDER BY name').all(),
      PUT: async (id, input) => {
        const current = teamRow(id!);
        const b = await input();
        try {
          db.prepare('UPDATE teams SET name = ?, description = ? WHERE id = ?').run(
            str(b, 'name', current.name),
            typeof b.description === 'string' ? b.description : current.description,
            id!,
          );
        } catch (err) {
          conflict(err);
        }
        return teamRow(id!);
      },
      DELETE: (id) => {
        teamRow(id!);
        const used = db.prepare('SELECT count(*) AS n FROM projects WHERE team_id = ?').get(id!) as {
          n: number;
        };
        if (used.n > 0) throw new HttpProblem(409, `team ${id} still has ${used.n} projects`);
        db.prepare('DELETE FROM teams WHERE id = ?').run(id!);
        return {};
      },
    },
    projects: {
      POST: async (_id, input) => {
        const b = await input();
        teamRow(str(b, 'team_id'));
        const id = `prj-${randomUUID().slice(0, 8)}`;
        try {
          db.prepare(
            'INSERT INTO projects (id, team_id, name, environment, labels) VALUES (?, ?, ?, ?, ?)',
          ).run(id, str(b, 'team_id'), str(b, 'name'), environment(b.environment), labels(b.labels));
        } catch (err) {
          conflict(err);
        }
        return projectRow(id);
      },
      GET: (id) => projectRow(id ?? ''),
      PUT: async (id, input) => {
        const current = projectRow(id!);
        const b = await input();
        db.prepare('UPDATE projects SET name = ?, environment = ?, labels = ? WHERE id = ?').run(
          str(b, 'name', current.name),
          environment(b.environment ?? current.environment),
          labels(b.labels ?? current.labels),
          id!,
        );
        return projectRow(id!);
      },
      DELETE: (id) => {
        projectRow(id!);
        db.prepare('DELETE FROM api_keys WHERE project_id = ?').run(id!);
        db.prepare('DELETE FROM projects WHERE id = ?').run(id!);
        return {};
      },
    },
    'api-keys': {
      POST: async (_id, input) => {
        const b = await input();
        projectRow(str(b, 'project_id'));
        const scopes = b.scopes ?? [];
        if (!Array.isArray(scopes) || scopes.some((s) => typeof s !== 'string')) {
          throw new HttpProblem(400, 'scopes must be a list of strings');
        }
        const id = `key-${randomUUID().slice(0, 8)}`;
        const secret = `cpk_${randomBytes(18).toString('base64url')}`;
        db.prepare(
          'INSERT INTO api_keys (id, project_id, name, scopes, secret_hash, created_at) VALUES (?, ?, ?, ?, ?, ?)',
        ).run(
          id,
          str(b, 'project_id'),
          str(b, 'name'),
          JSON.stringify(scopes),
          secret.slice(-6),
          new Date().toISOString(),
        );
        return { ...keyRow(id), secret };
      },
      GET: (id) => keyRow(id ?? ''),
      DELETE: (id) => {
        keyRow(id!);
        db.prepare('DELETE FROM api_keys WHERE id = ?').run(id!);
        return {};
      },
    },
  };

  const send = (res: ServerResponse, status: number, value: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(value));
  };

  const service = createService({
    name: 'platform-api',
    port: options.port ?? 0,
    ...(options.host ? { host: options.host } : {}),
    handler: async (req, res) => {
      try {
        if (options.token && req.headers.authorization !== `Bearer ${options.token}`) {
          throw new HttpProblem(401, 'missing or wrong bearer token');
        }
        const [, version, collection, id, extra] = (req.url ?? '/').split('?')[0]!.split('/');
        const route = collection ? routes[collection]?.[req.method ?? 'GET'] : undefined;
        if (version !== 'v1' || !route || extra !== undefined)
          throw new HttpProblem(404, `no route ${req.method} ${req.url}`);
        if (req.method !== 'POST' && !id && !(req.method === 'GET' && collection === 'teams')) {
          throw new HttpProblem(404, `no route ${req.method} ${req.url}`);
        }
        const result = await route(id ? decodeURIComponent(id) : undefined, () => body(req));
        send(res, req.method === 'POST' ? 201 : 200, result);
      } catch (err) {
        if (err instanceof HttpProblem) send(res, err.status, { error: err.message });
        else send(res, 500, { error: (err as Error).message });
      }
    },
  });
  service.lifecycle.onShutdown('close the database', () => db.close());
  return Object.assign(service, { db });
}

if (import.meta.main) {
  const api = createPlatformApi({
    db: process.env.PLATFORM_DB ?? 'platform.db',
    ...(process.env.PLATFORM_TOKEN ? { token: process.env.PLATFORM_TOKEN } : {}),
    port: Number(process.env.PORT ?? 8080),
  });
  await api.start();
  api.handleSignals();
}
