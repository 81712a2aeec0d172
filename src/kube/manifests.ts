// Everything a cluster needs to run an operator, as kubebuilder's `config/` renders it: its namespace, CRDs,
// RBAC, a Deployment running `runOperator` and a PodDisruptionBudget. The Deployment follows the contract
// of `runOperator` (port, health paths, environment, shutdown timings), which lives beside it.
import type { Deployment, Namespace, PodDisruptionBudget } from './builtin.ts';
import { type CustomResourceDefinitionManifest, crdManifests } from './crd/manifest.ts';
import type { Operator } from './operator.ts';
import { type RbacObject, rbacManifests } from './rbac.ts';
import { operatorShutdown, terminationGraceSeconds } from './run-operator.ts';
import { programWorkload } from './workload.ts';

/** Options of {@link operatorManifests}. */
export interface OperatorManifestOptions {
  /** The operator's container image (its entrypoint runs `runOperator`). */
  image: string;
  /** Default 2 with leader election (one leads, one stands by), else 1. */
  replicas?: number;
  /** Default `IfNotPresent`. */
  imagePullPolicy?: 'Always' | 'IfNotPresent' | 'Never';
  /** Overrides the image's entrypoint, e.g. `['node', 'dist/main.js']`. */
  command?: readonly string[];
  /** CPU and memory; default requests 50m / 128Mi, limit 512Mi memory (no CPU limit: throttling slows reconciles). */
  resources?: {
    requests?: Record<string, string>;
    limits?: Record<string, string>;
  };
  /** The user id the container runs as (non-root). Default 65532, distroless's `nonroot`. */
  runAsUser?: number;
  /** Include the operator's Namespace object. Default true. */
  namespace?: boolean;
  /** `LOG_LEVEL` of the operator. Unset: the program's default (info). */
  logLevel?: string;
}

/** One object of the output. */
export type OperatorManifest =
  | Namespace
  | CustomResourceDefinitionManifest
  | RbacObject
  | Deployment
  | PodDisruptionBudget;

/** The port `runOperator` listens on in the pod (its `PORT`). */
export const OPERATOR_PORT = 8080;

/**
 * The manifests of `operator`, in the order to apply them: Namespace, CRDs, ServiceAccount and roles
 * ({@link rbacManifests}), Deployment, PodDisruptionBudget.
 *
 * The Deployment: probes on `/livez` (liveness) and `/readyz` (readiness; a standby replica is ready),
 * a preStop sleep and `terminationGracePeriodSeconds` from {@link operatorShutdown}, `LEADER_ELECTION`,
 * `POD_NAMESPACE`, `POD_NAME` from the downward API, a restricted security context (non-root,
 * read-only root filesystem, no capabilities, RuntimeDefault seccomp) with an emptyDir on `/tmp`. The
 * PodDisruptionBudget allows one pod down at a time, so a drain never waits on a single-replica operator.
 */
export function operatorManifests(operator: Operator, options: OperatorManifestOptions): OperatorManifest[] {
  const { name, namespace, leaderElection } = operator.definition;
  const labels = { 'app.kubernetes.io/name': name, 'app.kubernetes.io/managed-by': 'capstan' };
  const selector = { 'app.kubernetes.io/name': name };
  const replicas = options.replicas ?? (leaderElection ? 2 : 1);
  const user = options.runAsUser ?? 65532;
  const env = [
    { name: 'PORT', value: String(OPERATOR_PORT) },
    { name: 'LEADER_ELECTION', value: String(leaderElection) },
    { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
    { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
    ...(options.logLevel ? [{ name: 'LOG_LEVEL', value: options.logLevel }] : []),
  ];
  const { deployment, pdb } = programWorkload({
    name,
    namespace,
    labels,
    selector,
    replicas,
    container: 'operator',
    image: options.image,
    ...(options.imagePullPolicy ? { imagePullPolicy: options.imagePullPolicy } : {}),
    ...(options.command ? { command: options.command } : {}),
    env,
    port: { name: 'http', number: OPERATOR_PORT },
    runAsUser: user,
    terminationGracePeriodSeconds: terminationGraceSeconds(),
    preStopSeconds: operatorShutdown.preStopSeconds,
    resources: {
      requests: { cpu: '50m', memory: '128Mi', ...options.resources?.requests },
      limits: { memory: '512Mi', ...options.resources?.limits },
    },
  });
  return [
    ...(options.namespace === false
      ? []
      : [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace, labels } } as Namespace]),
    ...crdManifests(operator.definition.resources),
    ...rbacManifests(operator),
    deployment,
    pdb,
  ];
}
