import {
  createPrivateKey,
  createPublicKey,
  generateKeyPair,
  type KeyObject,
  randomBytes,
  sign,
  X509Certificate,
} from 'node:crypto';
import { promisify } from 'node:util';
import type forgeModule from 'node-forge';
import { TlsError, TlsErrorCode } from './errors.ts';

// Node can make keys and signatures but not X.509 certificates. node-forge (pure JS, no global polyfills)
// builds the certificate; key generation and RSA signing go to Node's native crypto, which is ~100x
// faster than forge's big-integer code (a forge signature alone took 0.5 s here).
const generateKeyPairAsync = promisify(generateKeyPair);

type Forge = typeof forgeModule;
let forgeLoaded: Promise<Forge> | undefined;
/** node-forge is loaded on first use: importing `capstan/runtime` must stay cheap for servers without TLS. */
function loadForge(): Promise<Forge> {
  forgeLoaded ??= import('node-forge').then((m) => m.default);
  return forgeLoaded;
}

/** A certificate and its private key, both PEM. */
export interface CertPair {
  certPem: string;
  keyPem: string;
}

/** A CA able to issue more certificates. */
export interface CertAuthority extends CertPair {
  /** Make a fresh key and a certificate for it, signed by this CA. */
  issue(options: IssueOptions): Promise<CertPair>;
}

/** What an issued certificate is for. */
export interface IssueOptions {
  /** Subject CN: a host name for servers, a user name for Kubernetes client certificates. */
  commonName: string;
  /** Organisations: Kubernetes reads them as the groups of a client certificate (`system:masters`). */
  organizations?: string[];
  /** Subject alternative names: DNS names the certificate is valid for. */
  dnsNames?: string[];
  /** Subject alternative names: IP addresses (v4 or v6) the certificate is valid for. */
  ipAddresses?: string[];
  /** Extended key usage: TLS server, TLS client, or both. */
  usage: 'server' | 'client' | 'both';
  /** Validity in days; default the CA's (7 unless told): test clusters are short-lived, and a short life limits a leaked key. */
  days?: number;
  /** Start of validity. Default an hour ago, so a peer on a slightly skewed clock never sees a certificate from the future. */
  notBefore?: Date;
  /** End of validity; overrides `days` (a certificate of seconds, to test rotation). Never later than the CA's own. */
  notAfter?: Date;
}

/** Options of {@link createCertAuthority} beyond its name. */
export interface CertAuthorityOptions {
  /** Validity in days of the CA, and the default of what it issues. Default 7. */
  days?: number;
  /** Start of validity. Default an hour ago. */
  notBefore?: Date;
  /** End of validity; overrides `days`. */
  notAfter?: Date;
}

interface RsaKey {
  privatePem: string;
  privateKey: KeyObject;
  forgePublicKey: forgeModule.pki.PublicKey;
}

/** An RSA-2048 key from Node's generator (async: several keys are made in parallel on the thread pool). */
async function rsaKey(forge: Forge): Promise<RsaKey> {
  const { privateKey, publicKey } = await generateKeyPairAsync('rsa', { modulusLength: 2048 });
  return {
    privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    privateKey,
    forgePublicKey: forge.pki.publicKeyFromPem(publicKey.export({ type: 'spki', format: 'pem' }).toString()),
  };
}

/** Sign with Node: forge computes the TBS structure and asks the "key" for a signature over it. */
function signCert(forge: Forge, cert: forgeModule.pki.Certificate, key: KeyObject): void {
  const nativeSigner = {
    sign: () => {
      const tbs = Buffer.from(forge.asn1.toDer(cert.tbsCertificate).getBytes(), 'binary');
      return sign('sha256', tbs, key).toString('binary');
    },
  };
  cert.sign(nativeSigner as unknown as forgeModule.pki.rsa.PrivateKey, forge.md.sha256.create());
}

interface ValidityWindow {
  days: number;
  notBefore?: Date | undefined;
  notAfter?: Date | undefined;
  /** The issuer's end of validity: nothing it signs outlives it (a chain is only as valid as its CA). */
  limit?: Date | undefined;
}

function newCert(
  forge: Forge,
  publicKey: forgeModule.pki.PublicKey,
  validity: ValidityWindow,
): forgeModule.pki.Certificate {
  const cert = forge.pki.createCertificate();
  cert.publicKey = publicKey;
  // 16 bytes, first byte in 0x01..0x7f: positive and minimally encoded. Go rejects a leading zero byte
  // ("x509: malformed serial number"), which an odd-length hex string would produce.
  const serial = randomBytes(16);
  serial[0] = ((serial[0] ?? 0) & 0x7f) | 0x01;
  cert.serialNumber = serial.toString('hex');
  // Back-dated by an hour so a peer on a slightly skewed clock never sees a certificate from the future.
  cert.validity.notBefore = validity.notBefore ?? new Date(Date.now() - 3_600_000);
  const notAfter = validity.notAfter ?? new Date(Date.now() + validity.days * 86_400_000);
  cert.validity.notAfter =
    validity.limit !== undefined && validity.limit < notAfter ? validity.limit : notAfter;
  return cert;
}

/**
 * Create a fresh self-signed CA (RSA-2048, SHA-256) in memory, valid `days` days (or the window of
 * `options`), that issues serving and client certificates. Nothing is written to disk and no `openssl`
 * command runs.
 */
export async function createCertAuthority(
  commonName: string,
  validity: number | CertAuthorityOptions = 7,
): Promise<CertAuthority> {
  const options = typeof validity === 'number' ? { days: validity } : validity;
  const days = options.days ?? 7;
  const forge = await loadForge();
  const caKey = await rsaKey(forge);
  const caCert = newCert(forge, caKey.forgePublicKey, {
    days,
    notBefore: options.notBefore,
    notAfter: options.notAfter,
  });
  const subject = [{ name: 'commonName', value: commonName }];
  caCert.setSubject(subject);
  caCert.setIssuer(subject);
  caCert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  signCert(forge, caCert, caKey.privateKey);
  return authority(forge, caCert, caKey.privateKey, caKey.privatePem, days);
}

/**
 * A CA from its certificate and key, PEM (as stored in a Secret by an earlier run): it issues as
 * {@link createCertAuthority}'s does, with its default validity of 7 days. Throws a {@link TlsError}
 * (`CAP_ERR_RUNTIME_TLS_INVALID`) when the certificate is not a CA or the key is not its key.
 */
export async function loadCertAuthority(pair: CertPair): Promise<CertAuthority> {
  const forge = await loadForge();
  let x509: X509Certificate;
  let key: KeyObject;
  try {
    x509 = new X509Certificate(pair.certPem);
    key = createPrivateKey(pair.keyPem);
  } catch (err) {
    throw new TlsError(TlsErrorCode.invalid, `unusable CA certificate or key: ${(err as Error).message}`, {
      cause: err,
    });
  }
  if (!x509.ca) throw new TlsError(TlsErrorCode.invalid, `not a CA certificate: ${x509.subject}`);
  if (!x509.checkPrivateKey(key)) {
    throw new TlsError(TlsErrorCode.invalid, `the key is not the key of CA ${x509.subject}`);
  }
  if (createPublicKey(key).asymmetricKeyType !== 'rsa') {
    throw new TlsError(TlsErrorCode.invalid, 'only RSA CA keys can issue here');
  }
  // Only the first certificate of a bundle: the CA that signs.
  const caCert = forge.pki.certificateFromPem(x509.toString());
  return authority(forge, caCert, key, key.export({ type: 'pkcs8', format: 'pem' }).toString(), 7);
}

function authority(
  forge: Forge,
  caCert: forgeModule.pki.Certificate,
  caKey: KeyObject,
  caKeyPem: string,
  days: number,
): CertAuthority {
  return {
    certPem: forge.pki.certificateToPem(caCert),
    keyPem: caKeyPem,
    async issue(options: IssueOptions): Promise<CertPair> {
      const leaf = await rsaKey(forge);
      const cert = newCert(forge, leaf.forgePublicKey, {
        days: options.days ?? days,
        notBefore: options.notBefore,
        notAfter: options.notAfter,
        limit: caCert.validity.notAfter,
      });
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
      signCert(forge, cert, caKey);
      return { certPem: forge.pki.certificateToPem(cert), keyPem: leaf.privatePem };
    },
  };
}
