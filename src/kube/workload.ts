// The Deployment and PodDisruptionBudget of one Capstan program (an operator, a webhook): the runtime's health
// paths as probes, a preStop sleep for the drain, a restricted security context with an emptyDir on /tmp.
import type { Deployment, PodDisruptionBudget } from './builtin.ts';

type Container = NonNullable<NonNullable<Deployment['spec']>['template']['spec']>['containers'][number];

/** What differs between the programs {@link programWorkload} deploys. */
export interface ProgramWorkloadOptions {
  name: string;
  namespace: string;
  labels: Record<string, string>;
  selector: Record<string, string>;
  replicas: number;
  /** The container's name. */
  container: string;
  image: string;
  /** Default `IfNotPresent`. */
  imagePullPolicy?: 'Always' | 'IfNotPresent' | 'Never';
  command?: readonly string[];
  env: NonNullable<Container['env']>;
  /** The port the program's health paths answer on, and whether it speaks HTTPS there. */
  port: { name: string; number: number; scheme?: 'HTTPS' };
  /** The user (and group) the pod runs as: non-root. */
  runAsUser: number;
  terminationGracePeriodSeconds: number;
  preStopSeconds: number;
  /** The program's defaults and the user's overrides (no CPU limit: throttling slows a control loop). */
  resources: {
    requests: Record<string, string>;
    limits: Record<string, string>;
  };
}

/**
 * The program's Deployment (probes on `/livez` and `/readyz` — a startup probe keeps liveness from killing a
 * slow start, such as an operator's first list — a preStop sleep so endpoints drop the pod before it stops
 * answering, a restricted security context: non-root, read-only root filesystem, no capabilities,
 * RuntimeDefault seccomp) and a PodDisruptionBudget allowing one pod down at a time.
 */
export function programWorkload(o: ProgramWorkloadOptions): {
  deployment: Deployment;
  pdb: PodDisruptionBudget;
} {
  const { name, namespace, labels, selector } = o;
  const probe = (path: string, failureThreshold: number) => ({
    httpGet: { path, port: o.port.name, ...(o.port.scheme ? { scheme: o.port.scheme } : {}) },
    periodSeconds: 10,
    timeoutSeconds: 2,
    failureThreshold,
  });
  const deployment = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace, labels },
    spec: {
      replicas: o.replicas,
      selector: { matchLabels: selector },
      template: {
        metadata: { labels },
        spec: {
          serviceAccountName: name,
          terminationGracePeriodSeconds: o.terminationGracePeriodSeconds,
          securityContext: {
            runAsNonRoot: true,
            runAsUser: o.runAsUser,
            runAsGroup: o.runAsUser,
            seccompProfile: { type: 'RuntimeDefault' },
          },
          containers: [
            {
              name: o.container,
              image: o.image,
              imagePullPolicy: o.imagePullPolicy ?? 'IfNotPresent',
              ...(o.command ? { command: [...o.command] } : {}),
              env: o.env,
              ports: [{ name: o.port.name, containerPort: o.port.number, protocol: 'TCP' }],
              startupProbe: probe('/livez', 30),
              livenessProbe: probe('/livez', 3),
              readinessProbe: probe('/readyz', 1),
              lifecycle: { preStop: { sleep: { seconds: o.preStopSeconds } } },
              resources: o.resources,
              securityContext: {
                allowPrivilegeEscalation: false,
                readOnlyRootFilesystem: true,
                runAsNonRoot: true,
                capabilities: { drop: ['ALL'] },
              },
              volumeMounts: [{ name: 'tmp', mountPath: '/tmp' }],
            },
          ],
          volumes: [{ name: 'tmp', emptyDir: {} }],
        },
      },
    },
  } as Deployment;
  const pdb = {
    apiVersion: 'policy/v1',
    kind: 'PodDisruptionBudget',
    metadata: { name, namespace, labels },
    spec: { maxUnavailable: 1, selector: { matchLabels: selector } },
  } as PodDisruptionBudget;
  return { deployment, pdb };
}
