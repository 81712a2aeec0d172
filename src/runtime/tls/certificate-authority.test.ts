import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { createServer, request } from 'node:https';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { createCertAuthority, loadCertAuthority } from './certificate-authority.ts';

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

test('a CA loaded from its PEM pair issues certificates that chain to the same CA certificate', async () => {
  const original = await createCertAuthority('capstan-stored-ca');
  const loaded = await loadCertAuthority({ certPem: original.certPem, keyPem: original.keyPem });
  assert.equal(
    new X509Certificate(loaded.certPem).fingerprint256,
    new X509Certificate(original.certPem).fingerprint256,
  );
  const leaf = new X509Certificate(
    (await loaded.issue({ commonName: 'svc', dnsNames: ['svc.ns.svc'], usage: 'server' })).certPem,
  );
  const caCert = new X509Certificate(original.certPem);
  assert.equal(leaf.checkIssued(caCert), true);
  assert.equal(leaf.verify(caCert.publicKey), true);
  assert.equal(leaf.checkHost('svc.ns.svc'), 'svc.ns.svc');
});

test('loading refuses a leaf certificate, a foreign key and garbage, with CAP_ERR_RUNTIME_TLS_INVALID', async () => {
  const ca = await createCertAuthority('capstan-ca');
  const other = await createCertAuthority('capstan-other-ca');
  const leaf = await ca.issue({ commonName: 'leaf', usage: 'server' });
  const invalid = { code: 'CAP_ERR_RUNTIME_TLS_INVALID' };
  await assert.rejects(loadCertAuthority(leaf), invalid);
  await assert.rejects(loadCertAuthority({ certPem: ca.certPem, keyPem: other.keyPem }), invalid);
  await assert.rejects(loadCertAuthority({ certPem: 'not pem', keyPem: ca.keyPem }), invalid);
  await assert.rejects(loadCertAuthority({ certPem: ca.certPem, keyPem: '' }), invalid);
});

test('validity windows: notBefore and notAfter are honoured, and no leaf outlives its CA', async () => {
  const now = Date.now();
  const second = (d: Date | string) => Math.floor(new Date(d).getTime() / 1000);
  const ca = await createCertAuthority('capstan-short-ca', {
    notBefore: new Date(now),
    notAfter: new Date(now + 60_000),
  });
  const caCert = new X509Certificate(ca.certPem);
  assert.equal(second(caCert.validFrom), second(new Date(now)));
  assert.equal(second(caCert.validTo), second(new Date(now + 60_000)));
  const short = new X509Certificate(
    (
      await ca.issue({
        commonName: 'short',
        usage: 'server',
        notBefore: new Date(now),
        notAfter: new Date(now + 10_000),
      })
    ).certPem,
  );
  assert.equal(second(short.validTo), second(new Date(now + 10_000)));
  // Asked for the CA's default of 7 days, the leaf stops with the CA a minute from now.
  const capped = new X509Certificate(
    (await ca.issue({ commonName: 'capped', usage: 'server', days: 7 })).certPem,
  );
  assert.equal(second(capped.validTo), second(new Date(now + 60_000)));
});
