// `capstan lb` in two node:cluster workers sharing one listening socket: what a second process buys on
// this machine (issue 12). Usage: lb-cluster.ts lb --listen ... --backend ... (the CLI's arguments).
import cluster from 'node:cluster';

if (cluster.isPrimary) {
  const workers = Number(process.env['CAPSTAN_BENCH_WORKERS'] ?? 2);
  for (let i = 0; i < workers; i++) cluster.fork();
  process.on('SIGTERM', () => {
    for (const w of Object.values(cluster.workers ?? {})) w?.kill('SIGTERM');
    process.exit(0);
  });
} else {
  await import('../src/cli/main.ts');
}
