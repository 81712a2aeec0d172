import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { createServer, request } from 'node:https';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { createCertAuthority } from './certificate-authority.ts';

test('issued certificates chain to the CA and carry names, groups and usages', async () => {
  const ca = await createCertAuthority('capstan-test-ca');
  const caCert = new X509Certificate(ca.certPem);
  assert.equal(caCert.ca, true);
  assert.equal(caCert.checkIssued(caCert), true, 'the CA is self-signed');

  const server = await ca.issue({
    commonName: 'kube-apiserver',
    dnsNames: ['localhost'],
    ipAddresses: ['127.0.0.1'],
    usage: 'server',
  });
  const serverCert = new X509Certificate(server.certPem);
  assert.equal(serverCert.ca, false);
  assert.equal(serverCert.checkIssued(caCert), true);
  assert.equal(serverCert.verify(caCert.publicKey), true);
  assert.equal(serverCert.checkIP('127.0.0.1'), '127.0.0.1');
  assert.equal(serverCert.checkHost('localhost'), 'localhost');
  assert.equal(serverCert.checkHost('example.com'), undefined);
  assert.deepEqual(serverCert.keyUsage, ['1.3.6.1.5.5.7.3.1']);
  assert.ok(new Date(serverCert.validFrom) < new Date(), 'valid now');

  const client = await ca.issue({ commonName: 'admin', organizations: ['system:masters'], usage: 'client' });
  const clientCert = new X509Certificate(client.certPem);
  assert.match(clientCert.subject, /O=system:masters/);
  assert.deepEqual(clientCert.keyUsage, ['1.3.6.1.5.5.7.3.2']);

  const other = await createCertAuthority('another-ca');
  assert.equal(serverCert.verify(new X509Certificate(other.certPem).publicKey), false);
});

test('a mutual-TLS handshake works with the issued pair, and a foreign client is refused', async () => {
  const ca = await createCertAuthority('capstan-test-ca');
  const [server, client] = await Promise.all([
    ca.issue({ commonName: 'srv', ipAddresses: ['127.0.0.1'], usage: 'server' }),
    ca.issue({ commonName: 'admin', organizations: ['system:masters'], usage: 'client' }),
  ]);
  const foreign = await (await createCertAuthority('foreign')).issue({ commonName: 'x', usage: 'client' });
  const srv = createServer(
    { cert: server.certPem, key: server.keyPem, ca: ca.certPem, requestCert: true, rejectUnauthorized: true },
    (req, res) => {
      const peer = (req.socket as import('node:tls').TLSSocket).getPeerCertificate();
      res.end(`${peer.subject.CN}/${peer.subject.O}`);
    },
  );
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as AddressInfo).port;
  const call = (pair: { certPem: string; keyPem: string }) =>
    new Promise<string>((resolve, reject) => {
      const req = request(
        { host: '127.0.0.1', port, ca: ca.certPem, cert: pair.certPem, key: pair.keyPem, agent: false },
        (res) => {
          let body = '';
          res.on('data', (c) => {
            body += c;
          });
          res.on('end', () => resolve(body));
        },
      );
      req.on('error', reject);
      req.end();
    });
  try {
    assert.equal(await call(client), 'admin/system:masters');
    await assert.rejects(call(foreign));
  } finally {
    srv.close();
  }
});
