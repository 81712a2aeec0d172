// Real backends for the load balancer's tests: node:http servers on loopback that answer with their name,
// and can be slowed, made to fail, killed (connections cut, port closed) and restarted on the same port.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface TestBackend {
  name: string;
  url: string;
  port: number;
  /** Requests received, by path (the health checks' `/health` included). */
  hits: Map<string, number>;
  /** Requests received on paths other than the health path. */
  served(): number;
  /** Answer requests this way from now on (default: 200 with the name). */
  behaviour: (req: IncomingMessage, res: ServerResponse) => void;
  /** Last request's headers. */
  lastHeaders: IncomingMessage['headers'] | undefined;
  server: Server;
  kill(): Promise<void>;
  revive(): Promise<void>;
}

export const HEALTH_PATH = '/health';

function listen(server: Server, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

export async function startBackend(name: string): Promise<TestBackend> {
  const sockets = new Set<Socket>();
  const hits = new Map<string, number>();
  const make = () => {
    const server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0]!;
      hits.set(path, (hits.get(path) ?? 0) + 1);
      backend.lastHeaders = req.headers;
      backend.behaviour(req, res);
    });
    server.keepAliveTimeout = 30_000;
    server.on('connection', (s) => {
      sockets.add(s);
      s.once('close', () => sockets.delete(s));
    });
    return server;
  };
  const defaultBehaviour = (req: IncomingMessage, res: ServerResponse) => {
    req.resume();
    req.once('end', () => res.end(name));
  };
  const backend: TestBackend = {
    name,
    url: '',
    port: 0,
    hits,
    served: () => [...hits].filter(([p]) => p !== HEALTH_PATH).reduce((n, [, c]) => n + c, 0),
    behaviour: defaultBehaviour,
    lastHeaders: undefined,
    server: make(),
    async kill() {
      await new Promise<void>((resolve) => {
        this.server.close(() => resolve());
        for (const s of sockets) s.destroy();
      });
    },
    async revive() {
      this.server = make();
      await listen(this.server, this.port);
    },
  };
  backend.port = await listen(backend.server, 0);
  backend.url = `http://127.0.0.1:${backend.port}`;
  return backend;
}

export async function startBackends(n: number): Promise<TestBackend[]> {
  return Promise.all(Array.from({ length: n }, (_, i) => startBackend(`b${i}`)));
}
