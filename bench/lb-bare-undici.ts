// The smallest undici proxy (one Pool per backend, round robin, no checks, no retries): the floor a
// Node.js proxy starts from, in issue 12's benchmark. Usage: lb-bare-undici.ts <port> <backend url>...
import { createServer } from 'node:http';
import { Pool } from 'undici';

const [port, ...backends] = process.argv.slice(2);
const pools = backends.map((b) => new Pool(b));
let next = 0;
createServer(async (req, res) => {
  try {
    const upstream = await pools[next++ % pools.length]!.request({
      method: req.method as 'GET',
      path: req.url ?? '/',
      headers: { host: req.headers.host ?? '' },
    });
    res.writeHead(upstream.statusCode, upstream.headers);
    for await (const chunk of upstream.body) res.write(chunk);
    res.end();
  } catch {
    res.writeHead(502).end();
  }
}).listen(Number(port), '127.0.0.1', () => process.stdout.write('listening\n'));
