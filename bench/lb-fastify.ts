// @fastify/reply-from on fastify, round robin over the backends: a Node.js peer of issue 12's benchmark.
// Usage: lb-fastify.ts <port> <backend url>...
import replyFrom from '@fastify/reply-from';
import Fastify from 'fastify';

const [port, ...backends] = process.argv.slice(2);
const app = Fastify({ logger: false });
await app.register(replyFrom);
let next = 0;
app.all('/*', (req, reply) => {
  const backend = backends[next++ % backends.length]!;
  return reply.from(`${backend}${req.url}`);
});
await app.listen({ port: Number(port), host: '127.0.0.1' });
process.stdout.write('listening\n');
