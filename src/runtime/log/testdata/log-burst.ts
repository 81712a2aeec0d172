// Child process for the flush-on-exit test: log N lines as fast as possible, then leave either by
// process.exit() at once ("exit"), on SIGTERM after flushLogs() ("sigterm", the way a shutdown
// sequence does), or by being SIGKILLed right after saying "ready" ("sigkill": nothing may be buffered);
// "epipe": the parent closes the pipe after the first chunk.
import { createLogger, flushLogs } from '../logger.ts';

const n = Number(process.argv[2]);
const mode = process.argv[3];
const log = createLogger({ name: 'burst', format: 'json' });
const payload = 'x'.repeat(100);

if (mode === 'sigterm') {
  process.on('SIGTERM', () => {
    flushLogs();
    process.exit(0);
  });
}
for (let i = 0; i < n; i++) log.info({ seq: i, payload, password: 'hidden' }, 'line');
if (mode === 'exit') process.exit(0);
if (mode === 'epipe') {
  // The reader went away mid-burst (`| head -1`): logging must not have thrown or crashed.
  process.stderr.write('survived\n');
  process.exit(0);
}
process.stderr.write('ready\n');
// Keep the loop alive until the signal arrives (bounded in case the parent dies).
setTimeout(() => process.exit(3), 60_000);
