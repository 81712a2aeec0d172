// A loopback TCP proxy a test puts between a client and the apiserver, to break the path on purpose: cut
// every connection (a reset), hold them open but silent (a stalled stream), or refuse new ones (an outage).
// TLS passes through untouched: the apiserver's certificate covers 127.0.0.1, the proxy's address too.
import { createServer, type Socket, connect as tcpConnect } from 'node:net';
import type { AddressInfo } from 'node:net';

/** A running {@link startTcpProxy}. */
export interface TcpProxy {
  /** `https://127.0.0.1:<port>`: the apiserver through the proxy. */
  readonly url: string;
  /** Connections accepted so far. */
  readonly accepted: number;
  /** Connections open now. */
  readonly open: number;
  /** Destroy every open connection, both sides (what a restarted apiserver or a dropped NAT entry does). */
  cut(): void;
  /** Stop forwarding on every open connection, leaving it open: the client sees a stream that went silent. */
  stall(): void;
  /** While down, new connections are closed at once (the apiserver is unreachable). */
  setDown(down: boolean): void;
  close(): Promise<void>;
}

/** Start a proxy on a free loopback port forwarding to `target` (`https://127.0.0.1:6443`). */
export async function startTcpProxy(target: string): Promise<TcpProxy> {
  const { hostname, port } = new URL(target);
  const pairs = new Set<[Socket, Socket]>();
  let down = false;
  let accepted = 0;
  const server = createServer((client) => {
    accepted++;
    if (down) {
      client.destroy();
      return;
    }
    const upstream = tcpConnect({ host: hostname, port: Number(port) });
    const pair: [Socket, Socket] = [client, upstream];
    pairs.add(pair);
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address() as AddressInfo;
  const proxy: TcpProxy = {
    url: `https://127.0.0.1:${address.port}`,
    get accepted() {
      return accepted;
    },
    get open() {
      return pairs.size;
    },
    cut() {
      for (const [a, b] of [...pairs]) {
        a.destroy();
        b.destroy();
      }
      pairs.clear();
    },
    stall() {
      for (const [a, b] of pairs) {
        a.unpipe(b);
        b.unpipe(a);
        a.pause();
        b.pause();
      }
    },
    setDown(value) {
      down = value;
    },
    async close() {
      proxy.cut();
      await new Promise((resolve) => server.close(resolve));
    },
  };
  return proxy;
}
