import { accessSync, constants } from 'node:fs';
import { join } from 'node:path';
import { ensurePeers, peerBinary } from './catalogue.ts';
import { PeerError } from './errors.ts';

/** Paths of the control-plane programs, and where they were found (for error messages). */
export interface KubeAssets {
  etcd: string;
  kubeApiserver: string;
  /** Present when asked for (or when the folder has one). */
  kubeControllerManager?: string;
  /**
   * kubectl of the same release, when the folder has one: the `kube` peer builds it, and envtest's asset
   * folders ship one too. For tests that drive the cluster the way a person does.
   */
  kubectl?: string;
  /** kubelet of the same release, when the folder has one (the `kube` peer builds it): a node's agent. */
  kubelet?: string;
  /** kube-scheduler of the same release, when the folder has one (the `kube` peer builds it). */
  kubeScheduler?: string;
  /** kube-proxy of the same release, when the folder has one (the `kube` peer builds it): a node's Services. */
  kubeProxy?: string;
  /** `option`, `CAPSTAN_KUBE_ASSETS`, `KUBEBUILDER_ASSETS` or `peer cache`. */
  source: string;
  dir: string;
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Find etcd and kube-apiserver (and kube-controller-manager when `controllerManager`). Order: the explicit
 * folder, `$CAPSTAN_KUBE_ASSETS`, `$KUBEBUILDER_ASSETS` (the envtest convention, so an existing
 * `setup-envtest` download is reused), else the `kube` peer, built from source on first use.
 */
export function resolveKubeAssets(options: {
  assetsDir?: string;
  controllerManager?: boolean;
  log?: (line: string) => void;
}): KubeAssets {
  const candidates: Array<[string, string | undefined]> = [
    ['option', options.assetsDir],
    ['CAPSTAN_KUBE_ASSETS', process.env.CAPSTAN_KUBE_ASSETS],
    ['KUBEBUILDER_ASSETS', process.env.KUBEBUILDER_ASSETS],
  ];
  const found = candidates.find(([, dir]) => dir !== undefined && dir !== '');
  let source: string;
  let dir: string;
  if (found?.[1]) {
    [source, dir] = [found[0], found[1]];
  } else {
    source = 'peer cache';
    ensurePeers(['kube'], options.log);
    dir = peerBinary('kube', '.');
  }
  const assets: KubeAssets = {
    etcd: join(dir, 'etcd'),
    kubeApiserver: join(dir, 'kube-apiserver'),
    source,
    dir,
  };
  const kcm = join(dir, 'kube-controller-manager');
  if (options.controllerManager || executable(kcm)) assets.kubeControllerManager = kcm;
  if (executable(join(dir, 'kubectl'))) assets.kubectl = join(dir, 'kubectl');
  if (executable(join(dir, 'kubelet'))) assets.kubelet = join(dir, 'kubelet');
  if (executable(join(dir, 'kube-scheduler'))) assets.kubeScheduler = join(dir, 'kube-scheduler');
  if (executable(join(dir, 'kube-proxy'))) assets.kubeProxy = join(dir, 'kube-proxy');
  const missing = [assets.etcd, assets.kubeApiserver, assets.kubeControllerManager]
    .filter((p): p is string => p !== undefined)
    .filter((p) => !executable(p));
  if (missing.length > 0) {
    throw new PeerError(
      'CAP_ERR_PEER_ASSETS',
      `control-plane assets from ${source} (${dir}) lack executable ${missing.join(', ')}`,
    );
  }
  return assets;
}
