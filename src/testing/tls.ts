import { createCertAuthority } from '../runtime/index.ts';

/** A throwaway CA and a server certificate it signed, all PEM, for TLS tests on loopback. */
export interface TestCertificates {
  /** The CA certificate: what clients pass as `ca` to trust the server. */
  caPem: string;
  /** The server certificate and its private key. */
  certPem: string;
  keyPem: string;
  /** With `client`: a client certificate (mutual TLS) and its key, signed by the same CA. */
  clientCertPem?: string;
  clientKeyPem?: string;
}

/** Options of {@link createTestCertificates}. */
export interface TestCertificateOptions {
  /** Names and IP addresses the server certificate is valid for. Default `['127.0.0.1', 'localhost', '::1']`. */
  hosts?: string[];
  /** Validity in days (default 2: a leaked test key is worth little). */
  days?: number;
  /** Also issue a client certificate with this common name, for mutual TLS. */
  client?: string;
}

const IP = /^[\d.]+$|:/;

/**
 * Make a CA and a server certificate for `hosts` in memory, with Node's crypto and node-forge: no `openssl`
 * command, nothing written to disk. Clients verify against `caPem` as they would in production, instead of
 * turning verification off.
 */
export async function createTestCertificates(
  options: TestCertificateOptions = {},
): Promise<TestCertificates> {
  const hosts = options.hosts ?? ['127.0.0.1', 'localhost', '::1'];
  const days = options.days ?? 2;
  const ca = await createCertAuthority('capstan test CA', days);
  const [server, client] = await Promise.all([
    ca.issue({
      commonName: hosts[0] ?? 'localhost',
      dnsNames: hosts.filter((h) => !IP.test(h)),
      ipAddresses: hosts.filter((h) => IP.test(h)),
      usage: 'server',
      days,
    }),
    options.client === undefined
      ? undefined
      : ca.issue({ commonName: options.client, usage: 'client', days }),
  ]);
  return {
    caPem: ca.certPem,
    certPem: server.certPem,
    keyPem: server.keyPem,
    ...(client ? { clientCertPem: client.certPem, clientKeyPem: client.keyPem } : {}),
  };
}
