import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensurePeers, type PeerProcess, peerBinary, startPeerProcess } from '../peers/index.ts';
import { canConnect, createHttpTransport, freePort, httpRequest, makeProcessDir } from '../runtime/index.ts';

// Like fetch before it: one pooled client for every instance, no transparent retries (the callers poll).
const http = createHttpTransport({ retry: false });

/** Options of {@link startRegistry}. */
export interface StartRegistryOptions {
  /** Default 60 s. */
  readyTimeoutMs?: number;
}

/** A running container registry (CNCF Distribution) on loopback, with a private storage folder. */
export interface RegistryPeer {
  /** `127.0.0.1:port`: the registry part of an image reference (`${host}/app:1`). dockerd trusts
   * 127.0.0.0/8 over plain HTTP by default, so no `--insecure-registry` is needed. */
  readonly host: string;
  /** `http://127.0.0.1:port` for the Distribution API (`/v2/...`). */
  readonly url: string;
  readonly port: number;
  /** Where the blobs and manifests are stored. Removed on stop. */
  readonly dataDir: string;
  logTail(lines?: number): string;
  /** Stops the registry and removes its folder. Idempotent. */
  stop(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Path of the pinned `registry` binary, building it on first use (see scripts/peers/versions.json). */
export function registryBinary(): string {
  ensurePeers(['registry']);
  return peerBinary('registry', 'registry');
}

/**
 * Start a real container registry: `registry serve` from CNCF Distribution (the reference implementation
 * behind Docker Hub's protocol, built from the Go module proxy) with filesystem storage in a private folder,
 * on a free loopback port, deletes enabled. Images get into it the way users put them there: `docker push`.
 */
export async function startRegistry(options: StartRegistryOptions = {}): Promise<RegistryPeer> {
  const binary = registryBinary();
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const dir = makeProcessDir('registry');
  const dataDir = join(dir, 'data');
  const config = join(dir, 'config.yml');
  // JSON is YAML: the registry reads it as its config file.
  writeFileSync(
    config,
    JSON.stringify({
      version: 0.1,
      log: { level: 'info', formatter: 'text' },
      storage: { filesystem: { rootdirectory: dataDir }, delete: { enabled: true } },
      http: { addr: `127.0.0.1:${port}` },
    }),
  );
  const ready = async (): Promise<boolean> => {
    if (!(await canConnect(port))) return false;
    const res = await httpRequest(http, { origin: url, path: '/v2/', timeouts: { deadlineMs: 5_000 } });
    await res.body.dump();
    return res.status === 200;
  };
  const peer: PeerProcess = await startPeerProcess({
    name: 'registry',
    command: binary,
    args: ['serve', config],
    dir,
    // Tracing is on by default in Distribution 3 and would try to export to a collector that is not there.
    env: { PATH: process.env.PATH, HOME: dir, OTEL_TRACES_EXPORTER: 'none' },
    ready,
    readyTimeoutMs: options.readyTimeoutMs ?? 60_000,
  });
  return {
    host: `127.0.0.1:${port}`,
    url,
    port,
    dataDir,
    logTail: (lines) => peer.logTail(lines),
    stop: () => peer.stop(),
    [Symbol.asyncDispose]: () => peer.stop(),
  };
}
