import { generateKeyPair } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import type { KubeConfig } from '@kubernetes/client-node';
import { parseAllDocuments, stringify } from 'yaml';
import {
  CustomResourceDefinition,
  KubeClient,
  type KubeClientConfig,
  KubeError,
  KubeErrorCode,
  MutatingWebhookConfiguration,
  ValidatingWebhookConfiguration,
} from '../kube/index.ts';
import {
  type CertAuthority,
  type CertPair,
  createCertAuthority,
  createHttpTransport,
  fetchOnce,
  freePort,
  httpRequest,
  onExitAfterProcesses,
} from '../runtime/index.ts';
import { PeerError, type PeerErrorCode } from './errors.ts';
import { type KubeAssets, resolveKubeAssets } from './kube-assets.ts';
import {
  CLUSTER_NETWORK,
  type KubeNode,
  type NodeOptions,
  type NodeReservation,
  reserveNode,
  startNode,
} from './node.ts';
import { type PeerProcess, startPeerProcess } from './process.ts';

/** A Kubernetes object as plain JSON (a CRD, a webhook configuration...). */
export type KubeObject = { apiVersion?: string; kind?: string; metadata?: { name?: string } } & Record<
  string,
  unknown
>;

/** Webhook configurations to install, pointed at a local webhook server the test runs itself. */
export interface ControlPlaneWebhookOptions {
  /**
   * MutatingWebhookConfiguration / ValidatingWebhookConfiguration objects (or YAML). Each webhook's
   * `clientConfig` is rewritten to `https://<host>:<port><path>` (path from `clientConfig.service.path`
   * or `clientConfig.url`) with the generated CA as `caBundle`, as envtest does.
   */
  configurations: Array<KubeObject | string>;
  /** Host the webhook server listens on; default 127.0.0.1. */
  host?: string;
  /** Port the webhook server listens on; default a free port. */
  port?: number;
}

/** Options of {@link startControlPlane}. */
export interface ControlPlaneOptions {
  /** CustomResourceDefinitions to install (objects or YAML, multi-document allowed); waited until Established. */
  crds?: Array<KubeObject | string>;
  /** Webhook configurations to install, with a serving certificate generated for the local webhook server. */
  webhooks?: ControlPlaneWebhookOptions;
  /** Also run kube-controller-manager (Deployments get ReplicaSets, namespaces get deleted...). Default false. */
  controllerManager?: boolean;
  /**
   * Folder holding `etcd` and `kube-apiserver` (and `kube-controller-manager`). Default:
   * `$CAPSTAN_KUBE_ASSETS`, then `$KUBEBUILDER_ASSETS`, then the `kube` peer (built on first use).
   */
  assetsDir?: string;
  /** Root folder for certificates, etcd data and logs; default a fresh temp dir. Removed by `stop()`. */
  dir?: string;
  /** How long each program may take to become ready. Default 120 s (the machine may be busy). */
  readyTimeoutMs?: number;
  /** Extra kube-apiserver flags (`--flag=value`), appended last so they override the defaults. */
  apiServerFlags?: string[];
  /**
   * Extra kube-controller-manager flags, appended last so they override the defaults (which include an HPA
   * sync period of 5 s and a downscale stabilization of 30 s: see {@link HPA_FLAGS}).
   */
  controllerManagerFlags?: string[];
  /**
   * Serve etcd over TLS with client-certificate authentication, as kubeadm does: client and peer URLs on
   * https, certificates from a CA of etcd's own (so no Kubernetes client certificate opens etcd), and the
   * apiserver presenting `apiserver-etcd-client`. Without it etcd speaks plain HTTP with no authentication on
   * loopback, where any local user can rewrite the cluster behind RBAC's back: fine for a test's throwaway
   * cluster, not for one that stays up. `capstan dev cluster` turns it on. Default false.
   */
  etcdTls?: boolean;
  /**
   * Also run a node, so pods actually run: a private containerd, a CNI bridge, kube-scheduler and a kubelet
   * (implies `controllerManager`). Root only, one per machine (a lock); see docs/testing.md. Default false.
   */
  node?: boolean | NodeOptions;
  /** Progress lines (building assets, starting each program). */
  log?: (line: string) => void;
  /** Aborting stops whatever has started; it takes effect between start-up steps. */
  signal?: AbortSignal;
}

/** What a webhook server needs to be trusted by the apiserver. */
export interface ControlPlaneWebhookServer {
  host: string;
  port: number;
  /** Serving certificate (PEM) for `host`, signed by `caPem`. */
  certPem: string;
  keyPem: string;
  /** The CA the apiserver trusts for webhook calls (already in every `caBundle`). */
  caPem: string;
  /** Folder holding `tls.crt` and `tls.key` (the controller-runtime layout). */
  certDir: string;
}

/** A running etcd + kube-apiserver (+ kube-controller-manager). */
export interface ControlPlane {
  /**
   * Apiserver URL, e.g. `https://127.0.0.1:40123`; with a node `https://10.244.0.1:40123` (the bridge
   * address, which pods reach too: it is the `kubernetes` Service's endpoint).
   */
  readonly server: string;
  /** A kubeconfig file (credentials embedded) for the `system:masters` admin user. */
  readonly kubeconfigPath: string;
  /** The same kubeconfig, loaded into @kubernetes/client-node. */
  readonly kubeConfig: KubeConfig;
  /** The cluster CA (PEM): it signs the apiserver serving certificate and the admin client certificate. */
  readonly caPem: string;
  /** Set when `webhooks` were given. */
  readonly webhook: ControlPlaneWebhookServer | undefined;
  /**
   * The aggregation layer's front proxy: the CA that signed the client certificate the apiserver presents to
   * aggregated API servers (APIServices), and the certificate's allowed name. An aggregated server reads the
   * same from the `kube-system/extension-apiserver-authentication` ConfigMap.
   */
  readonly frontProxy: { readonly caPem: string; readonly allowedNames: readonly string[] };
  /** Root folder (certificates, data, logs); removed on stop. */
  readonly dir: string;
  /** The programs, for their pids and log files. */
  readonly processes: readonly PeerProcess[];
  /** Where the binaries came from. */
  readonly assets: KubeAssets;
  /** The node, with `node`: pods scheduled here run. */
  readonly node: KubeNode | undefined;
  /** etcd's client URL (`https://` with `etcdTls`) and, with `etcdTls`, the CA its serving certificate chains to. */
  readonly etcd: { readonly url: string; readonly caPem: string | undefined };
  /** A capstan/kube client as the admin (closed by `stop()`). */
  readonly client: KubeClient;
  /** The admin's connection settings, for more clients (`new KubeClient({ ...cp.clientConfig, server })`). */
  readonly clientConfig: KubeClientConfig;
  /** GET/POST... a raw apiserver path as the admin (for probes and tests), through {@link client}. */
  request(path: string, init?: RawRequestInit): Promise<{ status: number; body: string }>;
  /** Install more CRDs (objects or YAML) and wait until they are Established and served. */
  installCrds(crds: Array<KubeObject | string>, options?: { timeoutMs?: number }): Promise<void>;
  /**
   * Stop kube-apiserver (SIGTERM, as an upgrade or a crash-restart does), run `whileDown` if given, and start
   * it again with the same flags and certificates; resolves once it is ready. etcd keeps the data, so
   * clients see a restart: connections and watches break, resourceVersions carry on. `processes` then holds
   * the new process.
   */
  restartApiServer(options?: { whileDown?: () => Promise<void> }): Promise<void>;
  /** Stop every program (last started first) and remove the folder. Idempotent. */
  stop(): Promise<void>;
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

const generateKeyPairAsync = promisify(generateKeyPair);

/** The front-proxy client certificate's CN, the one name `--requestheader-allowed-names` allows. */
const FRONT_PROXY_CLIENT = 'front-proxy-client';

/**
 * The HorizontalPodAutoscaler controller's timing on local clusters: a sync every 5 s (default 15 s) and a
 * scale-down stabilization window of 30 s (default 5 min), so a test or a dev loop sees an HPA act in
 * seconds. An HPA's own `behavior.scaleDown.stabilizationWindowSeconds` still wins over the window.
 */
const HPA_FLAGS: readonly string[] = [
  '--horizontal-pod-autoscaler-sync-period=5s',
  '--horizontal-pod-autoscaler-downscale-stabilization=30s',
];

/** A raw apiserver request: method, JSON body and extra headers (e.g. `Impersonate-User`). */
export interface RawRequestInit {
  method?: string;
  body?: unknown;
  headers?: Record<string, string>;
}

interface TlsClient {
  ca: string;
  cert?: string;
  key?: string;
  rejectUnauthorized?: boolean;
}

/** One exchange on a fresh connection (as `agent: false` did): nothing pooled outlives the call. */
async function httpsRequest(
  url: string,
  tls: TlsClient,
  init: RawRequestInit & { timeoutMs?: number } = {},
): Promise<{ status: number; body: string }> {
  const target = new URL(url);
  const http = createHttpTransport({
    origin: target.origin,
    tls: {
      ...(tls.ca ? { ca: tls.ca } : {}),
      ...(tls.cert ? { cert: tls.cert, key: tls.key } : {}),
      rejectUnauthorized: tls.rejectUnauthorized ?? true,
    },
    retry: false,
  });
  try {
    const res = await httpRequest(http, {
      method: init.method ?? 'GET',
      path: `${target.pathname}${target.search}`,
      ...(init.headers ? { headers: init.headers } : {}),
      ...(init.body !== undefined ? { json: init.body } : {}),
      timeouts: { deadlineMs: init.timeoutMs ?? 10_000 },
    });
    return { status: res.status, body: await res.body.text() };
  } finally {
    await http.destroy();
  }
}

async function httpGetOk(url: string): Promise<boolean> {
  try {
    const res = await fetchOnce(url);
    return res.status >= 200 && res.status < 300 && res.body.includes('true');
  } catch {
    return false;
  }
}

/** etcd's `/health` over TLS, presenting `client`: true when it answers 200 with `"health":"true"`. */
async function httpsHealthOk(url: string, client: TlsClient): Promise<boolean> {
  try {
    const res = await httpsRequest(url, client, { timeoutMs: 5_000 });
    return res.status >= 200 && res.status < 300 && res.body.includes('true');
  } catch {
    return false;
  }
}

/**
 * Raw apiserver requests (like {@link ControlPlane.request}) as a kubeconfig's current user, authenticated
 * by its embedded client certificate: for a cluster another process runs (the test run's shared cluster).
 */
export function kubeconfigRequest(kubeConfig: KubeConfig): ControlPlane['request'] {
  const cluster = kubeConfig.getCurrentCluster();
  const user = kubeConfig.getCurrentUser();
  if (!cluster?.caData || !user?.certData || !user.keyData) {
    throw new PeerError(
      'CAP_ERR_PEER_CONFIG',
      'the kubeconfig has no embedded CA and client certificate (certificate-authority-data, client-*-data)',
    );
  }
  const decode = (b64: string) => Buffer.from(b64, 'base64').toString('utf8');
  const tls = { ca: decode(cluster.caData), cert: decode(user.certData), key: decode(user.keyData) };
  return (path, init = {}) => httpsRequest(`${cluster.server}${path}`, tls, init);
}

/** Parse objects or YAML strings (multi-document) into plain objects, skipping empty documents. */
export function toKubeObjects(items: Array<KubeObject | string>): KubeObject[] {
  const out: KubeObject[] = [];
  for (const item of items) {
    if (typeof item !== 'string') {
      out.push(item);
      continue;
    }
    for (const doc of parseAllDocuments(item)) {
      if (doc.errors.length > 0) {
        throw new PeerError('CAP_ERR_PEER_MANIFEST', `invalid YAML manifest: ${doc.errors[0]?.message}`);
      }
      const value = doc.toJS();
      if (value && typeof value === 'object') out.push(value as KubeObject);
    }
  }
  return out;
}

function kubeconfigYaml(server: string, caPem: string, admin: CertPair): string {
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'capstan', cluster: { server, 'certificate-authority-data': b64(caPem) } }],
    users: [
      {
        name: 'capstan-admin',
        user: { 'client-certificate-data': b64(admin.certPem), 'client-key-data': b64(admin.keyPem) },
      },
    ],
    contexts: [
      { name: 'capstan', context: { cluster: 'capstan', user: 'capstan-admin', namespace: 'default' } },
    ],
    'current-context': 'capstan',
  });
}

function checkAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) {
    throw new PeerError('CAP_ERR_PEER_ABORTED', 'control-plane start-up aborted', '', {
      cause: signal.reason,
    });
  }
}

/**
 * Start a real local Kubernetes control plane: etcd and kube-apiserver (and kube-controller-manager when
 * asked) on free loopback ports, with a fresh CA, serving and client certificates, and service-account
 * keys. Resolves once `/readyz` answers ok and the given CRDs are Established and served. Authorization
 * is RBAC; the kubeconfig's user is in `system:masters`, so it may do anything, while tests can still
 * exercise RBAC with impersonation or other users.
 *
 * `stop()` (also run on process exit) leaves no process and no folder behind.
 */
export async function startControlPlane(options: ControlPlaneOptions = {}): Promise<ControlPlane> {
  // Ports are picked free, then bound by another process a moment later: on a busy machine someone
  // can take one in between. That failure is ours, not the caller's, so retry it with fresh ports.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(options);
    } catch (err) {
      const portTaken =
        err instanceof PeerError &&
        err.code === 'CAP_ERR_PEER_EXITED' &&
        /address already in use/i.test(err.logTail);
      if (!portTaken || attempt >= 3) throw err;
      options.log?.(`a port was taken meanwhile; retrying (attempt ${attempt + 1})`);
    }
  }
}

async function startOnce(options: ControlPlaneOptions): Promise<ControlPlane> {
  const log = options.log ?? (() => {});
  const signal = options.signal;
  checkAborted(signal);
  // Parse manifests first: a typo should not cost a control-plane start.
  const crds = toKubeObjects(options.crds ?? []);
  const webhookConfigs = toKubeObjects(options.webhooks?.configurations ?? []);
  const withNode = options.node !== undefined && options.node !== false;
  const assets = resolveKubeAssets({
    controllerManager: (options.controllerManager ?? false) || withNode,
    log,
    ...(options.assetsDir !== undefined ? { assetsDir: options.assetsDir } : {}),
  });
  const run = openRun(options.dir);
  const { root, processes } = run;
  const nodeOptions = typeof options.node === 'object' ? options.node : {};
  let reservation: NodeReservation | undefined;
  let node: KubeNode | undefined;
  let client: KubeClient | undefined;
  // The node first: its pods and mounts go before the programs it talks to; the client after, as the
  // node's teardown may still call the apiserver. The reservation last (a no-op after the node's stop): it
  // also covers a start that failed before the node's programs ran.
  const stop = async () => {
    await node?.stop();
    await run.stop();
    await client?.destroy();
    reservation?.release();
  };

  try {
    const readyTimeoutMs = options.readyTimeoutMs ?? 120_000;
    if (withNode) {
      // Before the apiserver: it listens on the node's bridge, so that pods reach it (the `kubernetes`
      // Service), and the bridge exists only under the machine's node lock.
      reservation = await reserveNode({ ...nodeOptions, log });
    }
    const pki = await createPki(root, options.webhooks, options.etcdTls ?? false, reservation?.ip);
    // No transparent retries: the readiness probe polls by itself, and a test's raw request sees each answer.
    client = new KubeClient(pki.admin, { http: { retry: false } });
    const admin = client;
    await startPrograms(run, assets, pki, admin, {
      ...options,
      controllerManager: (options.controllerManager ?? false) || withNode,
      readyTimeoutMs,
      log,
    });

    const { KubeConfig } = await import('@kubernetes/client-node');
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromFile(pki.kubeconfigPath);
    const rawRequest: ControlPlane['request'] = async (path, init = {}) => {
      const res = await admin.request({
        path,
        method: init.method ?? 'GET',
        ...(init.body !== undefined ? { json: init.body } : {}),
        ...(init.headers ? { headers: init.headers } : {}),
        timeoutMs: 10_000,
      });
      return { status: res.status, body: await res.body.text() };
    };

    if (crds.length > 0) {
      checkAborted(signal);
      await installCrds(admin, crds, readyTimeoutMs, log);
    }
    let webhook: ControlPlaneWebhookServer | undefined;
    if (options.webhooks && pki.webhookCert) {
      checkAborted(signal);
      webhook = await webhookServer(root, options.webhooks, pki.webhookCert, pki.ca.certPem);
      await installWebhooks(admin, webhookConfigs, webhook);
    }
    checkAborted(signal);
    if (reservation) {
      node = await startNode(
        { kubeconfigPath: pki.kubeconfigPath, caPath: pki.caPath, assets, request: rawRequest },
        reservation,
        { ...nodeOptions, readyTimeoutMs, log, ...(signal ? { signal } : {}) },
      );
    }

    return {
      server: pki.server,
      kubeconfigPath: pki.kubeconfigPath,
      kubeConfig,
      caPem: pki.ca.certPem,
      webhook,
      frontProxy: { caPem: pki.frontProxy.caPem, allowedNames: [FRONT_PROXY_CLIENT] },
      dir: root,
      processes,
      assets,
      node,
      etcd: { url: pki.etcd.url, caPem: pki.etcd.tls?.caPem },
      client: admin,
      clientConfig: pki.admin,
      request: rawRequest,
      installCrds: (crds, opts) => installCrds(admin, toKubeObjects(crds), opts?.timeoutMs ?? 60_000, log),
      restartApiServer: async (opts = {}) => {
        const at = processes.findIndex((p) => p.name === 'kube-apiserver');
        const old = processes[at];
        if (!old) throw new PeerError('CAP_ERR_PEER_EXITED', 'kube-apiserver is not running', '');
        await old.stop();
        await opts.whileDown?.();
        log('restarting kube-apiserver');
        processes[at] = await startApiServer(
          assets,
          root,
          pki,
          admin,
          options.apiServerFlags ?? [],
          readyTimeoutMs,
        );
      },
      stop,
      close: stop,
      [Symbol.asyncDispose]: stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** The root folder and the programs started in it, which stop together. */
interface ControlPlaneRun {
  root: string;
  processes: PeerProcess[];
  /** Stop every program (last started first) and remove the root. Idempotent. */
  stop(): Promise<void>;
}

function openRun(dir: string | undefined): ControlPlaneRun {
  const root = dir ?? mkdtempSync(join(tmpdir(), 'capstan-kube-'));
  mkdirSync(root, { recursive: true });
  // On exit without stop(): startProcess kills etcd and the apiserver, then the shared root goes.
  const forgetRoot = onExitAfterProcesses(() => rmSync(root, { recursive: true, force: true }));
  const processes: PeerProcess[] = [];
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    // Reverse order: the apiserver must not outlive etcd's shutdown and spam reconnects.
    for (const p of [...processes].reverse()) await p.stop();
    rmSync(root, { recursive: true, force: true });
    forgetRoot();
  };
  return { root, processes, stop };
}

/** etcd, then kube-apiserver, then (when asked) kube-controller-manager, each once the previous is ready. */
async function startPrograms(
  run: ControlPlaneRun,
  assets: KubeAssets,
  pki: ControlPlanePki,
  admin: KubeClient,
  options: ControlPlaneOptions & { readyTimeoutMs: number; log: (line: string) => void },
): Promise<void> {
  const { root, processes } = run;
  const { readyTimeoutMs, log, signal } = options;
  checkAborted(signal);
  log(`starting etcd (${assets.source}: ${assets.dir})`);
  processes.push(await startEtcd(assets, root, pki, readyTimeoutMs));

  checkAborted(signal);
  log('starting kube-apiserver');
  processes.push(
    await startApiServer(assets, root, pki, admin, options.apiServerFlags ?? [], readyTimeoutMs),
  );

  if (options.controllerManager) {
    checkAborted(signal);
    log('starting kube-controller-manager');
    processes.push(
      await startControllerManager(assets, root, pki, options.controllerManagerFlags ?? [], readyTimeoutMs),
    );
  }
}

/** Everything the programs are started with: ports, the CA, certificates and keys on disk, a kubeconfig. */
interface ControlPlanePki {
  ca: CertAuthority;
  etcd: EtcdPki;
  /** Where the apiserver listens: 127.0.0.1, or with a node the node's bridge address. */
  apiAddress: string;
  apiPort: number;
  /** With a node: pods get ServiceAccount tokens (the admission plugin is on). */
  serviceAccountTokens: boolean;
  /** Apiserver URL. */
  server: string;
  caPath: string;
  caKeyPath: string;
  servingCertPath: string;
  servingKeyPath: string;
  saKeyPath: string;
  saPubPath: string;
  kubeconfigPath: string;
  /** The admin's connection settings (a client certificate in `system:masters`). */
  admin: KubeClientConfig;
  /** The apiserver's client certificate for kubelets (logs, exec, port-forward). */
  kubeletClientCertPath: string;
  kubeletClientKeyPath: string;
  webhookCert: CertPair | undefined;
  /** The aggregation layer's front proxy: its own CA (requestheader client CA) and client certificate. */
  frontProxy: { caPem: string; caPath: string; clientCertPath: string; clientKeyPath: string };
}

/** etcd's URLs and, in TLS mode, its certificates on disk (the kubeadm layout under `<root>/pki`). */
interface EtcdPki {
  url: string;
  peerUrl: string;
  tls:
    | {
        caPem: string;
        caPath: string;
        serverCertPath: string;
        serverKeyPath: string;
        peerCertPath: string;
        peerKeyPath: string;
        /** The apiserver's client certificate for etcd (also what the readiness probe presents). */
        client: TlsClient;
        clientCertPath: string;
        clientKeyPath: string;
      }
    | undefined;
}

/**
 * etcd's URLs and, with `tls`, a CA of its own and its certificates: serving (client URL), peer (server and
 * client, for the peer URL) and `apiserver-etcd-client`. A separate CA, as kubeadm's, because etcd trusts every
 * certificate its CA signed: with the cluster CA, the admin kubeconfig would open etcd too.
 */
async function createEtcdPki(pki: string, tls: boolean): Promise<EtcdPki> {
  const [clientPort, peerPort] = await Promise.all([freePort(), freePort()]);
  const scheme = tls ? 'https' : 'http';
  const url = `${scheme}://127.0.0.1:${clientPort}`;
  const peerUrl = `${scheme}://127.0.0.1:${peerPort}`;
  if (!tls) return { url, peerUrl, tls: undefined };
  const ca = await createCertAuthority('capstan-etcd-ca');
  const names = { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] };
  const [server, peer, client] = await Promise.all([
    ca.issue({ commonName: 'capstan-etcd', ...names, usage: 'server' }),
    ca.issue({ commonName: 'capstan-etcd-peer', ...names, usage: 'both' }),
    ca.issue({ commonName: 'kube-apiserver-etcd-client', usage: 'client' }),
  ]);
  const dir = join(pki, 'etcd');
  mkdirSync(dir, { recursive: true });
  const file = (name: string, content: string) => {
    const path = join(name.startsWith('apiserver-') ? pki : dir, name);
    writeFileSync(path, content, { mode: 0o600 });
    return path;
  };
  // The etcd CA's key is not written: nothing here issues more etcd certificates.
  return {
    url,
    peerUrl,
    tls: {
      caPem: ca.certPem,
      caPath: file('ca.crt', ca.certPem),
      serverCertPath: file('server.crt', server.certPem),
      serverKeyPath: file('server.key', server.keyPem),
      peerCertPath: file('peer.crt', peer.certPem),
      peerKeyPath: file('peer.key', peer.keyPem),
      client: { ca: ca.certPem, cert: client.certPem, key: client.keyPem },
      clientCertPath: file('apiserver-etcd-client.crt', client.certPem),
      clientKeyPath: file('apiserver-etcd-client.key', client.keyPem),
    },
  };
}

/**
 * Pick the ports, make the CA and every certificate and key, write them under `<root>/pki` and the kubeconfig.
 * `nodeIp` (with a node): the apiserver listens there instead of on loopback.
 */
async function createPki(
  root: string,
  webhooks: ControlPlaneWebhookOptions | undefined,
  etcdTls: boolean,
  nodeIp: string | undefined,
): Promise<ControlPlanePki> {
  const pki = join(root, 'pki');
  mkdirSync(pki, { recursive: true });
  const [ca, frontProxyCa, saKeys, etcd, apiPort] = await Promise.all([
    createCertAuthority('capstan-kube-ca'),
    // A CA of its own, as kubeadm's front-proxy-ca: an aggregated server trusts every certificate this CA
    // signs to assert any user in X-Remote-User; with the cluster CA, every client certificate could.
    createCertAuthority('capstan-front-proxy-ca'),
    // ES256 service-account tokens: an EC key costs a millisecond, RSA tens to hundreds.
    generateKeyPairAsync('ec', { namedCurve: 'P-256' }),
    createEtcdPki(pki, etcdTls),
    freePort(),
  ]);
  const [serving, admin, kubeletClient, frontProxyClient, webhookCert] = await Promise.all([
    ca.issue({
      commonName: 'kube-apiserver',
      // The names and addresses clients use: pods the `kubernetes` Service's ClusterIP (or its DNS names,
      // given a DNS), this machine loopback or the node's bridge address.
      dnsNames: [
        'localhost',
        'kubernetes',
        'kubernetes.default',
        'kubernetes.default.svc',
        'kubernetes.default.svc.cluster.local',
      ],
      ipAddresses: ['127.0.0.1', CLUSTER_NETWORK.kubernetesServiceIp, ...(nodeIp ? [nodeIp] : [])],
      usage: 'server',
    }),
    ca.issue({ commonName: 'capstan-admin', organizations: ['system:masters'], usage: 'client' }),
    ca.issue({
      commonName: 'kube-apiserver-kubelet-client',
      organizations: ['system:masters'],
      usage: 'client',
    }),
    frontProxyCa.issue({ commonName: FRONT_PROXY_CLIENT, usage: 'client' }),
    webhooks ? issueWebhookCert(ca, webhooks.host ?? '127.0.0.1') : undefined,
  ]);
  const file = (name: string, content: string) => {
    const path = join(pki, name);
    writeFileSync(path, content, { mode: 0o600 });
    return path;
  };
  const apiAddress = nodeIp ?? '127.0.0.1';
  const server = `https://${apiAddress}:${apiPort}`;
  const kubeconfigPath = join(root, 'kubeconfig');
  writeFileSync(kubeconfigPath, kubeconfigYaml(server, ca.certPem, admin), { mode: 0o600 });
  return {
    ca,
    etcd,
    apiAddress,
    apiPort,
    serviceAccountTokens: nodeIp !== undefined,
    server,
    caPath: file('ca.crt', ca.certPem),
    caKeyPath: file('ca.key', ca.keyPem),
    servingCertPath: file('apiserver.crt', serving.certPem),
    servingKeyPath: file('apiserver.key', serving.keyPem),
    saKeyPath: file('sa.key', saKeys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()),
    saPubPath: file('sa.pub', saKeys.publicKey.export({ type: 'spki', format: 'pem' }).toString()),
    kubeconfigPath,
    admin: { server, caPem: ca.certPem, certPem: admin.certPem, keyPem: admin.keyPem, namespace: 'default' },
    kubeletClientCertPath: file('apiserver-kubelet-client.crt', kubeletClient.certPem),
    kubeletClientKeyPath: file('apiserver-kubelet-client.key', kubeletClient.keyPem),
    webhookCert,
    frontProxy: {
      caPem: frontProxyCa.certPem,
      caPath: file('front-proxy-ca.crt', frontProxyCa.certPem),
      clientCertPath: file('front-proxy-client.crt', frontProxyClient.certPem),
      clientKeyPath: file('front-proxy-client.key', frontProxyClient.keyPem),
    },
  };
}

function startEtcd(
  assets: KubeAssets,
  root: string,
  pki: ControlPlanePki,
  readyTimeoutMs: number,
): Promise<PeerProcess> {
  const etcdDir = join(root, 'etcd');
  mkdirSync(etcdDir);
  const { url: etcdUrl, peerUrl: etcdPeerUrl, tls } = pki.etcd;
  // etcd's own flag names, so the same command line works with a real etcd (KUBEBUILDER_ASSETS).
  const tlsArgs = tls
    ? [
        `--cert-file=${tls.serverCertPath}`,
        `--key-file=${tls.serverKeyPath}`,
        `--trusted-ca-file=${tls.caPath}`,
        '--client-cert-auth',
        `--peer-cert-file=${tls.peerCertPath}`,
        `--peer-key-file=${tls.peerKeyPath}`,
        `--peer-trusted-ca-file=${tls.caPath}`,
        '--peer-client-cert-auth',
      ]
    : [];
  return startPeerProcess({
    name: 'etcd',
    command: assets.etcd,
    args: [
      `--data-dir=${join(etcdDir, 'data')}`,
      `--listen-client-urls=${etcdUrl}`,
      `--advertise-client-urls=${etcdUrl}`,
      `--listen-peer-urls=${etcdPeerUrl}`,
      `--initial-advertise-peer-urls=${etcdPeerUrl}`,
      `--initial-cluster=default=${etcdPeerUrl}`,
      ...tlsArgs,
      // Test data is disposable: skipping fsync makes every apiserver write several times faster.
      '--unsafe-no-fsync',
    ],
    dir: etcdDir,
    keepDir: true,
    ready: () => (tls ? httpsHealthOk(`${etcdUrl}/health`, tls.client) : httpGetOk(`${etcdUrl}/health`)),
    readyTimeoutMs,
  });
}

function startApiServer(
  assets: KubeAssets,
  root: string,
  pki: ControlPlanePki,
  admin: KubeClient,
  extraFlags: string[],
  readyTimeoutMs: number,
): Promise<PeerProcess> {
  const apiDir = join(root, 'kube-apiserver');
  // A restart reuses the folder (and appends to the log).
  mkdirSync(apiDir, { recursive: true });
  return startPeerProcess({
    name: 'kube-apiserver',
    command: assets.kubeApiserver,
    args: [
      // The `kubernetes` Service's endpoint: with a node, its bridge address, which pods reach.
      `--advertise-address=${pki.apiAddress}`,
      `--bind-address=${pki.apiAddress}`,
      `--secure-port=${pki.apiPort}`,
      `--cert-dir=${apiDir}`,
      `--tls-cert-file=${pki.servingCertPath}`,
      `--tls-private-key-file=${pki.servingKeyPath}`,
      `--client-ca-file=${pki.caPath}`,
      `--etcd-servers=${pki.etcd.url}`,
      ...(pki.etcd.tls
        ? [
            `--etcd-cafile=${pki.etcd.tls.caPath}`,
            `--etcd-certfile=${pki.etcd.tls.clientCertPath}`,
            `--etcd-keyfile=${pki.etcd.tls.clientKeyPath}`,
          ]
        : []),
      `--kubelet-client-certificate=${pki.kubeletClientCertPath}`,
      `--kubelet-client-key=${pki.kubeletClientKeyPath}`,
      // The node's name resolves nowhere (no DNS for it): reach kubelets at their InternalIP.
      '--kubelet-preferred-address-types=InternalIP,Hostname',
      `--service-cluster-ip-range=${CLUSTER_NETWORK.serviceSubnet}`,
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
      `--service-account-key-file=${pki.saPubPath}`,
      `--service-account-signing-key-file=${pki.saKeyPath}`,
      '--authorization-mode=RBAC',
      // The aggregation layer (APIServices: metrics adapters, extension servers), kubeadm's settings. The
      // apiserver proxies to an aggregated server with the front-proxy client certificate and the caller's
      // identity in X-Remote-* headers; the server checks the certificate against the requestheader CA.
      `--requestheader-client-ca-file=${pki.frontProxy.caPath}`,
      `--requestheader-allowed-names=${FRONT_PROXY_CLIENT}`,
      '--requestheader-username-headers=X-Remote-User',
      '--requestheader-group-headers=X-Remote-Group',
      '--requestheader-extra-headers-prefix=X-Remote-Extra-',
      `--proxy-client-cert-file=${pki.frontProxy.clientCertPath}`,
      `--proxy-client-key-file=${pki.frontProxy.clientKeyPath}`,
      // To an APIService's (or a webhook's) Service through its EndpointSlices, not its ClusterIP: without a
      // node nothing routes ClusterIPs, and an endpoint may be a server on this machine (the node's bridge
      // address) that the test runs itself.
      '--enable-aggregator-routing=true',
      // Without a node no kubelet will ever mount tokens, and without the controller manager no `default`
      // ServiceAccount exists: the admission plugin would reject every Pod (envtest does the same). With a
      // node it is on: pods get the projected token, ca.crt and namespace, as in any cluster.
      ...(pki.serviceAccountTokens ? [] : ['--disable-admission-plugins=ServiceAccount']),
      '--allow-privileged=true',
      '--profiling=false',
      // Last, so they override the defaults above.
      ...extraFlags,
    ],
    dir: apiDir,
    keepDir: true,
    ready: async () => {
      const res = await admin.request({ path: '/readyz', timeoutMs: 5_000 });
      await res.body.dump();
      return res.status === 200;
    },
    readyTimeoutMs,
  });
}

async function startControllerManager(
  assets: KubeAssets,
  root: string,
  pki: ControlPlanePki,
  extraFlags: string[],
  readyTimeoutMs: number,
): Promise<PeerProcess> {
  const kcmDir = join(root, 'kube-controller-manager');
  mkdirSync(kcmDir);
  const kcmPort = await freePort();
  return startPeerProcess({
    name: 'kube-controller-manager',
    command: assets.kubeControllerManager ?? join(assets.dir, 'kube-controller-manager'),
    args: [
      `--kubeconfig=${pki.kubeconfigPath}`,
      `--authentication-kubeconfig=${pki.kubeconfigPath}`,
      `--authorization-kubeconfig=${pki.kubeconfigPath}`,
      '--bind-address=127.0.0.1',
      `--secure-port=${kcmPort}`,
      `--cert-dir=${kcmDir}`,
      '--leader-elect=false',
      `--service-account-private-key-file=${pki.saKeyPath}`,
      `--root-ca-file=${pki.caPath}`,
      `--cluster-signing-cert-file=${pki.caPath}`,
      `--cluster-signing-key-file=${pki.caKeyPath}`,
      '--use-service-account-credentials=false',
      ...HPA_FLAGS,
      // Last, so they override the defaults above.
      ...extraFlags,
    ],
    dir: kcmDir,
    keepDir: true,
    // Its own self-signed serving certificate: only liveness matters here, not identity.
    ready: async () => {
      await using kcm = new KubeClient(
        { server: `https://127.0.0.1:${kcmPort}`, insecureSkipTlsVerify: true, namespace: '' },
        { http: { retry: false } },
      );
      const res = await kcm.request({ path: '/healthz', timeoutMs: 5_000 });
      await res.body.dump();
      return res.status === 200;
    },
    readyTimeoutMs,
  });
}

/** Where the test's webhook server listens and what it serves; the certificate is also written to disk. */
async function webhookServer(
  root: string,
  options: ControlPlaneWebhookOptions,
  cert: CertPair,
  caPem: string,
): Promise<ControlPlaneWebhookServer> {
  const host = options.host ?? '127.0.0.1';
  const port = options.port ?? (await freePort(host));
  const certDir = join(root, 'webhook');
  mkdirSync(certDir);
  writeFileSync(join(certDir, 'tls.crt'), cert.certPem, { mode: 0o600 });
  writeFileSync(join(certDir, 'tls.key'), cert.keyPem, { mode: 0o600 });
  return { host, port, certPem: cert.certPem, keyPem: cert.keyPem, caPem, certDir };
}

function issueWebhookCert(ca: CertAuthority, host: string): Promise<CertPair> {
  const isIp = /^[\d.]+$|:/.test(host);
  return ca.issue({
    commonName: 'capstan-webhook',
    dnsNames: isIp ? ['localhost'] : [host, 'localhost'],
    ipAddresses: isIp ? [host] : ['127.0.0.1'],
    usage: 'server',
  });
}

/** A rejection by the apiserver as the peer's error, with the apiserver's message. */
function rejected(code: PeerErrorCode, what: string, err: unknown): unknown {
  if (!(err instanceof KubeError)) return err;
  return new PeerError(code, `${what}: HTTP ${err.status}: ${err.message}`, '', { cause: err });
}

async function installCrds(
  client: KubeClient,
  crds: KubeObject[],
  timeoutMs: number,
  log: (line: string) => void,
): Promise<void> {
  const api = client.resource(CustomResourceDefinition);
  for (const crd of crds) {
    if (crd.kind !== 'CustomResourceDefinition') {
      throw new PeerError(
        'CAP_ERR_PEER_CRD',
        `expected a CustomResourceDefinition, got kind ${String(crd.kind)}`,
      );
    }
    log(`installing CRD ${crd.metadata?.name}`);
    try {
      await api.create(crd as CustomResourceDefinition, { timeoutMs: 10_000 });
    } catch (err) {
      if (!(err instanceof KubeError && err.code === KubeErrorCode.conflict)) {
        throw rejected('CAP_ERR_PEER_CRD', `CRD ${crd.metadata?.name} rejected`, err);
      }
    }
  }
  // Established is not enough: discovery lags a moment behind, and a client creating an object in that
  // window gets a 404. Wait for both, like envtest's CRD poller.
  const deadline = Date.now() + timeoutMs;
  for (const crd of crds) {
    const name = crd.metadata?.name ?? '';
    const spec = crd.spec as {
      group: string;
      names: { plural: string };
      versions: Array<{ name: string; served: boolean }>;
    };
    let last = '';
    for (;;) {
      const current = await api.getOptional(name, { timeoutMs: 10_000 });
      const conditions = current?.status?.conditions ?? [];
      const established = conditions.some((c) => c.type === 'Established' && c.status === 'True');
      let served = established;
      for (const v of established ? spec.versions.filter((x) => x.served) : []) {
        const found = await client
          .apiResources(`${spec.group}/${v.name}`, {})
          .then((d) => d.resources.some((r) => r.name === spec.names.plural))
          .catch(() => false);
        if (!found) served = false;
      }
      if (served) break;
      last = conditions.map((c) => `${c.type}=${c.status}${c.message ? ` (${c.message})` : ''}`).join(', ');
      if (Date.now() > deadline) {
        throw new PeerError('CAP_ERR_PEER_CRD', `CRD ${name} not established and served in time: ${last}`);
      }
      await sleep(100);
    }
  }
}

async function installWebhooks(
  client: KubeClient,
  configurations: KubeObject[],
  server: ControlPlaneWebhookServer,
): Promise<void> {
  const caBundle = Buffer.from(server.caPem).toString('base64');
  const base = `https://${server.host.includes(':') ? `[${server.host}]` : server.host}:${server.port}`;
  for (const config of configurations) {
    const type =
      config.kind === 'MutatingWebhookConfiguration'
        ? MutatingWebhookConfiguration
        : config.kind === 'ValidatingWebhookConfiguration'
          ? ValidatingWebhookConfiguration
          : undefined;
    if (!type) {
      throw new PeerError(
        'CAP_ERR_PEER_WEBHOOK',
        `expected a webhook configuration, got kind ${String(config.kind)}`,
      );
    }
    const copy = structuredClone(config) as KubeObject & {
      webhooks?: Array<{ clientConfig?: { url?: string; service?: { path?: string } } }>;
    };
    for (const hook of copy.webhooks ?? []) {
      const cc = hook.clientConfig ?? {};
      const path = cc.service?.path ?? (cc.url ? new URL(cc.url).pathname : '/');
      hook.clientConfig = { url: `${base}${path}`, caBundle } as typeof hook.clientConfig;
    }
    try {
      await client.resource(type as typeof MutatingWebhookConfiguration).create(copy as never, {
        timeoutMs: 10_000,
      });
    } catch (err) {
      throw rejected('CAP_ERR_PEER_WEBHOOK', `${config.kind} ${config.metadata?.name} rejected`, err);
    }
  }
}
