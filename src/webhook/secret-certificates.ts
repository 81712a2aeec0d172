// A webhook's certificates from a Secret someone else issues: cert-manager's `Certificate` writes tls.crt,
// tls.key and ca.crt and renews them before expiry. The Secret is watched: a renewal by the same CA is
// served at once; a renewal by a new CA is served only after the new CA has been in the bundle for a
// propagation delay, so the apiserver never meets a certificate it does not trust yet.
import { X509Certificate } from 'node:crypto';
import { type Clock, type KubeClient, Secret, systemClock, watcher } from '../kube/index.ts';
import { CertificateHolder, type Logger, type ServingCertificate } from '../runtime/index.ts';
import { pemCertificates, type WebhookCertificates } from './certificates.ts';
import { WebhookError, WebhookErrorCode } from './errors.ts';

/** Options of {@link followCertificateSecret}. */
export interface FollowCertificateSecretOptions {
  client: KubeClient;
  namespace: string;
  /** The Secret: cert-manager's `Certificate.spec.secretName`. */
  name: string;
  /** How long a new CA is trusted before a certificate of it is served, and the old one after. Default 60 000 ms. */
  propagationMs?: number;
  /** How long to wait for a usable Secret at start (cert-manager may not have issued yet). Default 300 000 ms. */
  readyTimeoutMs?: number;
  clock?: Clock;
  logger?: Logger;
  /** Aborting it is {@link WebhookCertificates.close}. */
  signal?: AbortSignal;
}

/** What a Secret holds, checked: a pair that matches and the CA bundle that verifies it. */
interface SecretContent {
  serving: ServingCertificate;
  /** ca.crt: every CA certificate in it. */
  cas: string[];
}

const decode = (value: string | undefined) =>
  value === undefined ? undefined : Buffer.from(value, 'base64').toString('utf8');

/** The Secret's pair and CA, or why they cannot be served. */
export function readCertificateSecret(secret: Secret): SecretContent | { problem: string } {
  const cert = decode(secret.data?.['tls.crt']);
  const key = decode(secret.data?.['tls.key']);
  const ca = decode(secret.data?.['ca.crt']);
  const missing = [!cert && 'tls.crt', !key && 'tls.key', !ca && 'ca.crt'].filter(Boolean);
  if (missing.length > 0) return { problem: `keys missing or empty: ${missing.join(', ')}` };
  const cas = pemCertificates(ca!);
  if (cas.length === 0) return { problem: 'ca.crt holds no PEM certificate' };
  try {
    // Checks that the key is the certificate's (throws otherwise).
    new CertificateHolder({ certPem: cert!, keyPem: key! });
  } catch (err) {
    return { problem: (err as Error).message };
  }
  return { serving: { certPem: cert!, keyPem: key! }, cas };
}

/** Whether the leaf of `certPem` was signed by one of `cas`. */
function signedByOneOf(certPem: string, cas: readonly string[]): boolean {
  const cert = new X509Certificate(certPem);
  return cas.some((pem) => {
    try {
      const ca = new X509Certificate(pem);
      return cert.checkIssued(ca) && cert.verify(ca.publicKey);
    } catch {
      return false;
    }
  });
}

const bundleOf = (cas: readonly string[]) => `${[...new Set(cas.map((c) => c.trim()))].join('\n')}\n`;

class SecretFollower implements WebhookCertificates {
  readonly holder: CertificateHolder;
  readonly #listeners = new Set<(bundle: string) => void>();
  readonly #stop = new AbortController();
  readonly #clock: Clock;
  readonly #propagationMs: number;
  readonly #logger: Logger | undefined;
  readonly #where: string;
  #cas: string[];
  #timer: ReturnType<Clock['setTimeout']> | undefined;
  #watching: Promise<void> | undefined;

  constructor(
    first: SecretContent,
    options: { clock: Clock; propagationMs: number; logger: Logger | undefined; where: string },
  ) {
    this.holder = new CertificateHolder(first.serving);
    this.#cas = first.cas;
    this.#clock = options.clock;
    this.#propagationMs = options.propagationMs;
    this.#logger = options.logger;
    this.#where = options.where;
  }

  get caBundle(): string {
    return bundleOf(this.#cas);
  }

  onCaBundle(listener: (caBundle: string) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #setCas(cas: string[]): void {
    const before = this.caBundle;
    this.#cas = cas;
    if (this.caBundle === before) return;
    for (const listener of this.#listeners) {
      try {
        listener(this.caBundle);
      } catch (err) {
        this.#logger?.error({ err }, 'CA bundle listener failed');
      }
    }
  }

  #later(ms: number, fn: () => void): void {
    if (this.#timer) this.#clock.clearTimeout(this.#timer);
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = undefined;
      if (!this.#stop.signal.aborted) fn();
    }, ms);
  }

  /** The end of a change: the Secret's CAs, and any other still signing the served certificate (never dropped). */
  #settle(cas: string[]): void {
    const served = this.holder.current.certPem;
    this.#setCas([...cas, ...this.#cas.filter((ca) => !cas.includes(ca) && signedByOneOf(served, [ca]))]);
  }

  /** A new content of the Secret: serve it now if the apiserver trusts it already, else in two steps. */
  take(next: SecretContent): void {
    if (next.serving.certPem === this.holder.current.certPem && bundleOf(next.cas) === this.caBundle) return;
    if (signedByOneOf(next.serving.certPem, this.#cas)) {
      this.holder.update(next.serving);
      this.#logger?.info({ secret: this.#where }, 'serving the renewed certificate');
      // The Secret's CA may still have changed (a new ca.crt beside a leaf of the old): trust both, then the
      // new one and whichever still signs what is served.
      if (bundleOf(next.cas) !== this.caBundle) {
        this.#setCas([...next.cas, ...this.#cas]);
        this.#later(this.#propagationMs, () => this.#settle(next.cas));
      }
      return;
    }
    // A new CA: trust it beside the current ones, serve its certificate a propagation delay later, then drop
    // the CAs that no longer sign what is served a propagation delay after that.
    this.#setCas([...next.cas, ...this.#cas]);
    this.#logger?.info(
      { secret: this.#where, propagationMs: this.#propagationMs },
      'new CA trusted; serving its certificate after the propagation delay',
    );
    this.#later(this.#propagationMs, () => {
      try {
        this.holder.update(next.serving);
      } catch (err) {
        this.#logger?.error(
          { err, secret: this.#where },
          'renewed certificate unusable; keeping the current one',
        );
        return;
      }
      this.#logger?.info({ secret: this.#where }, 'serving the certificate of the new CA');
      this.#later(this.#propagationMs, () => this.#settle(next.cas));
    });
  }

  follow(events: AsyncIterable<Secret | undefined>): void {
    this.#watching = (async () => {
      try {
        for await (const secret of events) {
          if (!secret) {
            this.#logger?.warn(
              { secret: this.#where },
              'certificate secret deleted; serving the last certificate',
            );
            continue;
          }
          const content = readCertificateSecret(secret);
          if ('problem' in content) {
            this.#logger?.warn(
              { secret: this.#where, problem: content.problem },
              'certificate secret unusable; serving the last certificate',
            );
            continue;
          }
          this.take(content);
        }
      } catch (err) {
        if (!this.#stop.signal.aborted)
          this.#logger?.error({ err, secret: this.#where }, 'watch of the certificate secret ended');
      }
    })();
  }

  get signal(): AbortSignal {
    return this.#stop.signal;
  }

  async close(): Promise<void> {
    this.#stop.abort();
    if (this.#timer) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#watching;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/**
 * Serve the certificate of a Secret that cert-manager (or anyone) keeps: `tls.crt` and `tls.key`, with
 * `ca.crt` as the CA bundle to inject. Waits for a usable Secret at start, then follows it: a renewal is
 * swapped in without a restart, and a new CA is trusted a propagation delay before its certificate is
 * served. Nothing is written to the Secret.
 */
export async function followCertificateSecret(
  options: FollowCertificateSecretOptions,
): Promise<WebhookCertificates> {
  const where = `${options.namespace}/${options.name}`;
  const stop = new AbortController();
  const signal = AbortSignal.any([stop.signal, ...(options.signal ? [options.signal] : [])]);
  const events = watcher(options.client.resource(Secret, options.namespace), {
    fieldSelector: `metadata.name=${options.name}`,
    signal,
  });
  // One iterator for the wait and the follow-up: the watch is not opened twice.
  const iterator = events[Symbol.asyncIterator]();
  let lastProblem = 'no such secret';
  let first: SecretContent | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => {
    const timer = setTimeout(() => resolve('timeout'), options.readyTimeoutMs ?? 300_000);
    signal.addEventListener('abort', () => clearTimeout(timer), { once: true });
    timer.unref();
  });
  while (!first) {
    const next = await Promise.race([iterator.next(), timedOut]);
    if (next === 'timeout' || next.done) break;
    const event = next.value;
    if (event.type !== 'apply' && event.type !== 'initApply') continue;
    const content = readCertificateSecret(event.object);
    if ('problem' in content) lastProblem = content.problem;
    else first = content;
  }
  if (!first) {
    stop.abort();
    options.signal?.throwIfAborted();
    throw new WebhookError(
      WebhookErrorCode.certificate,
      `secret ${where} has no usable certificate: ${lastProblem}`,
    );
  }
  const follower = new SecretFollower(first, {
    clock: options.clock ?? systemClock,
    propagationMs: options.propagationMs ?? 60_000,
    logger: options.logger,
    where,
  });
  follower.signal.addEventListener('abort', () => stop.abort(), { once: true });
  options.signal?.addEventListener('abort', () => void follower.close(), { once: true });
  follower.follow(
    (async function* () {
      for (;;) {
        const next = await iterator.next();
        if (next.done) return;
        if (next.value.type === 'apply') yield next.value.object;
        else if (next.value.type === 'delete') yield undefined;
        else if (next.value.type === 'initApply') yield next.value.object;
      }
    })(),
  );
  return follower;
}
