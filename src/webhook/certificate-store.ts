// Where Capstan keeps a webhook's CA and serving certificate between runs and shares them between replicas:
// a Secret in the webhook's namespace (or memory, for a webhook that runs outside a cluster). Writes carry
// the version they were based on, so two replicas rotating at once cannot both win: the loser re-reads.
import { type KubeClient, KubeError, KubeErrorCode, Secret, watcher } from '../kube/index.ts';
import type { CertPair } from '../runtime/index.ts';
import { WebhookError, WebhookErrorCode } from './errors.ts';

/** What Capstan keeps for a webhook it issues certificates for. */
export interface IssuedCertificates {
  /** The CA that signs serving certificates (and its key). */
  readonly ca: CertPair;
  /** What the webhook serves. */
  readonly serving: CertPair;
  /**
   * Every CA the apiserver must trust, PEM: the signing CA, and during a CA rotation the previous one, so
   * a serving certificate of either verifies (what goes into the configurations' `caBundle`).
   */
  readonly caBundle: string;
  /** When this state was written (ms since the epoch): the steps of a CA rotation wait from it. */
  readonly changedAt: number;
}

/** One read of a {@link CertificateStore}. */
export interface StoredCertificates {
  /** The state, or undefined when nothing usable is stored yet (no Secret, an empty one, a broken one). */
  readonly state: IssuedCertificates | undefined;
  /** Opaque version to pass back to {@link CertificateStore.write}; undefined when nothing exists. */
  readonly version: string | undefined;
  /** Why what is stored was not usable, when it exists but is not (a key missing, not PEM). */
  readonly problem?: string;
}

/** Storage of {@link IssuedCertificates}, with optimistic concurrency. */
export interface CertificateStore {
  /** Where it is, for logs: `secret webhook-system/pod-policy-webhook-tls`, `memory`. */
  readonly description: string;
  read(options?: { signal?: AbortSignal }): Promise<StoredCertificates>;
  /**
   * Store `state` if what is stored is still at `version`; resolves `false` when someone else wrote first
   * (read again and decide again).
   */
  write(
    state: IssuedCertificates,
    version: string | undefined,
    options?: { signal?: AbortSignal },
  ): Promise<boolean>;
  /** Resolves each time the stored state may have changed (another replica wrote); ends with `signal`. */
  changes?(signal: AbortSignal): AsyncIterable<void>;
}

/** A store in this process's memory: for one replica outside a cluster, and tests. */
export function memoryCertificateStore(): CertificateStore {
  let stored: IssuedCertificates | undefined;
  let version = 0;
  return {
    description: 'memory',
    async read() {
      return { state: stored, version: stored ? String(version) : undefined };
    },
    async write(state, expected) {
      if ((stored ? String(version) : undefined) !== expected) return false;
      stored = state;
      version += 1;
      return true;
    },
  };
}

/** Data keys of the Secret (tls.crt/tls.key/ca.crt as cert-manager and `kubernetes.io/tls` name them). */
export const SECRET_KEYS = {
  servingCert: 'tls.crt',
  servingKey: 'tls.key',
  caCert: 'ca.crt',
  caKey: 'ca.key',
  caBundle: 'ca-bundle.crt',
} as const;

/** Annotation holding {@link IssuedCertificates.changedAt} (RFC 3339). */
export const CHANGED_AT_ANNOTATION = 'webhook.capstan.dev/certificates-changed-at';

const decode = (data: Record<string, string> | undefined, key: string) => {
  const value = data?.[key];
  return value === undefined ? undefined : Buffer.from(value, 'base64').toString('utf8');
};
const encode = (text: string) => Buffer.from(text, 'utf8').toString('base64');

/** The state a Secret holds, or why it holds none. */
export function certificatesFromSecret(secret: Secret): { state?: IssuedCertificates; problem?: string } {
  const data = secret.data ?? {};
  const values = Object.fromEntries(Object.values(SECRET_KEYS).map((k) => [k, decode(data, k)]));
  const missing = Object.values(SECRET_KEYS).filter((k) => !values[k]);
  if (missing.length === Object.values(SECRET_KEYS).length) return {};
  if (missing.length > 0) return { problem: `keys missing: ${missing.join(', ')}` };
  const at = Date.parse(secret.metadata?.annotations?.[CHANGED_AT_ANNOTATION] ?? '');
  return {
    state: {
      ca: { certPem: values[SECRET_KEYS.caCert]!, keyPem: values[SECRET_KEYS.caKey]! },
      serving: { certPem: values[SECRET_KEYS.servingCert]!, keyPem: values[SECRET_KEYS.servingKey]! },
      caBundle: values[SECRET_KEYS.caBundle]!,
      // Unknown: as old as can be, so a pending rotation step is not held back by a lost annotation.
      changedAt: Number.isFinite(at) ? at : 0,
    },
  };
}

/**
 * A store in the Secret `name` of `namespace`, read and written through `client`: every replica of the
 * webhook shares it, and a restarted one carries on with the same CA. The Secret may exist empty
 * beforehand (what `capstan webhook manifests` emits, so the webhook needs no right to create Secrets);
 * otherwise it is created. Keys it does not know, labels and annotations are kept.
 */
export function secretCertificateStore(
  client: KubeClient,
  namespace: string,
  name: string,
): CertificateStore {
  const secrets = client.resource(Secret, namespace);
  // The object last read, so a write keeps what others put in it.
  let last: Secret | undefined;
  return {
    description: `secret ${namespace}/${name}`,
    async read(options = {}) {
      const secret = await secrets.getOptional(name, options);
      last = secret;
      if (!secret) return { state: undefined, version: undefined };
      const { state, problem } = certificatesFromSecret(secret);
      return { state, version: secret.metadata?.resourceVersion, ...(problem ? { problem } : {}) };
    },
    async write(state, version, options = {}) {
      const base = last && last.metadata?.resourceVersion === version ? last : undefined;
      const object: Secret = {
        apiVersion: 'v1',
        kind: 'Secret',
        type: base?.type ?? 'Opaque',
        metadata: {
          ...(base?.metadata ?? {}),
          name,
          namespace,
          annotations: {
            ...(base?.metadata?.annotations ?? {}),
            [CHANGED_AT_ANNOTATION]: new Date(state.changedAt).toISOString(),
          },
          ...(version !== undefined ? { resourceVersion: version } : {}),
        },
        data: {
          ...(base?.data ?? {}),
          [SECRET_KEYS.caCert]: encode(state.ca.certPem),
          [SECRET_KEYS.caKey]: encode(state.ca.keyPem),
          [SECRET_KEYS.servingCert]: encode(state.serving.certPem),
          [SECRET_KEYS.servingKey]: encode(state.serving.keyPem),
          [SECRET_KEYS.caBundle]: encode(state.caBundle),
        },
      };
      delete object.metadata?.managedFields;
      try {
        last =
          version === undefined
            ? await secrets.create(object, options)
            : await secrets.replace(object, options);
        return true;
      } catch (err) {
        // 409: changed since it was read (replace) or created meanwhile (create): read again.
        if (err instanceof KubeError && err.code === KubeErrorCode.conflict) return false;
        if (err instanceof KubeError && err.code === KubeErrorCode.forbidden) {
          throw new WebhookError(
            WebhookErrorCode.certificate,
            `cannot write the certificates to secret ${namespace}/${name}: ${err.message}`,
            { cause: err },
          );
        }
        throw err;
      }
    },
    async *changes(signal) {
      for await (const event of watcher(secrets, {
        fieldSelector: `metadata.name=${name}`,
        signal,
      })) {
        if (event.type === 'apply' || event.type === 'delete' || event.type === 'initDone') yield;
      }
    },
  };
}
