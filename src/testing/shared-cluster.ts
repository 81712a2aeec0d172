// useSharedCluster: a test's view of the run's shared cluster (capstan/peers' attachSharedCluster): the
// cluster, plus a namespace of the test's own, deleted after it.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { KubeConfig } from '@kubernetes/client-node';
import {
  type AttachSharedClusterOptions,
  attachSharedCluster,
  type BuiltImage,
  type ClusterNodeState,
  type ImageSpec,
  kubeconfigRequest,
  loadNodeImage,
  PeerError,
  PeerErrorCode,
  type RawRequestInit,
} from '../peers/index.ts';
import { type CommandResult, runCommand } from '../runtime/index.ts';

/** The run's shared cluster as one test sees it (see {@link useSharedCluster}). */
export interface SharedCluster {
  /** Apiserver URL. */
  readonly server: string;
  /** A kubeconfig for the `system:masters` admin (credentials embedded); its context has no namespace. */
  readonly kubeconfigPath: string;
  /** The same kubeconfig, loaded into @kubernetes/client-node. */
  readonly kubeConfig: KubeConfig;
  /** This test's namespace: created for it (its `default` ServiceAccount exists), deleted after it. */
  readonly namespace: string;
  /** kubectl of the same release, when the asset folder has one. */
  readonly kubectlPath: string | undefined;
  /** With `node: true`: the node (name, addresses, images, containerd socket). */
  readonly node: ClusterNodeState | undefined;
  /** GET/POST... a raw apiserver path as the admin. */
  request(path: string, init?: RawRequestInit): Promise<{ status: number; body: string }>;
  /**
   * Run kubectl against the cluster, in this test's namespace unless `args` name another (`-n`); returns
   * stdout, throws `CAP_ERR_PEER_COMMAND_FAILED` with kubectl's stderr on a non-zero exit.
   */
  kubectl(args: string[], options?: { input?: string; timeoutMs?: number }): string;
  /**
   * kubectl as a child process, without blocking this one: use it when the apiserver calls back into a
   * server of this process (a webhook, an aggregated API), which a synchronous `kubectl` would stall until
   * the apiserver gives up. Resolves with the exit code and output; with `allowFailure` unset, a non-zero
   * exit rejects with `CAP_ERR_RUNTIME_PROCESS_FAILED` and kubectl's stderr.
   */
  kubectlAsync(
    args: string[],
    options?: { input?: string; timeoutMs?: number; allowFailure?: boolean },
  ): Promise<CommandResult>;
  /** Pack an image and load it into the node's containerd (`imagePullPolicy: Never` then finds it). */
  loadImage(image: ImageSpec | BuiltImage): void;
}

/**
 * The run's shared cluster, for test `t`: one control plane (with `node: true`, a node: pods run; root
 * only) for every test file of the run, started by the first test that asks and stopped at the end of the
 * run, plus a fresh namespace for this test, deleted after it. With `--test-global-setup` pointing at
 * `capstan/testing`'s `global-setup` module the cluster lives for the whole `node --test` run (and the
 * run fails if the host differs after its node); a file run alone starts it and stops it when it exits.
 *
 * ```ts
 * test('a pod runs', async (t) => {
 *   const cluster = await useSharedCluster(t, { node: true });
 *   cluster.kubectl(['run', 'x', `--image=${cluster.node!.images.busybox}`, '--image-pull-policy=Never']);
 * });
 * ```
 */
export async function useSharedCluster(
  t: TestContext,
  options: AttachSharedClusterOptions = {},
): Promise<SharedCluster> {
  const info = await attachSharedCluster(options);
  const { KubeConfig } = await import('@kubernetes/client-node');
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(info.kubeconfigPath);
  const request = kubeconfigRequest(kubeConfig);
  const namespace = namespaceName(t.name);
  const created = await request('/api/v1/namespaces', {
    method: 'POST',
    body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } },
  });
  if (created.status !== 201) {
    throw new PeerError(
      PeerErrorCode.request,
      `creating namespace ${namespace}: ${created.status} ${created.body}`,
    );
  }
  // Not waited for: the namespace controller empties and removes it in the background.
  t.after(async () => {
    await request(`/api/v1/namespaces/${namespace}`, { method: 'DELETE' }).catch(() => {});
  });
  // With ServiceAccount admission, a pod in a namespace without its `default` ServiceAccount is refused:
  // the controller manager makes it a moment after the namespace.
  const deadline = Date.now() + 60_000;
  while ((await request(`/api/v1/namespaces/${namespace}/serviceaccounts/default`)).status !== 200) {
    if (Date.now() > deadline) {
      throw new PeerError(PeerErrorCode.notReady, `no default ServiceAccount in ${namespace} after 60 s`);
    }
    await sleep(100);
  }
  return {
    server: info.server,
    kubeconfigPath: info.kubeconfigPath,
    kubeConfig,
    namespace,
    kubectlPath: info.kubectl,
    node: info.node,
    request,
    kubectl: (args, opts = {}) => {
      if (!info.kubectl) {
        throw new PeerError(PeerErrorCode.notFound, 'no kubectl in the kube asset folder');
      }
      const r = spawnSync(
        info.kubectl,
        ['--kubeconfig', info.kubeconfigPath, '--namespace', namespace, ...args],
        {
          encoding: 'utf8',
          timeout: opts.timeoutMs ?? 60_000,
          ...(opts.input !== undefined ? { input: opts.input } : {}),
        },
      );
      if (r.status !== 0) {
        throw new PeerError(
          PeerErrorCode.commandFailed,
          `kubectl ${args.join(' ')} failed (${r.status ?? r.signal})`,
          r.stderr ?? '',
        );
      }
      return r.stdout;
    },
    kubectlAsync: (args, opts = {}) => {
      if (!info.kubectl) {
        return Promise.reject(new PeerError(PeerErrorCode.notFound, 'no kubectl in the kube asset folder'));
      }
      return runCommand(
        'kubectl',
        info.kubectl,
        ['--kubeconfig', info.kubeconfigPath, '--namespace', namespace, ...args],
        {
          env: process.env,
          timeoutMs: opts.timeoutMs ?? 60_000,
          ...(opts.input !== undefined ? { input: opts.input } : {}),
          ...(opts.allowFailure ? { allowFailure: true } : {}),
        },
      );
    },
    loadImage: (spec) => {
      if (!info.node)
        throw new PeerError(PeerErrorCode.config, 'loadImage needs useSharedCluster(t, { node: true })');
      loadNodeImage(info.node.containerdAddress, spec);
    },
  };
}

/** A DNS label from the test's name, unique by a random suffix: `a-pod-runs-3f9c1a`. */
function namespaceName(testName: string): string {
  const base = testName
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .slice(0, 40)
    .replace(/^-+|-+$/g, '');
  return `${base || 'test'}-${randomBytes(3).toString('hex')}`;
}
