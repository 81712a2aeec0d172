import { generateKeyPair, type KeyObject, randomBytes, sign } from 'node:crypto';
import { promisify } from 'node:util';
import forge from 'node-forge';

// Node can make keys and signatures but not X.509 certificates. node-forge (pure JS, no global polyfills)
// builds the certificate; key generation and RSA signing go to Node's native crypto, which is ~100x
// faster than forge's big-integer code (a forge signature alone took 0.5 s here).
const generateKeyPairAsync = promisify(generateKeyPair);

/** A certificate and its private key, both PEM. */
export interface CertPair {
  certPem: string;
  keyPem: string;
}

/** A CA able to issue more certificates. */
export interface CertAuthority extends CertPair {
  issue(options: IssueOptions): Promise<CertPair>;
}

/** What an issued certificate is for. */
export interface IssueOptions {
  commonName: string;
  /** Organisations: Kubernetes reads them as the groups of a client certificate (`system:masters`). */
  organizations?: string[];
  dnsNames?: string[];
  ipAddresses?: string[];
  usage: 'server' | 'client' | 'both';
  /** Validity in days; default 7 (test clusters are short-lived, and a short life limits a leaked key). */
  days?: number;
}

interface RsaKey {
  privatePem: string;
  privateKey: KeyObject;
  forgePublicKey: forge.pki.PublicKey;
}

/** An RSA-2048 key from Node's generator (async: several keys are made in parallel on the thread pool). */
export async function rsaKey(): Promise<RsaKey> {
  const { privateKey, publicKey } = await generateKeyPairAsync('rsa', { modulusLength: 2048 });
  return {
    privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    privateKey,
    forgePublicKey: forge.pki.publicKeyFromPem(publicKey.export({ type: 'spki', format: 'pem' }).toString()),
  };
}

/** Sign with Node: forge computes the TBS structure and asks the "key" for a signature over it. */
function signCert(cert: forge.pki.Certificate, key: KeyObject): void {
  const nativeSigner = {
    sign: () => {
      const tbs = Buffer.from(forge.asn1.toDer(cert.tbsCertificate).getBytes(), 'binary');
      return sign('sha256', tbs, key).toString('binary');
    },
  };
  cert.sign(nativeSigner as unknown as forge.pki.rsa.PrivateKey, forge.md.sha256.create());
}

function newCert(publicKey: forge.pki.PublicKey, days: number): forge.pki.Certificate {
  const cert = forge.pki.createCertificate();
  cert.publicKey = publicKey;
  // 16 bytes, first byte in 0x01..0x7f: positive and minimally encoded. Go rejects a leading zero byte
  // ("x509: malformed serial number"), which an odd-length hex string would produce.
  const serial = randomBytes(16);
  serial[0] = ((serial[0] ?? 0) & 0x7f) | 0x01;
  cert.serialNumber = serial.toString('hex');
  // Back-dated by an hour so a peer on a slightly skewed clock never sees a certificate from the future.
  cert.validity.notBefore = new Date(Date.now() - 3_600_000);
  cert.validity.notAfter = new Date(Date.now() + days * 86_400_000);
  return cert;
}

/** Create a fresh self-signed CA (RSA-2048, SHA-256). */
export async function createCertAuthority(commonName: string, days = 7): Promise<CertAuthority> {
  const caKey = await rsaKey();
  const caCert = newCert(caKey.forgePublicKey, days);
  const subject = [{ name: 'commonName', value: commonName }];
  caCert.setSubject(subject);
  caCert.setIssuer(subject);
  caCert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  signCert(caCert, caKey.privateKey);
  return {
    certPem: forge.pki.certificateToPem(caCert),
    keyPem: caKey.privatePem,
    async issue(options: IssueOptions): Promise<CertPair> {
      const leaf = await rsaKey();
      const cert = newCert(leaf.forgePublicKey, options.days ?? days);
      cert.setSubject([
        { name: 'commonName', value: options.commonName },
        ...(options.organizations ?? []).map((value) => ({ name: 'organizationName', value })),
      ]);
      cert.setIssuer(caCert.subject.attributes);
      const altNames = [
        ...(options.dnsNames ?? []).map((value) => ({ type: 2, value })),
        ...(options.ipAddresses ?? []).map((ip) => ({ type: 7, ip })),
      ];
      cert.setExtensions([
        { name: 'basicConstraints', cA: false, critical: true },
        { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
        {
          name: 'extKeyUsage',
          serverAuth: options.usage !== 'client',
          clientAuth: options.usage !== 'server',
        },
        { name: 'subjectKeyIdentifier' },
        { name: 'authorityKeyIdentifier', keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes() },
        ...(altNames.length > 0 ? [{ name: 'subjectAltName', altNames }] : []),
      ]);
      signCert(cert, caKey.privateKey);
      return { certPem: forge.pki.certificateToPem(cert), keyPem: leaf.privatePem };
    },
  };
}
