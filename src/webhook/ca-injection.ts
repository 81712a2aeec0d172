// The apiserver trusts a webhook through each webhook's `clientConfig.caBundle`. This keeps it right: the
// bundle is written by server-side apply (this field manager owns the caBundle fields and nothing else), written
// again at each rotation, and put back when anyone changes it (what cert-manager's cainjector does), by a
// watch of each configuration.
import {
  type Clock,
  type KubeClient,
  KubeError,
  KubeErrorCode,
  MutatingWebhookConfiguration,
  type ResourceClient,
  systemClock,
  ValidatingWebhookConfiguration,
  watcher,
} from '../kube/index.ts';
import type { Logger } from '../runtime/index.ts';
import type { WebhookCertificates } from './certificates.ts';
import { WebhookError, WebhookErrorCode } from './errors.ts';

/** A webhook configuration as plain data (what `webhookConfigurations` and `capstan webhook manifests` emit). */
export type WebhookConfiguration = MutatingWebhookConfiguration | ValidatingWebhookConfiguration;

/** Options of {@link injectCaBundle}. */
export interface InjectCaBundleOptions {
  client: KubeClient;
  /** The configurations to keep injected: their kind, name and webhooks' names (and all of it with `apply: 'full'`). */
  configurations: readonly WebhookConfiguration[];
  /** Where the bundle comes from, and its changes. */
  certificates: Pick<WebhookCertificates, 'caBundle' | 'onCaBundle'>;
  /**
   * `caBundle` (default): only each webhook's `clientConfig.caBundle` is written; the configurations are
   * created by the deploy manifests, and the webhook needs no right to create any (a missing one is waited
   * for). `full`: the whole configurations are applied and re-created if deleted (needs `create`): for a
   * webhook that registers itself, e.g. one running outside the cluster at a URL.
   */
  apply?: 'caBundle' | 'full';
  /** Field manager of the writes. Default `capstan-webhook-cainjector`. */
  fieldManager?: string;
  clock?: Clock;
  logger?: Logger;
  /** Aborting it is {@link CaInjector.close}. */
  signal?: AbortSignal;
}

/** What {@link injectCaBundle} runs. */
export interface CaInjector {
  /** Writes done: at start, at rotations and after drift. */
  readonly writes: number;
  /** Writes that put back a bundle someone else changed (or a configuration someone deleted, with `full`). */
  readonly repairs: number;
  /** Resolves when each configuration carries the current bundle (written or seen), or `signal` aborts. */
  injected(options?: { signal?: AbortSignal }): Promise<void>;
  /** Stop watching; what was written stays. Idempotent. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

type Kind = 'MutatingWebhookConfiguration' | 'ValidatingWebhookConfiguration';

interface Target {
  kind: Kind;
  name: string;
  webhooks: string[];
  full: WebhookConfiguration;
  resource: ResourceClient<WebhookConfiguration>;
  /** The bundle (base64) this configuration is known to carry. */
  carries: string | undefined;
  /** A write is due (the bundle changed, drift was seen, or the last write failed). */
  dirty: boolean;
  /** Why it is dirty, for the counters: a repair or a new bundle. */
  repair: boolean;
  failures: number;
}

const b64 = (pem: string) => Buffer.from(pem, 'utf8').toString('base64');

/** Whether every webhook of `target` in `object` carries `bundle`. */
function carries(object: WebhookConfiguration, target: Target, bundle: string): boolean {
  const hooks = object.webhooks ?? [];
  return target.webhooks.every(
    (name) => hooks.find((h) => h.name === name)?.clientConfig?.caBundle === bundle,
  );
}

class Injector implements CaInjector {
  writes = 0;
  repairs = 0;
  readonly #targets: Target[];
  readonly #options: InjectCaBundleOptions;
  readonly #clock: Clock;
  readonly #stop = new AbortController();
  readonly #fieldManager: string;
  readonly #full: boolean;
  readonly #waiters = new Set<() => void>();
  readonly #watches: Array<Promise<void>> = [];
  #bundle: string;
  #queue: Promise<void> = Promise.resolve();
  #queued = false;
  #timer: ReturnType<Clock['setTimeout']> | undefined;
  #unsubscribe: () => void;

  constructor(options: InjectCaBundleOptions) {
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
    this.#fieldManager = options.fieldManager ?? 'capstan-webhook-cainjector';
    this.#full = options.apply === 'full';
    this.#bundle = b64(options.certificates.caBundle);
    this.#targets = options.configurations.map((config) => {
      const kind = config.kind as Kind;
      const type =
        kind === 'MutatingWebhookConfiguration'
          ? MutatingWebhookConfiguration
          : ValidatingWebhookConfiguration;
      const name = config.metadata?.name ?? '';
      return {
        kind,
        name,
        webhooks: (config.webhooks ?? []).map((w) => w.name),
        full: config,
        resource: options.client.resource(
          type as typeof MutatingWebhookConfiguration,
        ) as ResourceClient<WebhookConfiguration>,
        carries: undefined,
        dirty: true,
        repair: false,
        failures: 0,
      };
    });
    this.#unsubscribe = options.certificates.onCaBundle((bundle) => {
      this.#bundle = b64(bundle);
      for (const t of this.#targets) t.dirty = true;
      this.kick();
    });
  }

  /** Write what is dirty, after the queued passes; one queued pass at a time. */
  kick(): void {
    if (this.#queued || this.#stop.signal.aborted) return;
    this.#queued = true;
    this.#queue = this.#queue.then(async () => {
      this.#queued = false;
      await this.#pass();
    });
  }

  async #pass(): Promise<void> {
    const signal = this.#stop.signal;
    let retryMs: number | undefined;
    for (const target of this.#targets) {
      if (signal.aborted) return;
      if (!target.dirty) continue;
      const bundle = this.#bundle;
      try {
        const result = await this.#write(target, bundle, signal);
        if (result !== 'absent') target.carries = bundle;
        if (result === 'written') {
          this.writes += 1;
          if (target.repair) this.repairs += 1;
          this.#options.logger?.info(
            { kind: target.kind, name: target.name, repair: target.repair },
            'CA bundle injected',
          );
        }
        target.dirty = bundle !== this.#bundle;
        target.repair = false;
        target.failures = 0;
      } catch (err) {
        if (signal.aborted) return;
        target.failures += 1;
        // 1 s doubling to 60 s: a forbidden or rejected write will not heal by itself quickly.
        const delay = Math.min(60_000, 1_000 * 2 ** Math.min(target.failures - 1, 6));
        retryMs = Math.min(retryMs ?? delay, delay);
        this.#options.logger?.error(
          { err, kind: target.kind, name: target.name, retryInMs: delay },
          'CA bundle injection failed',
        );
      }
    }
    if (retryMs !== undefined) {
      if (this.#timer) this.#clock.clearTimeout(this.#timer);
      this.#timer = this.#clock.setTimeout(() => {
        this.#timer = undefined;
        this.kick();
      }, retryMs);
    }
    this.#notify();
  }

  /** Apply the bundle: written, already there, or nothing to write to (a configuration not created yet). */
  async #write(
    target: Target,
    bundle: string,
    signal: AbortSignal,
  ): Promise<'written' | 'carries' | 'absent'> {
    const withBundle = (hook: { name: string; clientConfig?: object }) => ({
      ...hook,
      clientConfig: { ...(hook.clientConfig ?? {}), caBundle: bundle },
    });
    if (this.#full) {
      const object = {
        ...target.full,
        apiVersion: 'admissionregistration.k8s.io/v1',
        kind: target.kind,
        webhooks: (target.full.webhooks ?? []).map(withBundle),
      } as WebhookConfiguration;
      await target.resource.apply(object, { fieldManager: this.#fieldManager, force: true, signal });
      return 'written';
    }
    const current = await target.resource.getOptional(target.name, { signal });
    if (!current) {
      target.carries = undefined;
      return 'absent';
    }
    const missing = target.webhooks.filter((n) => !(current.webhooks ?? []).some((h) => h.name === n));
    if (missing.length > 0) {
      throw new WebhookError(
        WebhookErrorCode.configuration,
        `${target.kind} ${target.name} has no webhook ${missing.join(', ')}: deploy the manifests of this webhook`,
      );
    }
    if (carries(current, target, bundle)) return 'carries';
    // Only the names (the list's key) and the caBundle: every other field stays with whoever wrote it.
    const patch = {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: target.kind,
      metadata: { name: target.name },
      webhooks: target.webhooks.map((name) => ({ name, clientConfig: { caBundle: bundle } })),
    } as WebhookConfiguration;
    try {
      await target.resource.apply(patch, { fieldManager: this.#fieldManager, force: true, signal });
    } catch (err) {
      // Deleted between the read and the write: the apply was refused as a create of an incomplete object.
      if (
        err instanceof KubeError &&
        (err.code === KubeErrorCode.notFound || err.code === KubeErrorCode.invalid)
      ) {
        const again = await target.resource.getOptional(target.name, { signal });
        if (!again) return 'absent';
      }
      throw err;
    }
    return 'written';
  }

  /** Watch each configuration: drift (or a deletion, or a late creation) makes it dirty. */
  watch(): void {
    for (const target of this.#targets) {
      this.#watches.push(
        (async () => {
          try {
            for await (const event of watcher(target.resource, {
              fieldSelector: `metadata.name=${target.name}`,
              signal: this.#stop.signal,
            })) {
              if (event.type === 'apply' || event.type === 'initApply') {
                const ok = carries(event.object, target, this.#bundle);
                target.carries = ok ? this.#bundle : undefined;
                if (!ok && !target.dirty) {
                  this.#options.logger?.warn(
                    { kind: target.kind, name: target.name },
                    'CA bundle changed by someone else; putting it back',
                  );
                  target.dirty = true;
                  target.repair = true;
                  this.kick();
                } else if (ok) this.#notify();
              } else if (event.type === 'delete') {
                target.carries = undefined;
                if (this.#full) {
                  this.#options.logger?.warn(
                    { kind: target.kind, name: target.name },
                    'configuration deleted; applying it again',
                  );
                  target.dirty = true;
                  target.repair = true;
                  this.kick();
                }
              } else if (event.type === 'initDone' && target.carries === undefined && !target.dirty) {
                // Listed and absent (or drifted while not watching).
                target.dirty = true;
                this.kick();
              }
            }
          } catch (err) {
            if (!this.#stop.signal.aborted) {
              this.#options.logger?.error(
                { err, kind: target.kind, name: target.name },
                'watch of the configuration ended: drift is no longer repaired',
              );
            }
          }
        })(),
      );
    }
  }

  #notify(): void {
    if (!this.#done()) return;
    for (const resolve of this.#waiters) resolve();
    this.#waiters.clear();
  }

  #done(): boolean {
    return this.#targets.every((t) => t.carries === this.#bundle && !t.dirty);
  }

  injected(options: { signal?: AbortSignal } = {}): Promise<void> {
    if (this.#done()) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const signals = [this.#stop.signal, ...(options.signal ? [options.signal] : [])];
      const signal = AbortSignal.any(signals);
      const done = () => {
        signal.removeEventListener('abort', aborted);
        resolve();
      };
      const aborted = () => {
        this.#waiters.delete(done);
        reject(signal.reason);
      };
      signal.addEventListener('abort', aborted, { once: true });
      this.#waiters.add(done);
    });
  }

  async close(): Promise<void> {
    this.#stop.abort();
    this.#unsubscribe();
    if (this.#timer) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#queue.catch(() => {});
    await Promise.all(this.#watches);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/**
 * Keep the CA bundle of `certificates` in every webhook of `configurations`: write it now, again at each
 * rotation, and put it back when someone changes it. Returns at once; {@link CaInjector.injected} resolves
 * when every configuration carries it.
 *
 * ```ts
 * const injector = injectCaBundle({ client: kube, configurations, certificates: certs });
 * await injector.injected({ signal: AbortSignal.timeout(30_000) });
 * ```
 */
export function injectCaBundle(options: InjectCaBundleOptions): CaInjector {
  const problems: string[] = [];
  for (const c of options.configurations) {
    if (c.kind !== 'MutatingWebhookConfiguration' && c.kind !== 'ValidatingWebhookConfiguration') {
      problems.push(`not a webhook configuration: kind ${String(c.kind)}`);
    } else if (!c.metadata?.name) problems.push(`a ${c.kind} without a name`);
    else if (!c.webhooks?.length) problems.push(`${c.kind} ${c.metadata.name} has no webhooks`);
  }
  if (problems.length > 0) {
    throw new WebhookError(WebhookErrorCode.usage, `cannot inject: ${problems.join('; ')}`, { problems });
  }
  const injector = new Injector(options);
  options.signal?.addEventListener('abort', () => void injector.close(), { once: true });
  injector.watch();
  injector.kick();
  return injector;
}
