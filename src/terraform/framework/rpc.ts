// tfplugin6.Provider on top of a provider definition: each RPC decodes its DynamicValues against the
// schema, runs the framework's planning or the definition's handlers, and answers with values and
// diagnostics. A handler's exception never escapes as a gRPC error: it becomes an error diagnostic, which
// Terraform shows next to the resource.
import type { ServerUnaryCall, sendUnaryData, UntypedServiceImplementation } from '@grpc/grpc-js';
import { TerraformError } from '../errors.ts';
import {
  type CtyType,
  type CtyValue,
  decodeJsonValue,
  decodeValue,
  encodeValue,
  isUnknown,
} from '../protocol/cty.ts';
import type { PluginLogger } from '../protocol/plugin-log.ts';
import { attributePathMessage, DiagnosticError, Diagnostics, diagnosticMessages } from './diagnostics.ts';
import {
  applyEnvFallbacks,
  knownOrNull,
  mergeApplied,
  planResource,
  replacePaths,
  unknownPaths,
  validateFields,
} from './plan.ts';
import type { AnyDataSource, AnyResource, HandlerContext, Provider } from './provider.ts';
import { blockMessage, type FieldSpec, fieldSpecs, objectType } from './schema.ts';

type Obj = Record<string, CtyValue>;
interface DynamicValueMessage {
  msgpack?: Buffer;
  json?: Buffer;
}

function decodeDynamic(type: CtyType, dv: DynamicValueMessage | null | undefined): CtyValue {
  if (!dv) return null;
  if (dv.msgpack && dv.msgpack.length > 0) return decodeValue(type, dv.msgpack);
  if (dv.json && dv.json.length > 0) return decodeJsonValue(type, dv.json);
  return null;
}

function encodeDynamic(type: CtyType, value: CtyValue): DynamicValueMessage {
  return { msgpack: Buffer.from(encodeValue(type, value)) };
}

interface Compiled {
  readonly fields: Readonly<Record<string, FieldSpec>>;
  readonly type: CtyType;
}

function compile(schema: AnyResource['schema']): Compiled {
  const fields = fieldSpecs(schema);
  return { fields, type: objectType(fields) };
}

function asObj(v: CtyValue): Obj | null {
  return v === null || isUnknown(v) ? null : (v as Obj);
}

/** Fill missing attributes with null: a handler's partial model as a full object value. */
function complete(fields: Compiled['fields'], value: Record<string, unknown>): Obj {
  const out: Obj = {};
  for (const name of Object.keys(fields)) out[name] = (value[name] ?? null) as CtyValue;
  return out;
}

/** Options of {@link providerServer}. */
export interface ProviderServerOptions {
  readonly log: PluginLogger;
  /** Environment for provider configuration fallbacks. Default `process.env`. */
  readonly env?: NodeJS.ProcessEnv;
}

/** The tfplugin6.Provider implementation of a provider definition. */
export function providerServer(
  provider: Provider,
  options: ProviderServerOptions,
): UntypedServiceImplementation {
  const { log } = options;
  const env = options.env ?? process.env;
  const resources = new Map<string, { def: AnyResource; c: Compiled }>();
  for (const [name, def] of provider.resources)
    resources.set(provider.typeName(name), { def, c: compile(def.schema) });
  const dataSources = new Map<string, { def: AnyDataSource; c: Compiled }>();
  for (const [name, def] of provider.dataSources)
    dataSources.set(provider.typeName(name), { def, c: compile(def.schema) });
  const providerConfig = compile(provider.configSchema);

  let client: unknown;
  let stop = new AbortController();
  const context = (diagnostics: Diagnostics): HandlerContext<unknown> => ({
    client,
    diagnostics,
    signal: stop.signal,
    log,
  });

  /** One RPC: run `fn`, turning any exception into an error diagnostic of `what`. */
  const rpc =
    <Req>(
      name: string,
      fn: (req: Req, diagnostics: Diagnostics) => Promise<Record<string, unknown>> | Record<string, unknown>,
    ) =>
    (call: ServerUnaryCall<Req, unknown>, callback: sendUnaryData<unknown>): void => {
      const diagnostics = new Diagnostics();
      const started = performance.now();
      Promise.resolve()
        .then(() => fn(call.request, diagnostics))
        .catch((err: unknown) => {
          fail(diagnostics, name, err);
          return {};
        })
        .then((response) => {
          log.debug(`${name} done`, {
            ms: Math.round(performance.now() - started),
            diagnostics: diagnostics.items.length,
          });
          callback(null, { ...response, diagnostics: diagnosticMessages(diagnostics.items) });
        });
    };

  const fail = (diagnostics: Diagnostics, what: string, err: unknown): void => {
    if (err instanceof DiagnosticError) {
      diagnostics.error(err.summary, err.detail, err.path);
      return;
    }
    const message = err instanceof Error ? err.message : String(err);
    log.error(`${what} failed`, {
      error: message,
      ...(err instanceof TerraformError ? { code: err.code } : {}),
    });
    diagnostics.error(`${what} failed`, message);
  };

  const resourceOf = (typeName: string) => {
    const r = resources.get(typeName);
    if (!r) throw new DiagnosticError('Unknown resource type', `this provider has no resource ${typeName}`);
    return r;
  };
  const dataSourceOf = (typeName: string) => {
    const d = dataSources.get(typeName);
    if (!d) throw new DiagnosticError('Unknown data source', `this provider has no data source ${typeName}`);
    return d;
  };

  const schemaOf = (c: Compiled, description: string | undefined, version = 0) => ({
    version,
    block: { ...blockMessage(c.fields, description ?? ''), version },
  });

  return {
    GetMetadata: rpc('GetMetadata', () => ({
      server_capabilities: { plan_destroy: true },
      resources: [...resources.keys()].map((type_name) => ({ type_name })),
      data_sources: [...dataSources.keys()].map((type_name) => ({ type_name })),
    })),

    GetProviderSchema: rpc('GetProviderSchema', () => ({
      provider: schemaOf(providerConfig, provider.options.description),
      resource_schemas: Object.fromEntries(
        [...resources].map(([t, { def, c }]) => [t, schemaOf(c, def.description, def.version ?? 0)]),
      ),
      data_source_schemas: Object.fromEntries(
        [...dataSources].map(([t, { def, c }]) => [t, schemaOf(c, def.description)]),
      ),
      server_capabilities: { plan_destroy: true },
    })),

    GetResourceIdentitySchemas: rpc('GetResourceIdentitySchemas', () => ({ identity_schemas: {} })),
    GetFunctions: rpc('GetFunctions', () => ({ functions: {} })),

    ValidateProviderConfig: rpc<{ config: DynamicValueMessage }>(
      'ValidateProviderConfig',
      (req, diagnostics) => {
        const config = asObj(decodeDynamic(providerConfig.type, req.config));
        if (config) validateFields(providerConfig.fields, config, diagnostics);
        return {};
      },
    ),

    ConfigureProvider: rpc<{ config: DynamicValueMessage; terraform_version: string }>(
      'ConfigureProvider',
      async (req, diagnostics) => {
        const raw =
          asObj(decodeDynamic(providerConfig.type, req.config)) ?? complete(providerConfig.fields, {});
        const config = applyEnvFallbacks(providerConfig.fields, raw, env, diagnostics);
        validateFields(providerConfig.fields, config, diagnostics);
        if (diagnostics.hasErrors) return {};
        log.info('configuring provider', {
          provider: provider.name,
          terraform_version: req.terraform_version,
        });
        client = await provider.options.configure?.({
          config: config as never,
          diagnostics,
          terraformVersion: req.terraform_version,
          log,
        });
        return {};
      },
    ),

    ValidateResourceConfig: rpc<{ type_name: string; config: DynamicValueMessage }>(
      'ValidateResourceConfig',
      (req, diagnostics) => {
        const { def, c } = resourceOf(req.type_name);
        const config = asObj(decodeDynamic(c.type, req.config));
        if (config) {
          validateFields(c.fields, config, diagnostics);
          def.validate?.({ config: config as never, diagnostics });
        }
        return {};
      },
    ),

    ValidateDataResourceConfig: rpc<{ type_name: string; config: DynamicValueMessage }>(
      'ValidateDataResourceConfig',
      (req, diagnostics) => {
        const { def, c } = dataSourceOf(req.type_name);
        const config = asObj(decodeDynamic(c.type, req.config));
        if (config) {
          validateFields(c.fields, config, diagnostics);
          def.validate?.({ config: config as never, diagnostics });
        }
        return {};
      },
    ),

    UpgradeResourceState: rpc<{ type_name: string; version: number; raw_state: { json?: Buffer } }>(
      'UpgradeResourceState',
      (req, diagnostics) => {
        const { def, c } = resourceOf(req.type_name);
        const current = def.version ?? 0;
        const json = req.raw_state?.json;
        if (!json || json.length === 0) return { upgraded_state: encodeDynamic(c.type, null) };
        if (req.version > current) {
          diagnostics.error(
            'State from a newer provider',
            `${req.type_name} state is at schema version ${req.version}; this provider knows up to ${current}`,
          );
          return {};
        }
        let text = json.toString('utf8');
        if (req.version < current) {
          let state = JSON.parse(text) as Record<string, unknown>;
          for (let v = req.version; v < current; v++) {
            const step = def.upgrade?.[v];
            if (!step) {
              diagnostics.error(
                'Cannot upgrade state',
                `${req.type_name} has no upgrade from schema version ${v}`,
              );
              return {};
            }
            state = step(state);
          }
          text = JSON.stringify(state);
          log.info('upgraded state', { type: req.type_name, from: req.version, to: current });
        }
        return { upgraded_state: encodeDynamic(c.type, decodeJsonValue(c.type, text)) };
      },
    ),

    ReadResource: rpc<{ type_name: string; current_state: DynamicValueMessage; private: Buffer }>(
      'ReadResource',
      async (req, diagnostics) => {
        const { def, c } = resourceOf(req.type_name);
        const state = asObj(decodeDynamic(c.type, req.current_state));
        if (state === null) return { new_state: encodeDynamic(c.type, null), private: req.private };
        const remote = await def.read({ ...context(diagnostics), state: knownOrNull(state) as never });
        if (diagnostics.hasErrors) return { new_state: req.current_state, private: req.private };
        if (remote === null) {
          log.info('remote object is gone: removing it from state', { type: req.type_name });
          return { new_state: encodeDynamic(c.type, null), private: req.private };
        }
        const merged = { ...state };
        for (const [k, v] of Object.entries(remote))
          if (v !== undefined && k in c.fields) merged[k] = v as CtyValue;
        return { new_state: encodeDynamic(c.type, merged), private: req.private };
      },
    ),

    PlanResourceChange: rpc<{
      type_name: string;
      prior_state: DynamicValueMessage;
      proposed_new_state: DynamicValueMessage;
      config: DynamicValueMessage;
      prior_private: Buffer;
    }>('PlanResourceChange', (req, diagnostics) => {
      const { def, c } = resourceOf(req.type_name);
      const prior = asObj(decodeDynamic(c.type, req.prior_state));
      const proposed = asObj(decodeDynamic(c.type, req.proposed_new_state));
      // Destroy: nothing to plan.
      if (proposed === null)
        return { planned_state: encodeDynamic(c.type, null), planned_private: req.prior_private };
      const config = asObj(decodeDynamic(c.type, req.config)) ?? complete(c.fields, {});
      validateFields(c.fields, proposed, diagnostics);
      const planned = planResource(c.fields, prior, proposed, config);
      const replace = prior === null ? [] : replacePaths(c.fields, prior, planned, def.update !== undefined);
      // A replacement is planned as a create: everything the provider computes is new.
      const final = replace.length > 0 ? planResource(c.fields, null, planned, config) : planned;
      return {
        planned_state: encodeDynamic(c.type, final),
        requires_replace: replace.map(attributePathMessage),
        planned_private: req.prior_private,
      };
    }),

    ApplyResourceChange: rpc<{
      type_name: string;
      prior_state: DynamicValueMessage;
      planned_state: DynamicValueMessage;
      config: DynamicValueMessage;
      planned_private: Buffer;
    }>('ApplyResourceChange', async (req, diagnostics) => {
      const { def, c } = resourceOf(req.type_name);
      const prior = asObj(decodeDynamic(c.type, req.prior_state));
      const planned = asObj(decodeDynamic(c.type, req.planned_state));
      const config = asObj(decodeDynamic(c.type, req.config)) ?? complete(c.fields, {});
      const ctx = context(diagnostics);
      // Delete is an apply whose planned state is null; create one whose prior state is null.
      if (planned === null) {
        if (prior !== null) await def.delete({ ...ctx, state: knownOrNull(prior) as never });
        if (diagnostics.hasErrors) return { new_state: req.prior_state };
        return { new_state: encodeDynamic(c.type, null) };
      }
      const returned =
        prior === null
          ? await def.create({ ...ctx, plan: knownOrNull(planned) as never, config: config as never })
          : def.update
            ? await def.update({
                ...ctx,
                plan: knownOrNull(planned) as never,
                state: knownOrNull(prior) as never,
                config: config as never,
              })
            : {};
      if (diagnostics.hasErrors) {
        // Nothing (or nothing new) was made: keep what was there.
        return { new_state: prior === null ? encodeDynamic(c.type, null) : req.prior_state };
      }
      const state = mergeApplied(c.fields, planned, (returned ?? {}) as Record<string, unknown>);
      const missing = unknownPaths(state);
      for (const name of missing) {
        diagnostics.error(
          'Provider returned an unknown value',
          `${prior === null ? 'create' : 'update'} of ${req.type_name} did not return "${name}", which is computed`,
          [name],
        );
        state[name] = null;
      }
      return { new_state: encodeDynamic(c.type, state), private: req.planned_private };
    }),

    ImportResourceState: rpc<{ type_name: string; id: string }>(
      'ImportResourceState',
      async (req, diagnostics) => {
        const { def, c } = resourceOf(req.type_name);
        let initial: Record<string, unknown>;
        if (def.import) initial = await def.import({ ...context(diagnostics), id: req.id });
        else if ('id' in c.fields) initial = { id: req.id };
        else {
          diagnostics.error(
            'Import not supported',
            `${req.type_name} has no "id" attribute and no import handler`,
          );
          return {};
        }
        if (diagnostics.hasErrors) return {};
        return {
          imported_resources: [
            { type_name: req.type_name, state: encodeDynamic(c.type, complete(c.fields, initial)) },
          ],
        };
      },
    ),

    ReadDataSource: rpc<{ type_name: string; config: DynamicValueMessage }>(
      'ReadDataSource',
      async (req, diagnostics) => {
        const { def, c } = dataSourceOf(req.type_name);
        const config = asObj(decodeDynamic(c.type, req.config)) ?? complete(c.fields, {});
        validateFields(c.fields, config, diagnostics);
        if (diagnostics.hasErrors) return {};
        const returned = await def.read({ ...context(diagnostics), config: knownOrNull(config) as never });
        if (diagnostics.hasErrors) return {};
        const state = mergeApplied(c.fields, config, (returned ?? {}) as Record<string, unknown>);
        for (const name of unknownPaths(state)) state[name] = null;
        return { state: encodeDynamic(c.type, state) };
      },
    ),

    StopProvider: (_call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) => {
      log.info('stop requested: aborting operations in flight');
      stop.abort(new Error('Terraform asked the provider to stop'));
      stop = new AbortController();
      callback(null, { Error: '' });
    },
  };
}
