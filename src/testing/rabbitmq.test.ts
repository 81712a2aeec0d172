import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import amqp from 'amqplib';
import { type RabbitMQPeer, startRabbitMQ } from './rabbitmq.ts';

/** Poll until `read()` returns `want` or the bound passes; returns the last value read. */
async function eventually<T>(read: () => Promise<T>, want: T, tries = 100): Promise<T> {
  let last = await read();
  for (let i = 0; i < tries && last !== want; i++) {
    await sleep(200);
    last = await read();
  }
  return last;
}

describe('rabbitmq (real Debian rabbitmq-server)', () => {
  let broker: RabbitMQPeer;

  before(async () => {
    broker = await startRabbitMQ();
  });
  after(async () => {
    await broker?.stop();
  });

  test('publish N messages: AMQP and the management API both read depth N, then consume drains it', async () => {
    const n = 25;
    const queue = 'capstan.jobs';
    const conn = await amqp.connect(broker.amqpUrl);
    try {
      const ch = await conn.createConfirmChannel();
      await ch.assertQueue(queue, { durable: true });
      for (let i = 0; i < n; i++) ch.sendToQueue(queue, Buffer.from(`job-${i}`), { persistent: true });
      // Publisher confirms: the broker has every message before we count.
      await ch.waitForConfirms();

      assert.equal((await ch.checkQueue(queue)).messageCount, n);
      assert.equal(await eventually(() => broker.queueDepth(queue), n), n);

      const seen: string[] = [];
      for (let i = 0; i < n; i++) {
        const msg = await ch.get(queue, { noAck: false });
        assert.ok(msg, `message ${i} missing`);
        seen.push(msg.content.toString());
        ch.ack(msg);
      }
      assert.deepEqual(
        seen,
        Array.from({ length: n }, (_, i) => `job-${i}`),
      );
      assert.equal(await ch.get(queue), false);
      assert.equal(await eventually(() => broker.queueDepth(queue), 0), 0);
      await ch.close();
    } finally {
      await conn.close();
    }
  });

  test('the broker has our private node name and the management API lists the queue', async () => {
    const res = await fetch(`${broker.managementUrl}/api/overview`, {
      headers: { authorization: broker.authorization },
    });
    assert.equal(res.status, 200);
    const overview = (await res.json()) as {
      node: string;
      listeners: Array<{ protocol: string; port: number }>;
    };
    assert.equal(overview.node, broker.nodeName);
    assert.ok(overview.listeners.some((l) => l.protocol === 'amqp' && l.port === broker.port));
    const queues = (await (
      await fetch(`${broker.managementUrl}/api/queues`, { headers: { authorization: broker.authorization } })
    ).json()) as Array<{ name: string }>;
    assert.ok(queues.some((q) => q.name === 'capstan.jobs'));
  });

  test('the password is on no command line (/proc/*/cmdline); its config file is owner-only', () => {
    const leaks: string[] = [];
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
        if (cmdline.includes(broker.password)) leaks.push(`${entry}: ${cmdline.replaceAll('\0', ' ')}`);
      } catch {
        // Gone meanwhile.
      }
    }
    assert.deepEqual(leaks, []);
    assert.equal(statSync(join(broker.dir, 'rabbitmq.conf')).mode & 0o777, 0o600);
  });

  test('bad credentials and unknown queues are refused', async () => {
    const badUrl = broker.amqpUrl.replace(`:${encodeURIComponent(broker.password)}@`, ':wrong@');
    await assert.rejects(amqp.connect(badUrl), /ACCESS_REFUSED|403/);

    const res = await fetch(`${broker.managementUrl}/api/overview`, {
      headers: { authorization: `Basic ${Buffer.from(`${broker.user}:wrong`).toString('base64')}` },
    });
    assert.equal(res.status, 401);
    await res.body?.cancel();

    await assert.rejects(broker.queueDepth('no-such-queue'), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'CAP_ERR_PEER_REQUEST');
      assert.match(err.message, /404/);
      return true;
    });

    const conn = await amqp.connect(broker.amqpUrl);
    try {
      const ch = await conn.createChannel();
      ch.on('error', () => {}); // the broker closes the channel with 404; the rejection below is the check
      await assert.rejects(ch.checkQueue('no-such-queue'), /NOT_FOUND/);
    } finally {
      await conn.close();
    }
  });

  test('two brokers run side by side and stop leaves nothing behind', async () => {
    const second = await startRabbitMQ({ management: false, user: 'other', password: 'other-pass' });
    const dir = second.dir;
    assert.ok(existsSync(dir));
    try {
      assert.notEqual(second.port, broker.port);
      assert.notEqual(second.nodeName, broker.nodeName);
      assert.equal(second.managementUrl, undefined);
      const conn = await amqp.connect(second.amqpUrl);
      const ch = await conn.createChannel();
      await ch.assertQueue('only-here');
      await conn.close();
      // Queues are per broker: the first one never saw it.
      await assert.rejects(broker.queueDepth('only-here'), /404/);
      await assert.rejects(second.queueDepth('only-here'), { code: 'CAP_ERR_PEER_CONFIG' });
    } finally {
      await second.stop();
    }
    await assert.rejects(amqp.connect(second.amqpUrl));
    assert.equal(existsSync(dir), false);
  });
});

test('listenAddresses: AMQP also listens there, on the same port, and still on 127.0.0.1', async () => {
  // 127.0.0.2 stands in for a node's bridge address: another address of this machine.
  await using broker = await startRabbitMQ({ management: false, listenAddresses: ['127.0.0.2'] });
  for (const host of ['127.0.0.1', '127.0.0.2']) {
    const conn = await amqp.connect(broker.amqpUrl.replace('@127.0.0.1:', `@${host}:`));
    try {
      const ch = await conn.createChannel();
      const { queue } = await ch.assertQueue('', { exclusive: true });
      ch.sendToQueue(queue, Buffer.from(host));
      let msg: amqp.GetMessage | false = false;
      for (let i = 0; i < 50 && !msg; i++) {
        msg = await ch.get(queue, { noAck: true });
        if (!msg) await sleep(50);
      }
      assert.ok(msg, host);
      assert.equal(msg.content.toString(), host);
    } finally {
      await conn.close();
    }
  }
});
