// A backend for the load balancer benchmark: a fixed small answer. Usage: lb-backend.ts <port>
import { createServer } from 'node:http';

const port = Number(process.argv[2]);
createServer((req, res) => {
  req.resume();
  res.end('hello from the backend\n');
}).listen(port, '127.0.0.1', () => process.stdout.write('listening\n'));
