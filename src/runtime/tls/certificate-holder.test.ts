import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { after, test } from 'node:test';
import { connect, createServer, type TLSSocket } from 'node:tls';
import { createCertAuthority } from './certificate-authority.ts';
import { CertificateHolder } from './certificate-holder.ts';
import { TlsError } from './errors.ts';

const ca = await createCertAuthority('capstan-holder-test-ca');
const issue = (commonName: string) =>
  ca.issue({ commonName, ipAddresses: ['127.0.0.1'], dnsNames: ['localhost'], usage: 'server' });
const [first, second] = await Promise.all([issue('first'), issue('second')]);

const holder = new CertificateHolder(first);
// An echo server: a connection that still answers after the swap is one that survived it.
const server = createServer(holder.serverOptions(), (socket) => socket.pipe(socket));
holder.attach(server);
server.listen(0, '127.0.0.1');
await once(server, 'listening');
const { port } = server.address() as AddressInfo;
const open = new Set<TLSSocket>();
after(async () => {
  for (const socket of open) socket.destroy();
  server.close();
  await once(server, 'close');
});

async function dial(): Promise<TLSSocket> {
  const socket = connect({ host: '127.0.0.1', port, ca: ca.certPem });
  open.add(socket);
  await once(socket, 'secureConnect');
  return socket;
}

async function echo(socket: TLSSocket, text: string): Promise<string> {
  socket.write(text);
  const [chunk] = (await once(socket, 'data')) as [Buffer];
  return chunk.toString();
}

test('after update(), a new connection sees the new certificate and an established one keeps working', async () => {
  const before = await dial();
  assert.equal(before.getPeerCertificate().subject.CN, 'first');
  assert.equal(await echo(before, 'ping 1'), 'ping 1');

  holder.update(second);
  assert.equal(holder.current.certPem, second.certPem);

  const afterSwap = await dial();
  assert.equal(afterSwap.getPeerCertificate().subject.CN, 'second');
  assert.equal(afterSwap.authorized, true, 'the new certificate verifies against the CA');
  assert.equal(await echo(afterSwap, 'ping 2'), 'ping 2');

  // The established session keeps its certificate and still carries data.
  assert.equal(before.getPeerCertificate().subject.CN, 'first');
  assert.equal(await echo(before, 'ping 3'), 'ping 3');
});

test('a key that does not match its certificate is refused and the current certificate stays', async () => {
  assert.throws(
    () => holder.update({ certPem: first.certPem, keyPem: second.keyPem }),
    (err: unknown) => err instanceof TlsError && err.code === 'CAP_ERR_RUNTIME_TLS_INVALID',
  );
  assert.throws(() => new CertificateHolder({ certPem: 'not pem', keyPem: 'not pem' }), {
    code: 'CAP_ERR_RUNTIME_TLS_INVALID',
  });
  // The first test left `second` in place.
  assert.equal(holder.current.certPem, second.certPem);
  const socket = await dial();
  assert.equal(socket.getPeerCertificate().subject.CN, 'second');
  assert.equal(await echo(socket, 'still serving'), 'still serving');
});
