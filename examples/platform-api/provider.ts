// terraform-provider-capstanplatform: the platform API of ./api.ts managed from HCL.
//
//   provider "capstanplatform" { endpoint = "http://127.0.0.1:8080" }   # or CAPSTAN_PLATFORM_ENDPOINT
//   resource "capstanplatform_team" "payments" { name = "payments" }
//   resource "capstanplatform_project" "checkout" { team_id = capstanplatform_team.payments.id, name = "checkout" }
//
// Installed for `tofu init` with installProvider (capstan/terraform); this module is the executable's entry.
import {
  attr,
  DiagnosticError,
  defineProvider,
  lengthBetween,
  matches,
  oneOf,
  serveProvider,
} from 'capstan/terraform';

/** What the API answers on failure, and the status. */
class ApiError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

/** A small client of the platform API. */
export class PlatformClient {
  readonly #endpoint: string;
  readonly #token: string | null;

  constructor(endpoint: string, token: string | null) {
    this.#endpoint = endpoint.replace(/\/+$/, '');
    this.#token = token;
  }

  /** Call the API; a 404 is `null` (the object is gone), any other failure throws. */
  async call<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T | null> {
    const res = await fetch(`${this.#endpoint}/v1/${path}`, {
      method,
      headers: {
        'content-type': 'application/json',
        ...(this.#token ? { authorization: `Bearer ${this.#token}` } : {}),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.any([AbortSignal.timeout(30_000), ...(signal ? [signal] : [])]),
    });
    const json = (await res.json().catch(() => ({}))) as T & { error?: string };
    if (res.status === 404) return null;
    if (!res.ok) throw new ApiError(res.status, `${method} ${path}: ${res.status} ${json.error ?? ''}`);
    return json;
  }

  /** As {@link call}, but the object must exist. */
  async must<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
    const value = await this.call<T>(method, path, body, signal);
    if (value === null) throw new ApiError(404, `${method} ${path}: not found`);
    return value;
  }
}

interface TeamJson {
  id: string;
  name: string;
  description: string;
}
interface ProjectJson {
  id: string;
  team_id: string;
  name: string;
  environment: string;
  labels: Record<string, string>;
}
interface KeyJson {
  id: string;
  project_id: string;
  name: string;
  scopes: string[];
  created_at: string;
  secret?: string;
}

const slug = [
  lengthBetween(1, 63),
  matches(/^[a-z0-9][a-z0-9-]*$/, 'must be lowercase letters, digits and dashes'),
];

export const provider = defineProvider('capstanplatform', {
  version: '0.1.0',
  description: 'Teams, projects and API keys of the internal platform API.',
  config: {
    endpoint: attr
      .string()
      .required()
      .env('CAPSTAN_PLATFORM_ENDPOINT')
      .validate(matches(/^https?:\/\//, 'must be an http(s) URL'))
      .describe('Base URL of the platform API. Default from `CAPSTAN_PLATFORM_ENDPOINT`.'),
    token: attr
      .string()
      .optional()
      .sensitive()
      .env('CAPSTAN_PLATFORM_TOKEN')
      .describe('Bearer token. Default from `CAPSTAN_PLATFORM_TOKEN`.'),
  },
  configure: ({ config }) => new PlatformClient(config.endpoint, config.token),
})
  .resource('team', {
    description: 'A team: owns projects.',
    schema: {
      id: attr.string().computed().useStateForUnknown().describe('Assigned by the API.'),
      name: attr
        .string()
        .required()
        .validate(...slug)
        .describe('Unique name.'),
      description: attr.string().default('').describe('What the team does.'),
    },
    async create({ plan, client, signal }) {
      return client.must<TeamJson>(
        'POST',
        'teams',
        { name: plan.name, description: plan.description },
        signal,
      );
    },
    async read({ state, client, signal }) {
      return client.call<TeamJson>('GET', `teams/${state.id}`, undefined, signal);
    },
    async update({ plan, state, client, signal }) {
      return client.must<TeamJson>(
        'PUT',
        `teams/${state.id}`,
        { name: plan.name, description: plan.description },
        signal,
      );
    },
    async delete({ state, client, signal }) {
      await client.call('DELETE', `teams/${state.id}`, undefined, signal);
    },
  })
  .resource('project', {
    description: 'A project of a team.',
    schema: {
      id: attr.string().computed().useStateForUnknown(),
      team_id: attr
        .string()
        .required()
        .requiresReplace()
        .describe('The owning team; changing it recreates the project.'),
      name: attr
        .string()
        .required()
        .validate(...slug),
      environment: attr
        .string()
        .default('dev')
        .validate(oneOf('dev', 'staging', 'prod')),
      labels: attr.map(attr.string()).optional(),
    },
    async create({ plan, client, signal }) {
      const body = {
        team_id: plan.team_id,
        name: plan.name,
        environment: plan.environment,
        labels: plan.labels ?? {},
      };
      return fromProject(await client.must<ProjectJson>('POST', 'projects', body, signal), plan.labels);
    },
    async read({ state, client, signal }) {
      const p = await client.call<ProjectJson>('GET', `projects/${state.id}`, undefined, signal);
      return p && fromProject(p, state.labels);
    },
    async update({ plan, state, client, signal }) {
      const body = { name: plan.name, environment: plan.environment, labels: plan.labels ?? {} };
      return fromProject(
        await client.must<ProjectJson>('PUT', `projects/${state.id}`, body, signal),
        plan.labels,
      );
    },
    async delete({ state, client, signal }) {
      await client.call('DELETE', `projects/${state.id}`, undefined, signal);
    },
  })
  .resource('api_key', {
    description: 'An API key of a project. Keys never change: any change makes a new key.',
    schema: {
      id: attr.string().computed().useStateForUnknown(),
      project_id: attr.string().required(),
      name: attr
        .string()
        .required()
        .validate(...slug),
      scopes: attr.set(attr.string()).optional(),
      secret: attr.string().computed().sensitive().useStateForUnknown().describe('Shown once, at creation.'),
      created_at: attr.string().computed().useStateForUnknown(),
    },
    // No update: every change of a configured attribute replaces the key.
    async create({ plan, client, signal }) {
      const body = { project_id: plan.project_id, name: plan.name, scopes: plan.scopes ?? [] };
      const key = await client.must<KeyJson>('POST', 'api-keys', body, signal);
      return { ...key, scopes: plan.scopes };
    },
    async read({ state, client, signal }) {
      const key = await client.call<KeyJson>('GET', `api-keys/${state.id}`, undefined, signal);
      if (!key) return null;
      // The API never shows the secret again: keep the one in state.
      return {
        id: key.id,
        project_id: key.project_id,
        name: key.name,
        created_at: key.created_at,
        scopes: key.scopes.length || state.scopes ? key.scopes : null,
      };
    },
    async delete({ state, client, signal }) {
      await client.call('DELETE', `api-keys/${state.id}`, undefined, signal);
    },
  })
  .dataSource('team', {
    description: 'Look a team up by name.',
    schema: {
      name: attr.string().required(),
      id: attr.string().computed(),
      description: attr.string().computed(),
    },
    async read({ config, client, signal }) {
      const teams = await client.must<TeamJson[]>('GET', 'teams', undefined, signal);
      const team = teams.find((t) => t.name === config.name);
      if (!team) throw new DiagnosticError('No such team', `no team is named "${config.name}"`, ['name']);
      return team;
    },
  });

/** Labels: an empty map from the API is "no labels" when the configuration has none (null). */
function fromProject(p: ProjectJson, configured: Record<string, string> | null) {
  const labels = Object.keys(p.labels).length === 0 && configured === null ? null : p.labels;
  return { id: p.id, team_id: p.team_id, name: p.name, environment: p.environment, labels };
}

if (import.meta.main) await serveProvider(provider);
