// `capstan xds serve` as a library call: read mesh.yaml, follow the discovery sources it names, serve the
// mesh, and push a new snapshot on SIGHUP, on a change of the file, and on every change a source reports.
import { watch } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { basename, dirname } from 'node:path';
import { KubeClient } from '../../kube/index.ts';
import type { Lifecycle, Logger } from '../../runtime/index.ts';
import { consulSource } from '../discovery/consul.ts';
import { dnsSource } from '../discovery/dns.ts';
import { routableEndpoints } from '../discovery/endpoint.ts';
import { endpointSliceSource } from '../discovery/kubernetes.ts';
import { type DiscoverySource, type Following, followSource } from '../discovery/source.ts';
import { staticFileSource } from '../discovery/static-file.ts';
import { TrafficError, TrafficErrorCode } from '../errors.ts';
import { type ControlPlane, createControlPlane } from './control-plane.ts';
import type { Mesh } from './mesh.ts';
import {
  type DiscoveredVersion,
  type DiscoverySpec,
  type MeshConfig,
  type MeshFlags,
  parseMeshConfig,
} from './mesh-config.ts';
import type { AssignmentEndpoint } from './resources.ts';

/** Options of {@link runControlPlane}. */
export interface RunControlPlaneOptions {
  /** mesh.yaml (YAML or JSON); watched for changes. */
  configFile: string;
  flags?: MeshFlags;
  logger: Logger;
  /** Reload on SIGHUP. Default true. */
  reloadOnSighup?: boolean;
  /** Reload when the file changes. Default true. */
  watchFile?: boolean;
  /** A shared lifecycle (`capstan up`), or the control plane's own. */
  lifecycle?: Lifecycle;
  /** Listen on this address whatever the file says (`capstan up --host`). */
  listenHost?: string;
  /** How long to wait for every discovery source's first answer before serving anyway. Default 10 s. */
  discoveryTimeoutMs?: number;
}

/** A running control plane with its reload machinery. */
export interface RunningControlPlane {
  readonly controlPlane: ControlPlane;
  readonly config: MeshConfig;
  /** Read the file again and apply it; resolves false (and logs every problem) when refused. */
  reload(reason: string): Promise<boolean>;
  /** Stop watching, reloading and following sources (the control plane stops with its lifecycle). */
  close(): Promise<void>;
}

async function load(
  file: string,
  flags: MeshFlags | undefined,
): Promise<{ config: MeshConfig; text: string }> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new TrafficError(TrafficErrorCode.config, `cannot read ${file}: ${(err as Error).message}`, {
      cause: err,
      problems: [`cannot read ${file}`],
    });
  }
  return { config: parseMeshConfig(text, { file, ...(flags ? { flags } : {}) }), text };
}

/** Kubernetes clients by kubeconfig and context, shared by the sources that name the same ones. */
type KubeClients = Map<string, Promise<KubeClient>>;

async function sourceOf(spec: DiscoverySpec, kubeClients: KubeClients): Promise<DiscoverySource> {
  if ('kubernetes' in spec) {
    const k = spec.kubernetes;
    const key = `${k.kubeconfig ?? ''}\u0000${k.context ?? ''}`;
    let client = kubeClients.get(key);
    if (!client) {
      client =
        k.kubeconfig === undefined && k.context === undefined
          ? KubeClient.fromDefault()
          : KubeClient.fromKubeconfig({
              ...(k.kubeconfig !== undefined ? { path: k.kubeconfig } : {}),
              ...(k.context !== undefined ? { context: k.context } : {}),
            });
      kubeClients.set(key, client);
    }
    return endpointSliceSource({
      client: await client,
      namespace: k.namespace ?? 'default',
      service: k.service,
      ...(k.port !== undefined ? { port: k.port } : {}),
    });
  }
  if ('file' in spec) return staticFileSource({ path: spec.file });
  if ('dns' in spec) {
    const d = spec.dns;
    return dnsSource({
      name: d.name,
      ...(d.type ? { type: d.type } : {}),
      ...(d.port !== undefined ? { port: d.port } : {}),
      ...(d.servers ? { servers: d.servers } : {}),
    });
  }
  const c = spec.consul;
  return consulSource({
    service: c.service,
    ...(c.url ? { url: c.url } : {}),
    ...(c.tags ? { tags: c.tags } : {}),
    ...(c.datacenter ? { datacenter: c.datacenter } : {}),
    ...(c.onlyPassing !== undefined ? { onlyPassing: c.onlyPassing } : {}),
  });
}

/**
 * Load mesh.yaml, follow its discovery sources (waiting up to `discoveryTimeoutMs` for their first
 * answers), start the control plane and keep it in step with the file and the sources. A bad file at start
 * throws a {@link TrafficError} `config` listing every problem; at a reload the running mesh stays and the
 * problems are logged. A new listen address takes a restart.
 */
export async function runControlPlane(options: RunControlPlaneOptions): Promise<RunningControlPlane> {
  const first = await load(options.configFile, options.flags);
  let config = first.config;
  let lastText = first.text;
  const log = options.logger.child({ component: 'xds-reload' });
  const controlPlane = createControlPlane({
    port: config.listen.port,
    host: options.listenHost ?? config.listen.host,
    ...(config.admin
      ? { admin: { port: config.admin.port, host: options.listenHost ?? config.admin.host } }
      : {}),
    logger: options.logger,
    ...(options.lifecycle ? { lifecycle: options.lifecycle } : {}),
  });

  /** Running sources by key, with the endpoints each last reported. */
  const sources = new Map<
    string,
    { version: DiscoveredVersion; following: Following; endpoints: AssignmentEndpoint[] }
  >();
  let serving = false;

  const compose = (): Mesh => {
    const services = { ...config.mesh.services };
    for (const { version, endpoints } of sources.values()) {
      const s = services[version.service];
      if (!s?.versions[version.version]) continue;
      services[version.service] = {
        ...s,
        versions: { ...s.versions, [version.version]: { endpoints } },
      };
    }
    return { services };
  };
  const publish = (reason: string) => {
    if (!serving) return;
    try {
      controlPlane.setMesh(compose());
    } catch (err) {
      log.error({ reason, err }, 'the mesh with these endpoints is refused; the running one stays');
    }
  };

  const kubeClients: KubeClients = new Map();
  const startSource = async (version: DiscoveredVersion) => {
    const entry = {
      version,
      endpoints: [] as AssignmentEndpoint[],
      following: undefined as unknown as Following,
    };
    let source: DiscoverySource;
    try {
      source = await sourceOf(version.discovery, kubeClients);
    } catch (err) {
      log.error(
        { version: `${version.service}/${version.version}`, err },
        'cannot start the discovery source; the version has no endpoints until a reload fixes it',
      );
      return;
    }
    entry.following = followSource(
      source,
      (endpoints) => {
        const usable = routableEndpoints(endpoints).filter((e) => isIP(e.address) !== 0);
        const names = routableEndpoints(endpoints).length - usable.length;
        if (names > 0) {
          log.warn(
            { source: source.description, skipped: names },
            'endpoints that are host names are left out: gRPC clients take IP addresses in load assignments',
          );
        }
        entry.endpoints = usable.map((e) => ({ address: e.address, port: e.port, weight: e.weight }));
        publish(`${version.service}/${version.version} endpoints`);
      },
      {
        onError: (e) =>
          log.warn(
            { source: source.description, err: e.error.message, retryInMs: e.retryInMs },
            'discovery failed; the last endpoints stay',
          ),
      },
    );
    sources.set(version.key, entry);
  };

  const syncSources = async () => {
    const wanted = new Map(config.discovered.map((d) => [d.key, d]));
    for (const [key, entry] of [...sources]) {
      if (!wanted.has(key)) {
        sources.delete(key);
        await entry.following.stop();
      }
    }
    for (const [key, version] of wanted) if (!sources.has(key)) await startSource(version);
  };

  await syncSources();
  const timeoutMs = options.discoveryTimeoutMs ?? 10_000;
  let timer: NodeJS.Timeout | undefined;
  const allReady = Promise.all([...sources.values()].map((s) => s.following.ready.catch(() => {})));
  const ready = await Promise.race([
    allReady.then(() => true),
    new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    }),
  ]);
  clearTimeout(timer);
  if (!ready) log.warn({ timeoutMs }, 'not every discovery source answered in time; serving what is known');
  serving = true;
  controlPlane.setMesh(compose());
  await controlPlane.start();

  let chain = Promise.resolve(true);
  const reload = (reason: string): Promise<boolean> => {
    chain = chain.then(async () => {
      let next: Awaited<ReturnType<typeof load>>;
      try {
        next = await load(options.configFile, options.flags);
      } catch (err) {
        const problems = err instanceof TrafficError ? err.problems : [String(err)];
        log.error({ reason, problems }, 'reload refused: the mesh file has problems; the running mesh stays');
        return false;
      }
      const c = next.config;
      if (
        (!options.listenHost && c.listen.host !== config.listen.host) ||
        c.listen.port !== config.listen.port
      ) {
        log.warn({ listen: c.listen }, 'a new listen address takes a restart; the other changes apply');
      }
      config = c;
      lastText = next.text;
      await syncSources();
      publish(reason);
      log.info({ reason, services: Object.keys(c.mesh.services) }, 'mesh reloaded');
      return true;
    });
    return chain;
  };

  const closers: Array<() => void> = [];
  if (options.reloadOnSighup ?? true) {
    const onHup = () => void reload('SIGHUP');
    process.on('SIGHUP', onHup);
    closers.push(() => process.off('SIGHUP', onHup));
  }
  if (options.watchFile ?? true) {
    // The folder, not the file: editors and config maps replace a file by renaming another over it.
    const file = options.configFile;
    let debounce: NodeJS.Timeout | undefined;
    const watcher = watch(dirname(file), (_event, name) => {
      if (name !== null && name !== basename(file) && !name.startsWith('..')) return;
      clearTimeout(debounce);
      debounce = setTimeout(async () => {
        const text = await readFile(file, 'utf8').catch(() => undefined);
        if (text !== undefined && text !== lastText) void reload('file changed');
      }, 100);
    });
    watcher.on('error', (err) => log.warn({ err }, 'cannot watch the mesh file; SIGHUP still reloads'));
    closers.push(() => {
      clearTimeout(debounce);
      watcher.close();
    });
  }
  const close = async () => {
    for (const c of closers.splice(0)) c();
    await Promise.all([...sources.values()].map((s) => s.following.stop()));
    sources.clear();
    for (const client of kubeClients.values()) await (await client.catch(() => undefined))?.close();
    kubeClients.clear();
  };
  controlPlane.service.lifecycle.onShutdown('xds reloads and discovery', close);
  return {
    controlPlane,
    get config() {
      return config;
    },
    reload,
    close,
  };
}
