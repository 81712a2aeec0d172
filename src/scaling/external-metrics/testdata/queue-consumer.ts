// The worker of the HPA test, run as a pod: takes one message at a time from $QUEUE, works $WORK_MS on it,
// then names itself (the pod's hostname) on $DONE_QUEUE and acknowledges, so the test can tell which
// replicas drained the queue. On SIGTERM (a scale-down) the unacknowledged message goes back to the queue.
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import amqp from 'amqplib';

const url = process.env['AMQP_URL'] ?? '';
const queue = process.env['QUEUE'] ?? 'work';
const done = process.env['DONE_QUEUE'] ?? 'done';
const workMs = Number(process.env['WORK_MS'] ?? '500');

let conn: amqp.ChannelModel | undefined;
for (let attempt = 1; !conn; attempt++) {
  try {
    conn = await amqp.connect(url);
  } catch (err) {
    if (attempt >= 30) throw err;
    await sleep(1000);
  }
}
const ch = await conn.createChannel();
await ch.prefetch(1);
await ch.assertQueue(queue, { durable: false });
await ch.assertQueue(done, { durable: false });
process.stdout.write(`${hostname()} consuming ${queue}\n`);
await ch.consume(queue, (msg) => {
  if (!msg) return;
  void sleep(workMs).then(() => {
    ch.sendToQueue(done, Buffer.from(hostname()));
    ch.ack(msg);
  });
});
process.once('SIGTERM', () => {
  void conn.close().finally(() => process.exit(0));
});
