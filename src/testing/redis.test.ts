import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import { PeerError } from '../peers/index.ts';
import { canConnect, processesWithCommandLine } from '../runtime/index.ts';
import { startRedis } from './redis.ts';

/** Send raw RESP inline commands and collect `lines` reply lines. */
function talk(port: number, commands: string[], lines: number): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    let buf = '';
    socket.on('data', (c) => {
      buf += c.toString();
      const got = buf.split('\r\n').filter((l) => l !== '');
      if (got.length >= lines) {
        socket.destroy();
        resolve(got.slice(0, lines));
      }
    });
    socket.once('error', reject);
    socket.once('close', () => reject(new Error(`connection closed, no reply (got ${JSON.stringify(buf)})`)));
    socket.once('connect', () => socket.write(commands.map((c) => `${c}\r\n`).join('')));
  });
}

test('startRedis without a password: serves, persists nothing, cleans up', async () => {
  const server = await startRedis();
  try {
    assert.equal(server.url, `redis://127.0.0.1:${server.port}`);
    assert.equal(server.password, undefined);
    const replies = await talk(
      server.port,
      ['SET k v', 'GET k', 'CONFIG GET save', 'CONFIG GET appendonly'],
      12,
    );
    assert.deepEqual(replies, [
      '+OK',
      '$1',
      'v',
      '*2',
      '$4',
      'save',
      '$0',
      '*2',
      '$10',
      'appendonly',
      '$2',
      'no',
    ]);
  } finally {
    await server.stop();
  }
  assert.equal(await canConnect(server.port), false);
  assert.equal(existsSync(server.dir), false);
  await server.stop();
});

test('startRedis with a password requires AUTH', async () => {
  await using server = await startRedis({ password: 'pw with space' });
  assert.equal(new URL(server.url).password, 'pw%20with%20space');
  assert.deepEqual(await talk(server.port, ['PING'], 1), ['-NOAUTH Authentication required.']);
  assert.deepEqual(await talk(server.port, ['AUTH "pw with space"', 'PING'], 2), ['+OK', '+PONG']);
});

test('the password is on no command line, only in a 0600 config file; AUTH still works', async () => {
  const password = `cmdline-${randomBytes(8).toString('hex')}`;
  // set-proc-title no: redis would otherwise overwrite its arguments once started, which hides them only
  // after the fact (and not at all with this setting).
  await using server = await startRedis({ password, settings: { 'set-proc-title': 'no' } });
  const own = readFileSync(`/proc/${server.pid}/cmdline`, 'utf8');
  assert.match(own, /redis-server/);
  assert.ok(!own.includes(password), own.replaceAll('\0', ' '));
  assert.deepEqual(processesWithCommandLine(password), []);
  assert.equal(statSync(join(server.dir, 'redis.conf')).mode & 0o777, 0o600);
  assert.deepEqual(await talk(server.port, ['PING'], 1), ['-NOAUTH Authentication required.']);
  assert.deepEqual(await talk(server.port, [`AUTH ${password}`, 'PING'], 2), ['+OK', '+PONG']);
  // Quoting survives the config file: quotes, backslashes and spaces.
  await using odd = await startRedis({ password: 'a "b" \\c d' });
  assert.deepEqual(await talk(odd.port, ['AUTH "a \\"b\\" \\\\c d"', 'PING'], 2), ['+OK', '+PONG']);
});

test('a bad setting fails with the server log', async () => {
  await assert.rejects(startRedis({ settings: { maxmemory: 'plenty' } }), (err: unknown) => {
    assert.ok(err instanceof PeerError);
    assert.equal(err.code, 'CAP_ERR_PEER_EXITED');
    assert.match(err.logTail, /maxmemory|argument/i);
    return true;
  });
});

test('startRedis with tls serves TLS only, with a certificate clients can trust', async () => {
  await using server = await startRedis({ tls: true, password: 'tls-pw' });
  assert.match(server.url, /^rediss:\/\/:tls-pw@127\.0\.0\.1:\d+$/);
  assert.match(server.ca ?? '', /^-----BEGIN CERTIFICATE-----/);
  const reply = await new Promise<string>((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port: server.port, ca: server.ca });
    socket.once('secureConnect', () => socket.write('AUTH tls-pw\r\nPING\r\n'));
    let buf = '';
    socket.on('data', (c) => {
      buf += c.toString();
      if (buf.split('\r\n').length > 2) {
        socket.destroy();
        resolve(buf);
      }
    });
    socket.once('error', reject);
  });
  assert.equal(reply, '+OK\r\n+PONG\r\n');
  // No plain-text listener: a plain PING gets no Redis reply.
  await assert.rejects(talk(server.port, ['PING'], 1), /closed|ECONNRESET|no reply/);
});
