// http-proxy (node-http-proxy) with a keep-alive agent, round robin over the backends: a Node.js peer of
// issue 12's benchmark. Usage: lb-http-proxy.ts <port> <backend url>...
import { Agent, createServer } from 'node:http';
import httpProxy from 'http-proxy';

const [port, ...backends] = process.argv.slice(2);
const proxy = httpProxy.createProxyServer({ agent: new Agent({ keepAlive: true, maxSockets: 64 }) });
proxy.on('error', (_err, _req, res) => {
  if ('writeHead' in res && !res.headersSent) res.writeHead(502);
  res.end();
});
let next = 0;
createServer((req, res) => {
  proxy.web(req, res, { target: backends[next++ % backends.length] });
}).listen(Number(port), '127.0.0.1', () => process.stdout.write('listening\n'));
