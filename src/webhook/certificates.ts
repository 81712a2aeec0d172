// A webhook's serving certificate, from Capstan's own CA: issued at start, renewed at two thirds of its
// life, and the CA itself rotated in three steps so that no admission call fails on the way (Pepr bakes a
// one-year certificate into its artefact and it expires: Pepr 3019). Everything is in a store (a Secret),
// so replicas share one CA and a restart carries on; each replica serves what the store holds, swapped in
// through the runtime's CertificateHolder without a restart.
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { type Clock, systemClock } from '../kube/index.ts';
import {
  type CertAuthority,
  CertificateHolder,
  type CertPair,
  createCertAuthority,
  type Logger,
  loadCertAuthority,
} from '../runtime/index.ts';
import {
  type CertificateStore,
  type IssuedCertificates,
  memoryCertificateStore,
} from './certificate-store.ts';
import { WebhookError, WebhookErrorCode } from './errors.ts';

/** The certificates a webhook server serves, and the CA bundle the apiserver must trust for it. */
export interface WebhookCertificates {
  /** What the server serves: give it to the server (`holder.serverOptions()`, `holder.attach(server)`). */
  readonly holder: CertificateHolder;
  /** The CA bundle (PEM) the webhook configurations' `caBundle` must carry now. */
  readonly caBundle: string;
  /** Call `listener` with each new CA bundle; returns a function that stops it. */
  onCaBundle(listener: (caBundle: string) => void): () => void;
  /** Stop following the store (timers, watch); the holder keeps its last certificate. Idempotent. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Names a serving certificate must be valid for. */
export interface ServingNames {
  /** DNS names: a Service's (see {@link serviceDnsNames}) or a URL's host. */
  readonly dnsNames?: readonly string[];
  /** IP addresses: a URL's host when it is an address (`https://127.0.0.1:9443/...`). */
  readonly ipAddresses?: readonly string[];
}

/**
 * The names the apiserver may check a Service's certificate against: it calls `https://<service>.<ns>.svc`
 * (TLS server name `<service>.<ns>.svc`); the others are what clients inside the cluster may use.
 */
export function serviceDnsNames(service: string, namespace: string): string[] {
  return [
    service,
    `${service}.${namespace}`,
    `${service}.${namespace}.svc`,
    `${service}.${namespace}.svc.cluster.local`,
  ];
}

/** The names of a webhook URL's host: `https://127.0.0.1:9443/validate` → `{ ipAddresses: ['127.0.0.1'] }`. */
export function urlServingNames(url: string): ServingNames {
  let host: string;
  try {
    host = new URL(url).hostname;
  } catch (err) {
    throw new WebhookError(WebhookErrorCode.usage, `not a URL: ${url}`, { cause: err });
  }
  const bare = host.replace(/^\[|\]$/g, '');
  return /^[\d.]+$/.test(bare) || bare.includes(':') ? { ipAddresses: [bare] } : { dnsNames: [bare] };
}

/** Lifetimes and delays of {@link issueWebhookCertificates}. */
export interface CertificateTimings {
  /** Life of the CA, ms. Default 365 days. */
  readonly caValidityMs?: number;
  /** Life of a serving certificate, ms. Default 30 days. */
  readonly servingValidityMs?: number;
  /** Renew a certificate once this fraction of its life has passed. Default 2/3 (cert-manager's default). */
  readonly renewFraction?: number;
  /**
   * How long a new CA bundle is given to reach every apiserver (their informers) and every replica (their
   * watch of the store) before the next step of a CA rotation relies on it, ms. Default 60 000.
   */
  readonly propagationMs?: number;
}

const DAY = 86_400_000;
type Timings = Required<CertificateTimings>;

function resolveTimings(t: CertificateTimings = {}): Timings {
  const timings: Timings = {
    caValidityMs: t.caValidityMs ?? 365 * DAY,
    servingValidityMs: t.servingValidityMs ?? 30 * DAY,
    renewFraction: t.renewFraction ?? 2 / 3,
    propagationMs: t.propagationMs ?? 60_000,
  };
  const problems: string[] = [];
  if (!(timings.renewFraction > 0 && timings.renewFraction < 1)) {
    problems.push(`renewFraction must be between 0 and 1, not ${timings.renewFraction}`);
  }
  for (const key of ['caValidityMs', 'servingValidityMs', 'propagationMs'] as const) {
    if (!Number.isFinite(timings[key]) || timings[key] < 0)
      problems.push(`${key} must be a duration, not ${timings[key]}`);
  }
  if (timings.servingValidityMs > timings.caValidityMs) {
    problems.push('servingValidityMs must not exceed caValidityMs (a certificate cannot outlive its CA)');
  }
  // A CA rotation takes two propagation delays; the old CA must still be valid at the end of it.
  if (timings.caValidityMs * (1 - timings.renewFraction) <= 2 * timings.propagationMs) {
    problems.push('the CA must live well beyond two propagation delays after its renewal point');
  }
  if (problems.length > 0) {
    throw new WebhookError(WebhookErrorCode.usage, `invalid certificate timings: ${problems.join('; ')}`, {
      problems,
    });
  }
  return timings;
}

/** Where a CA rotation is (see {@link nextCertificates}). */
export type RotationPhase =
  /** One CA, which signed the serving certificate. */
  | 'stable'
  /** A new CA is trusted beside the old one; the serving certificate is still the old CA's. */
  | 'ca-introduced'
  /** The serving certificate is the new CA's; the old CA is still trusted until every replica serves it. */
  | 'serving-switched';

/** The PEM blocks of a bundle. */
export function pemCertificates(bundle: string): string[] {
  return bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}

function parse(pem: string): X509Certificate | undefined {
  try {
    return new X509Certificate(pem);
  } catch {
    return undefined;
  }
}

/** Whether `ca` signed `cert`. */
function issuedBy(cert: X509Certificate | undefined, ca: X509Certificate | undefined): boolean {
  return cert !== undefined && ca !== undefined && cert.checkIssued(ca) && cert.verify(ca.publicKey);
}

/** When a certificate is due for renewal: `fraction` of the way from notBefore to notAfter. */
export function renewalTime(cert: X509Certificate, fraction: number): number {
  const from = Date.parse(cert.validFrom);
  const to = Date.parse(cert.validTo);
  return from + (to - from) * fraction;
}

/** The phase of a stored state. */
export function rotationPhase(state: IssuedCertificates): RotationPhase {
  const ca = parse(state.ca.certPem);
  const serving = parse(state.serving.certPem);
  const bundle = pemCertificates(state.caBundle);
  if (bundle.length <= 1) return 'stable';
  return issuedBy(serving, ca) ? 'serving-switched' : 'ca-introduced';
}

/** What {@link nextCertificates} decided. */
export type CertificateStep =
  | { readonly kind: 'write'; readonly state: IssuedCertificates; readonly reason: string }
  | { readonly kind: 'wait'; readonly until: number };

/** How to issue: names, timings, the clock. */
/** What {@link nextCertificates} decides with: the names, the timings (every default filled in), the time. */
export interface IssueContext {
  readonly names: ServingNames;
  readonly timings: Timings;
  readonly now: number;
  readonly commonName: string;
}

function validity(now: number, ms: number) {
  // Back-dated a little for peers whose clocks are behind, never by much of a short life.
  return { notBefore: new Date(now - Math.min(3_600_000, ms / 10)), notAfter: new Date(now + ms) };
}

async function newAuthority(ctx: IssueContext): Promise<CertAuthority> {
  return createCertAuthority(
    `${ctx.commonName}-ca-${new Date(ctx.now).toISOString()}`,
    validity(ctx.now, ctx.timings.caValidityMs),
  );
}

function issueServing(ca: CertAuthority, ctx: IssueContext): Promise<CertPair> {
  const dnsNames = [...(ctx.names.dnsNames ?? [])];
  const ipAddresses = [...(ctx.names.ipAddresses ?? [])];
  return ca.issue({
    commonName: dnsNames.find((n) => n.endsWith('.svc')) ?? dnsNames[0] ?? ipAddresses[0] ?? ctx.commonName,
    dnsNames,
    ipAddresses,
    usage: 'server',
    ...validity(ctx.now, ctx.timings.servingValidityMs),
  });
}

function covers(cert: X509Certificate, names: ServingNames): boolean {
  return (
    (names.dnsNames ?? []).every((n) => cert.checkHost(n, { wildcards: false }) !== undefined) &&
    (names.ipAddresses ?? []).every((ip) => cert.checkIP(ip) !== undefined)
  );
}

function keyMatches(pair: CertPair, cert: X509Certificate): boolean {
  try {
    return cert.checkPrivateKey(createPrivateKey(pair.keyPem));
  } catch {
    return false;
  }
}

/**
 * The next step for `state` at `ctx.now`: what to write, or until when nothing is due. Pure but for the
 * key generation; every decision of the rotation is here, so tests drive years of it with a manual clock.
 *
 * - nothing usable stored, or the CA unusable or expired: a new CA and serving certificate;
 * - `stable`: at the CA's renewal point, a new CA goes into the bundle beside the old one (`ca-introduced`);
 *   else at the serving certificate's renewal point, or when it does not cover the names, a new one from
 *   the CA;
 * - `ca-introduced`, a propagation delay later: a serving certificate of the new CA (`serving-switched`);
 * - `serving-switched`, a propagation delay later: the old CA leaves the bundle (`stable`).
 */
export async function nextCertificates(
  state: IssuedCertificates | undefined,
  ctx: IssueContext,
): Promise<CertificateStep> {
  const { now, timings } = ctx;
  const fresh = async (reason: string): Promise<CertificateStep> => {
    const ca = await newAuthority(ctx);
    return {
      kind: 'write',
      reason,
      state: {
        ca: { certPem: ca.certPem, keyPem: ca.keyPem },
        serving: await issueServing(ca, ctx),
        caBundle: ca.certPem,
        changedAt: now,
      },
    };
  };
  if (!state) return fresh('no certificates yet');
  const caCert = parse(state.ca.certPem);
  let ca: CertAuthority;
  try {
    ca = await loadCertAuthority(state.ca);
  } catch {
    return fresh('the stored CA is unusable');
  }
  if (!caCert || Date.parse(caCert.validTo) <= now) return fresh('the stored CA has expired');
  const bundle = pemCertificates(state.caBundle);
  const caInBundle = bundle.some((pem) => parse(pem)?.fingerprint256 === caCert.fingerprint256);
  if (!caInBundle) {
    // Trust the signing CA too; the rotation steps below then take over from `ca-introduced`.
    return {
      kind: 'write',
      reason: 'the CA bundle lacks the signing CA',
      state: {
        ...state,
        caBundle: `${state.ca.certPem.trim()}\n${state.caBundle.trim()}\n`.trimStart(),
        changedAt: now,
      },
    };
  }
  const serving = parse(state.serving.certPem);
  const servedBySigning = issuedBy(serving, caCert);
  if (bundle.length > 1) {
    const due = state.changedAt + timings.propagationMs;
    if (now < due) return { kind: 'wait', until: due };
    if (!servedBySigning) {
      return {
        kind: 'write',
        reason: 'CA rotation: serving a certificate of the new CA',
        state: { ...state, serving: await issueServing(ca, ctx), changedAt: now },
      };
    }
    return {
      kind: 'write',
      reason: 'CA rotation: the old CA leaves the bundle',
      state: { ...state, caBundle: state.ca.certPem, changedAt: now },
    };
  }
  const caDue = renewalTime(caCert, timings.renewFraction);
  if (now >= caDue) {
    const next = await newAuthority(ctx);
    return {
      kind: 'write',
      reason: 'CA rotation: a new CA is trusted beside the old one',
      state: {
        ...state,
        ca: { certPem: next.certPem, keyPem: next.keyPem },
        caBundle: `${next.certPem.trim()}\n${state.ca.certPem.trim()}\n`,
        changedAt: now,
      },
    };
  }
  const reissue = (reason: string) =>
    issueServing(ca, ctx).then(
      (pair): CertificateStep => ({
        kind: 'write',
        reason,
        state: { ...state, serving: pair, changedAt: now },
      }),
    );
  if (!serving || !keyMatches(state.serving, serving)) return reissue('the serving certificate is unusable');
  if (!servedBySigning) return reissue('the serving certificate is not of the CA');
  if (!covers(serving, ctx.names)) return reissue('the serving certificate does not cover the names');
  const servingDue = renewalTime(serving, timings.renewFraction);
  if (now >= servingDue) return reissue('the serving certificate is due for renewal');
  return { kind: 'wait', until: Math.min(caDue, servingDue) };
}

/** Options of {@link issueWebhookCertificates}. */
export interface IssueWebhookCertificatesOptions {
  /** What the serving certificate must be valid for: {@link serviceDnsNames} or {@link urlServingNames}. */
  names: ServingNames;
  /** Where the state is kept: a {@link secretCertificateStore} in a cluster. Default memory. */
  store?: CertificateStore;
  /** Prefix of the CA's name. Default `capstan-webhook`. */
  commonName?: string;
  timings?: CertificateTimings;
  /** Default the system clock; a `ManualClock` in tests. */
  clock?: Clock;
  logger?: Logger;
  /** Aborting it is {@link WebhookCertificates.close}. */
  signal?: AbortSignal;
}

/** {@link WebhookCertificates} of Capstan's own CA, with the means to rotate by hand. */
export interface IssuedWebhookCertificates extends WebhookCertificates {
  /** The state served now. */
  readonly state: IssuedCertificates;
  /** Where a CA rotation is. */
  readonly phase: RotationPhase;
  /** Issue a new serving certificate now (from the current CA), store it and serve it. */
  renewServing(): Promise<void>;
  /** Start a CA rotation now; its next steps follow by themselves, a propagation delay apart. */
  rotateCa(): Promise<void>;
  /** Resolves when the passes queued now are done (a rotation step due now has been taken). */
  settled(): Promise<void>;
}

const RETRY_MS = 5_000;

class CertificateIssuer implements IssuedWebhookCertificates {
  readonly holder: CertificateHolder;
  readonly #store: CertificateStore;
  readonly #names: ServingNames;
  readonly #timings: Timings;
  readonly #clock: Clock;
  readonly #logger: Logger | undefined;
  readonly #commonName: string;
  readonly #listeners = new Set<(bundle: string) => void>();
  readonly #stop = new AbortController();
  #state: IssuedCertificates;
  #timer: ReturnType<Clock['setTimeout']> | undefined;
  // Passes run one at a time, in order; a kick while one is queued and not started joins it.
  #queue: Promise<void> = Promise.resolve();
  #kickQueued = false;
  #watching: Promise<void> | undefined;

  constructor(
    state: IssuedCertificates,
    options: {
      store: CertificateStore;
      names: ServingNames;
      timings: Timings;
      clock: Clock;
      logger: Logger | undefined;
      commonName: string;
    },
  ) {
    this.#state = state;
    this.holder = new CertificateHolder(state.serving);
    this.#store = options.store;
    this.#names = options.names;
    this.#timings = options.timings;
    this.#clock = options.clock;
    this.#logger = options.logger;
    this.#commonName = options.commonName;
  }

  get state(): IssuedCertificates {
    return this.#state;
  }

  get caBundle(): string {
    return this.#state.caBundle;
  }

  get phase(): RotationPhase {
    return rotationPhase(this.#state);
  }

  onCaBundle(listener: (caBundle: string) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Serve what was read or written: the holder swaps the certificate, listeners get a new bundle. */
  #adopt(state: IssuedCertificates): void {
    const previous = this.#state;
    if (
      state.serving.certPem !== previous.serving.certPem ||
      state.serving.keyPem !== previous.serving.keyPem
    ) {
      try {
        this.holder.update(state.serving);
      } catch (err) {
        // A broken pair in the store: keep serving the last good one; the next pass reissues.
        this.#logger?.error({ err }, 'stored serving certificate unusable; keeping the current one');
        return;
      }
    }
    this.#state = state;
    if (state.caBundle !== previous.caBundle) {
      for (const listener of this.#listeners) {
        try {
          listener(state.caBundle);
        } catch (err) {
          this.#logger?.error({ err }, 'CA bundle listener failed');
        }
      }
    }
  }

  context(): IssueContext {
    return {
      names: this.#names,
      timings: this.#timings,
      now: this.#clock.now(),
      commonName: this.#commonName,
    };
  }

  /** Run one pass after the queued ones: read, decide, write, adopt, schedule. Never rejects. */
  kick(): Promise<void> {
    if (this.#kickQueued) return this.#queue;
    this.#kickQueued = true;
    this.#queue = this.#queue.then(() => {
      this.#kickQueued = false;
      return this.#pass().catch(() => {});
    });
    return this.#queue;
  }

  async #pass(
    force?: (state: IssuedCertificates, ctx: IssueContext) => Promise<IssuedCertificates>,
  ): Promise<void> {
    if (this.#stop.signal.aborted) return;
    const asked = force !== undefined;
    if (this.#timer) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    try {
      for (let attempt = 0; ; attempt++) {
        // Conflicts, or steps that keep writing (a rotation takes three): more than this is a fight or a bug.
        if (attempt > 10) {
          throw new WebhookError(
            WebhookErrorCode.certificate,
            `${this.#store.description}: no stable state after ${attempt} writes or conflicts`,
          );
        }
        const signal = this.#stop.signal;
        const read = await this.#store.read({ signal });
        if (read.problem)
          this.#logger?.warn(
            { store: this.#store.description, problem: read.problem },
            'stored certificates unusable',
          );
        const ctx = this.context();
        let step: CertificateStep;
        if (force && read.state) {
          step = { kind: 'write', reason: 'asked', state: await force(read.state, ctx) };
          force = undefined;
        } else {
          step = await nextCertificates(read.state, ctx);
        }
        if (step.kind === 'wait') {
          if (read.state) this.#adopt(read.state);
          this.#schedule(step.until - this.#clock.now());
          return;
        }
        if (await this.#store.write(step.state, read.version, { signal })) {
          this.#logger?.info(
            { store: this.#store.description, reason: step.reason, phase: rotationPhase(step.state) },
            'webhook certificates written',
          );
          this.#adopt(step.state);
        }
      }
    } catch (err) {
      if (this.#stop.signal.aborted) return;
      this.#logger?.error(
        { err, store: this.#store.description },
        'webhook certificates: pass failed; retrying',
      );
      this.#schedule(RETRY_MS);
      // A rotation asked for by hand says it failed; a timer's pass just retries.
      if (asked) throw err;
    }
  }

  #schedule(ms: number): void {
    if (this.#stop.signal.aborted) return;
    if (this.#timer) this.#clock.clearTimeout(this.#timer);
    this.#timer = this.#clock.setTimeout(
      () => {
        this.#timer = undefined;
        void this.kick();
      },
      Math.max(0, ms),
    );
  }

  /** Follow the store's changes (other replicas' writes). */
  follow(): void {
    const changes = this.#store.changes?.(this.#stop.signal);
    if (!changes) return;
    this.#watching = (async () => {
      try {
        for await (const _ of changes) void this.kick();
      } catch (err) {
        if (!this.#stop.signal.aborted)
          this.#logger?.error(
            { err, store: this.#store.description },
            'watch of the certificates ended; following by timer only',
          );
      }
    })();
  }

  #forced(
    change: (state: IssuedCertificates, ctx: IssueContext) => Promise<IssuedCertificates>,
  ): Promise<void> {
    if (this.#stop.signal.aborted)
      return Promise.reject(new WebhookError(WebhookErrorCode.usage, 'the certificates are closed'));
    const pass = this.#queue.then(() => this.#pass(change));
    this.#queue = pass.catch(() => {});
    return pass;
  }

  renewServing(): Promise<void> {
    return this.#forced(async (state, ctx) => ({
      ...state,
      serving: await issueServing(await loadCertAuthority(state.ca), ctx),
      changedAt: ctx.now,
    }));
  }

  rotateCa(): Promise<void> {
    return this.#forced(async (state, ctx) => {
      const next = await newAuthority(ctx);
      return {
        ...state,
        ca: { certPem: next.certPem, keyPem: next.keyPem },
        caBundle: `${next.certPem.trim()}\n${state.ca.certPem.trim()}\n`,
        changedAt: ctx.now,
      };
    });
  }

  async settled(): Promise<void> {
    await this.#queue;
  }

  async close(): Promise<void> {
    this.#stop.abort();
    if (this.#timer) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#queue;
    await this.#watching;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/**
 * Certificates from Capstan's own CA for a webhook server: read from `store` (a Secret shared by the
 * replicas), created when absent, renewed at {@link CertificateTimings.renewFraction} of their life, and
 * served through a `CertificateHolder` that swaps them without a restart. A CA nearing its end is rotated
 * in three steps a propagation delay apart (see {@link nextCertificates}): the apiserver always trusts the
 * CA of whatever certificate any replica serves. Resolves once a certificate is ready to serve.
 *
 * ```ts
 * const certs = await issueWebhookCertificates({
 *   names: { dnsNames: serviceDnsNames('pod-policy', 'webhooks') },
 *   store: secretCertificateStore(kube, 'webhooks', 'pod-policy-webhook-tls'),
 * });
 * ```
 */
export async function issueWebhookCertificates(
  options: IssueWebhookCertificatesOptions,
): Promise<IssuedWebhookCertificates> {
  const names = {
    dnsNames: [...(options.names.dnsNames ?? [])],
    ipAddresses: [...(options.names.ipAddresses ?? [])],
  };
  if (names.dnsNames.length + names.ipAddresses.length === 0) {
    throw new WebhookError(
      WebhookErrorCode.usage,
      'a serving certificate needs at least one DNS name or IP address',
    );
  }
  const timings = resolveTimings(options.timings);
  const store = options.store ?? memoryCertificateStore();
  const clock = options.clock ?? systemClock;
  const commonName = options.commonName ?? 'capstan-webhook';
  const ctx = { names, timings, commonName };
  // The first state to serve: what is stored, made usable if it is not.
  let initial: IssuedCertificates | undefined;
  for (let attempt = 0; !initial; attempt++) {
    options.signal?.throwIfAborted();
    const read = await store.read(options.signal ? { signal: options.signal } : {});
    const step = await nextCertificates(read.state, { ...ctx, now: clock.now() });
    if (step.kind === 'wait' && read.state) initial = read.state;
    else if (step.kind === 'write') {
      if (await store.write(step.state, read.version, options.signal ? { signal: options.signal } : {})) {
        options.logger?.info(
          { store: store.description, reason: step.reason },
          'webhook certificates written',
        );
        initial = step.state;
      }
    }
    if (!initial && attempt > 10)
      throw new WebhookError(
        WebhookErrorCode.certificate,
        `${store.description}: still conflicting after ${attempt} writes`,
      );
  }
  const issuer = new CertificateIssuer(initial, {
    store,
    names,
    timings,
    clock,
    logger: options.logger,
    commonName,
  });
  options.signal?.addEventListener('abort', () => void issuer.close(), { once: true });
  issuer.follow();
  // Schedules the next renewal (or takes a step already due: a rotation interrupted by a restart).
  await issuer.kick();
  return issuer;
}
