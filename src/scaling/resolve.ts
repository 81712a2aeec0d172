// From what a user types (`deployment`, `deploy`, `deployments.apps`, `statefulset.v1.apps`, a CRD's plural
// or short name) to the resource the apiserver serves, through API discovery, the way kubectl's RESTMapper
// does it: no list of known kinds, so a CRD installed a second ago resolves like a Deployment.
import type { ApiResource, ApiResourceList, KubeClient, ResourceType } from '../kube/index.ts';
import { ScalingError, ScalingErrorCode } from './errors.ts';

/** A resource found by {@link resolveResource}. */
export interface ResolvedResource {
  /** What a typed client needs: group, version, kind, plural, scope. */
  readonly type: ResourceType<unknown>;
  /** `deployments.apps`, `pods` (core): the name kubectl prints. */
  readonly resource: string;
  /** True when the group version serves `<plural>/scale`. */
  readonly scalable: boolean;
}

/** `/apis`: the groups and their versions. */
interface ApiGroupList {
  groups: Array<{
    name: string;
    versions: Array<{ groupVersion: string; version: string }>;
    preferredVersion?: { groupVersion: string; version: string };
  }>;
}

/** One way to read what the user typed: a resource word, maybe narrowed to a group (and a version). */
interface Reading {
  word: string;
  group?: string;
  version?: string;
}

const VERSION = /^v\d+(?:(?:alpha|beta)\d+)?$/;
const WORD = /^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/;

/** kubectl's readings of `a.b.c`: resource `a` in version `b` of group `c`, else resource `a` of group `b.c`. */
function readingsOf(text: string): Reading[] {
  const parts = text.split('.');
  const word = parts[0]!;
  if (parts.length === 1) return [{ word }];
  const readings: Reading[] = [];
  if (parts.length >= 3 && VERSION.test(parts[1]!)) {
    readings.push({ word, version: parts[1]!, group: parts.slice(2).join('.') });
  }
  readings.push({ word, group: parts.slice(1).join('.') });
  return readings;
}

/** The group versions to look in, core first, then `/apis` in the apiserver's priority order. */
async function candidateGroupVersions(
  kube: KubeClient,
  reading: Reading,
  signal: AbortSignal | undefined,
): Promise<string[]> {
  const opts = signal ? { signal } : {};
  if (reading.group === 'core' || reading.group === '') return [reading.version ?? 'v1'];
  const list = await kube.json<ApiGroupList>({ path: '/apis', ...opts });
  const out: string[] = reading.group === undefined ? ['v1'] : [];
  for (const group of list.groups) {
    if (reading.group !== undefined && group.name !== reading.group) continue;
    if (reading.version !== undefined) {
      const v = group.versions.find((x) => x.version === reading.version);
      if (v) out.push(v.groupVersion);
      continue;
    }
    // Preferred version first; with a group named, its other versions too (a kind only in v1beta1).
    const preferred = group.preferredVersion?.groupVersion ?? group.versions[0]?.groupVersion;
    if (preferred) out.push(preferred);
    if (reading.group !== undefined) {
      for (const v of group.versions) if (v.groupVersion !== preferred) out.push(v.groupVersion);
    }
  }
  return out;
}

function matches(resource: ApiResource, word: string, byShortName: boolean): boolean {
  if (resource.name.includes('/')) return false;
  if (byShortName) return (resource.shortNames ?? []).includes(word);
  return resource.name === word || resource.singularName === word || resource.kind.toLowerCase() === word;
}

function resolvedFrom(list: ApiResourceList, found: ApiResource): ResolvedResource {
  const slash = list.groupVersion.indexOf('/');
  const group = slash === -1 ? '' : list.groupVersion.slice(0, slash);
  const version = slash === -1 ? list.groupVersion : list.groupVersion.slice(slash + 1);
  return {
    type: { group, version, kind: found.kind, plural: found.name, namespaced: found.namespaced },
    resource: group === '' ? found.name : `${found.name}.${group}`,
    scalable: list.resources.some((r) => r.name === `${found.name}/scale`),
  };
}

/**
 * Find the resource `text` names (`deployment`, `deploy`, `deployments.apps`, `deployment.v1.apps`, a CRD's
 * kind, plural, singular or short name, each optionally `.group`) through discovery. The core group and
 * then `/apis` are searched in the apiserver's order, preferred versions first, as kubectl does. A group
 * version that fails to answer (an aggregated API that is down) is skipped unless nothing else matches.
 * Fails with `CAP_ERR_SCALING_UNKNOWN_KIND` when no served resource matches.
 */
export async function resolveResource(
  kube: KubeClient,
  text: string,
  options: { signal?: AbortSignal } = {},
): Promise<ResolvedResource> {
  const typed = text.trim().toLowerCase();
  if (!WORD.test(typed)) {
    throw new ScalingError(ScalingErrorCode.unknownKind, `not a resource type: "${text}"`);
  }
  const failures: string[] = [];
  for (const reading of readingsOf(typed)) {
    const groupVersions = await candidateGroupVersions(kube, reading, options.signal);
    // Discovery documents are small and the apiserver answers them from memory: ask for all at once.
    const lists = await Promise.all(
      groupVersions.map(async (gv) => {
        try {
          return await kube.apiResources(gv, options);
        } catch (err) {
          if (options.signal?.aborted) throw err;
          failures.push(`${gv}: ${err instanceof Error ? err.message : String(err)}`);
          return undefined;
        }
      }),
    );
    for (const byShortName of [false, true]) {
      for (const list of lists) {
        const found = list?.resources.find((r) => matches(r, reading.word, byShortName));
        if (list && found) return resolvedFrom(list, found);
      }
    }
  }
  const unreachable = failures.length > 0 ? ` (discovery failed for ${failures.join('; ')})` : '';
  throw new ScalingError(
    ScalingErrorCode.unknownKind,
    `the server does not serve a resource type "${text}"${unreachable}`,
  );
}
