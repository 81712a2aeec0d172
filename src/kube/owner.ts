// Owner references: how a controller marks what it created, so the garbage collector deletes children with
// their parent and an `owns` watch finds the parent of a changed child.
import { KubeError, KubeErrorCode } from './errors.ts';
import type { ObjectMeta, OwnerReference } from './objects.ts';
import { apiVersionOf, type ResourceType } from './resource-type.ts';

/** Anything with metadata. */
export interface HasMetadata {
  metadata?: ObjectMeta;
}

/**
 * The owner reference to put in a child's `metadata.ownerReferences`: `controller: true` (the one owner that
 * manages it, which `owns` watches follow) and `blockOwnerDeletion: true` (foreground deletion of the owner
 * waits for the child), as controller-runtime's `SetControllerReference` does.
 */
export function ownerReference(
  type: Pick<ResourceType, 'group' | 'version' | 'kind'>,
  owner: HasMetadata,
  options: { controller?: boolean; blockOwnerDeletion?: boolean } = {},
): OwnerReference {
  const name = owner.metadata?.name;
  const uid = owner.metadata?.uid;
  if (!name || !uid) {
    throw new KubeError(
      KubeErrorCode.usage,
      `ownerReference: the owner ${type.kind} needs metadata.name and metadata.uid (read it from the apiserver or the cache)`,
    );
  }
  return {
    apiVersion: apiVersionOf(type),
    kind: type.kind,
    name,
    uid,
    controller: options.controller ?? true,
    blockOwnerDeletion: options.blockOwnerDeletion ?? true,
  };
}

/** The group of an `apiVersion` (`apps/v1` → `apps`, `v1` → ''). */
export function groupOf(apiVersion: string): string {
  const slash = apiVersion.indexOf('/');
  return slash < 0 ? '' : apiVersion.slice(0, slash);
}

/**
 * The controlling owner of `object` when it is of `ownerType` (same group and kind, any version), else
 * undefined.
 */
export function controllerOf(
  object: HasMetadata,
  ownerType: Pick<ResourceType, 'group' | 'kind'>,
): OwnerReference | undefined {
  return object.metadata?.ownerReferences?.find(
    (ref) =>
      ref.controller === true && ref.kind === ownerType.kind && groupOf(ref.apiVersion) === ownerType.group,
  );
}
