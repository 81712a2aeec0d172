import { createSecureContext, type SecureContext, type SecureContextOptions, type Server } from 'node:tls';
import { TlsError, TlsErrorCode } from './errors.ts';

/** What a TLS server serves: its certificate (chain) and key, PEM, and optionally the CA for client certs. */
export interface ServingCertificate {
  /** Certificate, optionally followed by intermediates, PEM. */
  certPem: string;
  /** Private key of the certificate, PEM. */
  keyPem: string;
  /** CA bundle that client certificates are verified against (mutual TLS), PEM. */
  caPem?: string;
}

function contextOptions(pair: ServingCertificate): SecureContextOptions {
  return { cert: pair.certPem, key: pair.keyPem, ...(pair.caPem === undefined ? {} : { ca: pair.caPem }) };
}

/**
 * Holds the certificate a TLS server serves and swaps it without a restart: after {@link update}, new
 * connections get the new certificate while established ones keep theirs (a TLS session is bound to the
 * certificate it was made with). For servers whose certificate rotates: admission webhooks, servers
 * behind cert-manager. Pass {@link serverOptions} when creating the server, then {@link attach} it.
 */
export class CertificateHolder {
  #current: ServingCertificate;
  #context: SecureContext;
  readonly #servers = new Set<Server>();

  /** Throws a {@link TlsError} (`CAP_ERR_RUNTIME_TLS_INVALID`) when the pair is unusable. */
  constructor(initial: ServingCertificate) {
    this.#context = checkedContext(initial);
    this.#current = { ...initial };
  }

  /** The certificate served to new connections. */
  get current(): ServingCertificate {
    return { ...this.#current };
  }

  /** The secure context of {@link current}, e.g. for an `SNICallback`. */
  get secureContext(): SecureContext {
    return this.#context;
  }

  /** Options to spread into `tls.createServer` / `https.createServer`: the current certificate and key. */
  serverOptions(): SecureContextOptions {
    return contextOptions(this.#current);
  }

  /**
   * Make `server` follow this holder: it serves the current certificate now and each new one after
   * {@link update}. Returns a function that detaches it (also done when the server closes).
   */
  attach(server: Server): () => void {
    server.setSecureContext(contextOptions(this.#current));
    this.#servers.add(server);
    const detach = () => {
      this.#servers.delete(server);
      server.off('close', detach);
    };
    server.once('close', detach);
    return detach;
  }

  /**
   * Serve `next` to new connections from now on. The pair is checked first: a bad one throws a
   * {@link TlsError} and the current certificate stays, so a broken rotation never takes the server down.
   */
  update(next: ServingCertificate): void {
    const context = checkedContext(next);
    this.#current = { ...next };
    this.#context = context;
    for (const server of this.#servers) server.setSecureContext(contextOptions(next));
  }
}

/** Build the context now, so a key that does not match its certificate fails here and not at a handshake. */
function checkedContext(pair: ServingCertificate): SecureContext {
  try {
    return createSecureContext(contextOptions(pair));
  } catch (err) {
    throw new TlsError(
      TlsErrorCode.invalid,
      `unusable certificate or key: ${err instanceof Error ? err.message : String(err)}`,
      { cause: err },
    );
  }
}
