// Kubernetes nodes and running pods as inventory hosts. Nodes are machines (`ansible_host` their internal
// address); pods are reached through Ansible's kubectl connection (kubernetes.core.kubectl), since a pod
// runs no SSH server. capstan/kube is loaded on the first collect only.
import type { Node, Pod } from '../kube/index.ts';
import type { KubernetesSourceConfig } from './config.ts';
import type { SourceHost } from './inventory.ts';
import type { CollectOptions, InventorySource } from './source.ts';

/** Options of {@link kubernetesSource}. */
export type KubernetesSourceOptions = Pick<
  KubernetesSourceConfig,
  'name' | 'kubeconfig' | 'context' | 'nodes' | 'pods' | 'namespace' | 'nodeSelector' | 'podSelector'
> & {
  /** Where `KUBECONFIG` and `HOME` are read. Default `process.env`. */
  env?: NodeJS.ProcessEnv;
};

function nodeHost(node: Node): SourceHost {
  const addresses = node.status?.addresses ?? [];
  const address =
    addresses.find((a) => a.type === 'InternalIP')?.address ??
    addresses.find((a) => a.type === 'ExternalIP')?.address ??
    addresses[0]?.address ??
    node.metadata?.name ??
    '';
  const ready = node.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True';
  const labels = node.metadata?.labels ?? {};
  return {
    name: node.metadata?.name ?? '',
    kind: 'node',
    vars: {
      ansible_host: address,
      k8s_labels: labels,
      k8s_node_ready: ready,
      k8s_kubelet_version: node.status?.nodeInfo?.kubeletVersion ?? '',
    },
    labels,
  };
}

function podHost(pod: Pod, options: KubernetesSourceOptions): SourceHost {
  const name = pod.metadata?.name ?? '';
  const namespace = pod.metadata?.namespace ?? '';
  const labels = pod.metadata?.labels ?? {};
  const container = pod.spec?.containers?.[0]?.name;
  return {
    // Pod names repeat across namespaces; `name.namespace` reads like the DNS names people know.
    name: `${name}.${namespace}`,
    kind: 'pod',
    vars: {
      ansible_connection: 'kubernetes.core.kubectl',
      ansible_kubectl_pod: name,
      ansible_kubectl_namespace: namespace,
      ...(container ? { ansible_kubectl_container: container } : {}),
      ...(options.kubeconfig ? { ansible_kubectl_kubeconfig: options.kubeconfig } : {}),
      ...(options.context ? { ansible_kubectl_context: options.context } : {}),
      k8s_namespace: namespace,
      k8s_node: pod.spec?.nodeName ?? '',
      k8s_pod_ip: pod.status?.podIP ?? '',
      k8s_phase: pod.status?.phase ?? '',
      k8s_labels: labels,
    },
    labels,
  };
}

/**
 * Nodes (unless `nodes: false`) and running pods (unless `pods: false`; of `namespace` only when given) of a
 * cluster, with `nodeSelector` / `podSelector` label selectors. A node is a host named after it (kind `node`,
 * `ansible_host` its InternalIP); a pod is `<pod>.<namespace>` (kind `pod`) with `ansible_connection:
 * kubernetes.core.kubectl` and the `ansible_kubectl_*` variables that reach it. Labels of both are matched by
 * label rules. The cluster comes from `kubeconfig` / `context`, else `KUBECONFIG`, the pod's service account
 * or `~/.kube/config`.
 */
export function kubernetesSource(options: KubernetesSourceOptions): InventorySource {
  const env = options.env ?? process.env;
  const where = options.kubeconfig ?? (env['KUBECONFIG'] || 'default kubeconfig');
  return {
    name: options.name,
    description: `kubernetes ${where}${options.context ? ` (context ${options.context})` : ''}`,
    async collect({ signal }: CollectOptions): Promise<SourceHost[]> {
      const kube = await import('../kube/index.ts');
      const context = options.context !== undefined ? { context: options.context } : {};
      const config = options.kubeconfig
        ? await kube.loadKubeconfig({ path: options.kubeconfig, env, ...context })
        : await kube.defaultKubeConfig({ env, ...context });
      // One attempt: the inventory is asked again on the next run, and a retried refusal only delays the message.
      const client = new kube.KubeClient(config, { http: { retry: false }, userAgent: 'capstan-inventory' });
      try {
        const [nodes, pods] = await Promise.all([
          options.nodes === false
            ? undefined
            : client.resource(kube.Node).listAll({
                signal,
                ...(options.nodeSelector ? { labelSelector: options.nodeSelector } : {}),
              }),
          options.pods === false
            ? undefined
            : client.resource(kube.Pod, options.namespace).listAll({
                signal,
                fieldSelector: 'status.phase=Running',
                ...(options.podSelector ? { labelSelector: options.podSelector } : {}),
              }),
        ]);
        return [
          ...(nodes?.items ?? []).map(nodeHost),
          ...(pods?.items ?? []).map((p) => podHost(p, options)),
        ];
      } finally {
        await client.close();
      }
    },
  };
}
