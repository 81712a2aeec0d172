import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensurePeers, peerBinary, startPeerProcess } from '../peers/index.ts';
import { createHttpTransport, freePort, httpRequest, makeProcessDir } from '../runtime/index.ts';

// Like fetch before it: one pooled client for every instance, no transparent retries (the callers poll).
const http = createHttpTransport({ retry: false });

/** Options of {@link startConsul}. */
export interface StartConsulOptions {
  /** Datacenter name. Default `dc1`. */
  datacenter?: string;
  /** Node name; unique per agent by default (`capstan-<hex>`). */
  nodeName?: string;
  /** Extra agent configuration, merged over ours (JSON config file keys). */
  config?: Record<string, unknown>;
  /** How long the agent may take to elect itself leader. Default 60 s. */
  readyTimeoutMs?: number;
  /** Listen on these ports instead of free ones: a restart on the addresses of an agent stopped before. */
  ports?: Partial<Pick<ConsulPeer, 'httpPort' | 'dnsPort' | 'serverPort' | 'serfLanPort' | 'serfWanPort'>>;
}

/** A running single-node Consul agent in `-dev` mode (server, in-memory state). */
export interface ConsulPeer {
  /** `http://127.0.0.1:port` of the HTTP API. */
  readonly url: string;
  readonly httpPort: number;
  /** DNS interface (UDP and TCP) on 127.0.0.1. */
  readonly dnsPort: number;
  /** Server RPC, Serf LAN and Serf WAN ports, all on 127.0.0.1. */
  readonly serverPort: number;
  readonly serfLanPort: number;
  readonly serfWanPort: number;
  readonly datacenter: string;
  readonly nodeName: string;
  /** Private folder (config, log), removed on stop. */
  readonly dir: string;
  logTail(lines?: number): string;
  /** Stops the agent and removes its folder. Idempotent. */
  stop(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Path of the pinned `consul` binary, building it on first use (see scripts/peers/versions.json). */
export function consulBinary(): string {
  ensurePeers(['consul']);
  return peerBinary('consul', 'consul');
}

/**
 * Start a Consul agent in `-dev` mode with every listener on its own free loopback port (HTTP, DNS,
 * server RPC, Serf LAN/WAN; gRPC, HTTPS and the UI off), so several can run side by side. Ready when
 * `/v1/status/leader` names a leader and the agent's own node is in the catalog (before that, service
 * registrations are accepted but not yet visible to health queries).
 */
export async function startConsul(options: StartConsulOptions = {}): Promise<ConsulPeer> {
  const binary = consulBinary();
  const datacenter = options.datacenter ?? 'dc1';
  const nodeName = options.nodeName ?? `capstan-${randomBytes(4).toString('hex')}`;
  const p = options.ports ?? {};
  const [httpPort, dnsPort, serverPort, serfLanPort, serfWanPort] = await Promise.all(
    [p.httpPort, p.dnsPort, p.serverPort, p.serfLanPort, p.serfWanPort].map((port) => port ?? freePort()),
  );
  const url = `http://127.0.0.1:${httpPort}`;
  const dir = makeProcessDir('consul');
  const config = {
    datacenter,
    node_name: nodeName,
    bind_addr: '127.0.0.1',
    advertise_addr: '127.0.0.1',
    client_addr: '127.0.0.1',
    ports: {
      http: httpPort,
      dns: dnsPort,
      server: serverPort,
      serf_lan: serfLanPort,
      serf_wan: serfWanPort,
      // -dev would take the fixed 8502/8503: off, so parallel agents never collide.
      grpc: -1,
      grpc_tls: -1,
      https: -1,
    },
    disable_update_check: true,
    ui_config: { enabled: false },
    log_level: 'INFO',
    ...options.config,
  };
  const configFile = join(dir, 'consul.json');
  writeFileSync(configFile, JSON.stringify(config, null, 2));

  const ready = async (): Promise<boolean> => {
    const timeouts = { deadlineMs: 5_000 };
    const leader = await httpRequest(http, { origin: url, path: '/v1/status/leader', timeouts });
    const leaderBody = await leader.body.text();
    if (leader.status !== 200 || !(JSON.parse(leaderBody) as string)) return false;
    const node = await httpRequest(http, {
      origin: url,
      path: `/v1/catalog/node/${encodeURIComponent(nodeName)}`,
      timeouts,
    });
    const nodeBody = await node.body.text();
    return node.status === 200 && JSON.parse(nodeBody) !== null;
  };

  const peer = await startPeerProcess({
    name: 'consul',
    command: binary,
    args: ['agent', '-dev', `-config-file=${configFile}`],
    dir,
    env: { ...process.env, HOME: dir, CONSUL_HTTP_ADDR: url },
    ready,
    readyTimeoutMs: options.readyTimeoutMs ?? 60_000,
  });
  return {
    url,
    httpPort,
    dnsPort,
    serverPort,
    serfLanPort,
    serfWanPort,
    datacenter,
    nodeName,
    dir,
    logTail: (lines) => peer.logTail(lines),
    stop: () => peer.stop(),
    [Symbol.asyncDispose]: () => peer.stop(),
  };
}
