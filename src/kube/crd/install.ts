// Install CRDs from running code (an operator at start-up, a test): server-side apply, then wait until the
// apiserver serves them. Established alone is not enough: discovery lags a moment behind, and an object
// created in that window gets a 404 (envtest's CRD poller waits for both, and so does this).
import { sleep } from '../../runtime/index.ts';
import { CustomResourceDefinition } from '../builtin.ts';
import type { KubeClient } from '../client.ts';
import { KubeError, KubeErrorCode } from '../errors.ts';
import type { CustomResource } from './define.ts';
import { type CustomResourceDefinitionManifest, crdManifests } from './manifest.ts';

/** Options of {@link installCustomResources}. */
export interface InstallCustomResourcesOptions {
  /** Field manager of the apply (default: the client's). */
  fieldManager?: string;
  /** Take fields another manager owns (default true: the definition in code is the truth). */
  force?: boolean;
  /** How long to wait until every CRD is Established and served (default 60 s). */
  timeoutMs?: number;
  signal?: AbortSignal;
}

interface CrdConditions {
  status?: { conditions?: Array<{ type: string; status: string; reason?: string; message?: string }> };
}

/**
 * Apply the CRDs of `resources` (server-side apply, so re-running with a changed definition updates them)
 * and wait until each is Established and its served versions are in discovery. Fails with
 * `CAP_ERR_KUBE_CRD` listing every problem when a definition cannot be generated (before anything is
 * sent) or when the apiserver refuses a name (`NamesAccepted` false, e.g. a short name another CRD has);
 * `CAP_ERR_KUBE_TIMEOUT` when not served in time.
 */
export async function installCustomResources(
  kube: KubeClient,
  resources: readonly CustomResource[],
  options: InstallCustomResourcesOptions = {},
): Promise<void> {
  const manifests = crdManifests(resources);
  const crds = kube.resource(CustomResourceDefinition);
  const call = { ...(options.signal ? { signal: options.signal } : {}) };
  for (const manifest of manifests) {
    await crds.apply(manifest as unknown as CustomResourceDefinition, {
      ...call,
      force: options.force ?? true,
      ...(options.fieldManager !== undefined ? { fieldManager: options.fieldManager } : {}),
    });
  }
  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  for (const manifest of manifests) await waitServed(kube, manifest, deadline, options.signal);
}

async function waitServed(
  kube: KubeClient,
  manifest: CustomResourceDefinitionManifest,
  deadline: number,
  signal: AbortSignal | undefined,
): Promise<void> {
  const name = manifest.metadata.name;
  const crds = kube.resource(CustomResourceDefinition);
  let last = 'not yet read';
  for (;;) {
    signal?.throwIfAborted();
    const crd = (await crds.get(name, signal ? { signal } : {})) as unknown as CrdConditions;
    const conditions = crd.status?.conditions ?? [];
    const names = conditions.find((c) => c.type === 'NamesAccepted');
    if (names?.status === 'False') {
      const why = `${name}: names not accepted: ${names.message ?? names.reason ?? ''}`;
      throw new KubeError(KubeErrorCode.crd, why, { problems: [why] });
    }
    if (conditions.some((c) => c.type === 'Established' && c.status === 'True')) {
      let served = true;
      for (const v of manifest.spec.versions.filter((x) => x.served)) {
        const list = await kube
          .apiResources(`${manifest.spec.group}/${v.name}`, signal ? { signal } : {})
          .catch((err: unknown) => {
            if (err instanceof KubeError && err.code === KubeErrorCode.notFound) return { resources: [] };
            throw err;
          });
        if (!list.resources.some((r) => r.name === manifest.spec.names.plural)) served = false;
      }
      if (served) return;
      last = 'Established, not yet in discovery';
    } else {
      last =
        conditions.map((c) => `${c.type}=${c.status}${c.message ? ` (${c.message})` : ''}`).join(', ') ||
        'no conditions';
    }
    if (Date.now() > deadline) {
      throw new KubeError(KubeErrorCode.timeout, `CRD ${name} not established and served in time: ${last}`);
    }
    await sleep(100, signal);
  }
}
