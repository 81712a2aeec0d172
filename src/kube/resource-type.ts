/**
 * What the client needs to address a kind of object: its API group and version, kind, plural (the URL
 * segment) and whether it lives in a namespace. Built-in kinds and CRDs defined with Capstan both are one.
 * `T` is the object's TypeScript type, carried so typed clients infer it.
 */
export interface ResourceType<T = unknown> {
  /** '' for the core group (`/api/v1`), else e.g. `apps` or `example.capstan.dev`. */
  readonly group: string;
  readonly version: string;
  readonly kind: string;
  /** The lower-case plural in URLs: `deployments`. */
  readonly plural: string;
  readonly namespaced: boolean;
  /** Type carrier only; never set at run time. */
  readonly __object?: T;
}

/** `apps/v1`, or `v1` for the core group. */
export function apiVersionOf(type: Pick<ResourceType, 'group' | 'version'>): string {
  return type.group === '' ? type.version : `${type.group}/${type.version}`;
}
