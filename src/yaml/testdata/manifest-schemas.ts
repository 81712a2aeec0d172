// Detailed schemas for three built-in kinds (the fields real manifests use), for tests, the benchmark and
// `capstan yaml validate --schema src/yaml/testdata/manifest-schemas.ts#Deployment`.
import { kubeObject, objectMetaSchema } from 'capstan/yaml';
import { z } from 'zod';

const Quantity = z.union([z.string(), z.number()]);
const IntOrString = z.union([z.number().int(), z.string()]);

const EnvVar = z.object({
  name: z.string(),
  value: z.string().optional(),
  valueFrom: z
    .object({
      secretKeyRef: z.object({ name: z.string(), key: z.string(), optional: z.boolean().optional() }).optional(),
      configMapKeyRef: z.object({ name: z.string(), key: z.string(), optional: z.boolean().optional() }).optional(),
      fieldRef: z.object({ fieldPath: z.string(), apiVersion: z.string().optional() }).optional(),
    })
    .optional(),
});

const Probe = z.object({
  httpGet: z.object({ path: z.string().optional(), port: IntOrString, scheme: z.string().optional() }).optional(),
  tcpSocket: z.object({ port: IntOrString }).optional(),
  exec: z.object({ command: z.array(z.string()) }).optional(),
  initialDelaySeconds: z.number().int().optional(),
  periodSeconds: z.number().int().optional(),
  timeoutSeconds: z.number().int().optional(),
  failureThreshold: z.number().int().optional(),
  successThreshold: z.number().int().optional(),
});

const Container = z.object({
  name: z.string(),
  image: z.string(),
  imagePullPolicy: z.enum(['Always', 'IfNotPresent', 'Never']).optional(),
  command: z.array(z.string()).optional(),
  args: z.array(z.string()).optional(),
  workingDir: z.string().optional(),
  ports: z
    .array(
      z.object({
        name: z.string().optional(),
        containerPort: z.number().int(),
        protocol: z.enum(['TCP', 'UDP', 'SCTP']).optional(),
        hostPort: z.number().int().optional(),
      }),
    )
    .optional(),
  env: z.array(EnvVar).optional(),
  resources: z
    .object({
      requests: z.record(z.string(), Quantity).optional(),
      limits: z.record(z.string(), Quantity).optional(),
    })
    .optional(),
  volumeMounts: z
    .array(
      z.object({
        name: z.string(),
        mountPath: z.string(),
        readOnly: z.boolean().optional(),
        subPath: z.string().optional(),
      }),
    )
    .optional(),
  readinessProbe: Probe.optional(),
  livenessProbe: Probe.optional(),
  startupProbe: Probe.optional(),
  securityContext: z
    .object({
      runAsNonRoot: z.boolean().optional(),
      runAsUser: z.number().int().optional(),
      readOnlyRootFilesystem: z.boolean().optional(),
      allowPrivilegeEscalation: z.boolean().optional(),
      capabilities: z.object({ add: z.array(z.string()).optional(), drop: z.array(z.string()).optional() }).optional(),
    })
    .optional(),
});

const Volume = z.object({
  name: z.string(),
  configMap: z.object({ name: z.string(), defaultMode: z.number().int().optional() }).optional(),
  secret: z.object({ secretName: z.string(), defaultMode: z.number().int().optional() }).optional(),
  emptyDir: z.object({ medium: z.string().optional(), sizeLimit: Quantity.optional() }).optional(),
  persistentVolumeClaim: z.object({ claimName: z.string(), readOnly: z.boolean().optional() }).optional(),
});

const LabelSelector = z.object({
  matchLabels: z.record(z.string(), z.string()).optional(),
  matchExpressions: z
    .array(z.object({ key: z.string(), operator: z.string(), values: z.array(z.string()).optional() }))
    .optional(),
});

const PodSpec = z.object({
  containers: z.array(Container).min(1),
  initContainers: z.array(Container).optional(),
  volumes: z.array(Volume).optional(),
  serviceAccountName: z.string().optional(),
  nodeSelector: z.record(z.string(), z.string()).optional(),
  terminationGracePeriodSeconds: z.number().int().optional(),
  restartPolicy: z.enum(['Always', 'OnFailure', 'Never']).optional(),
  securityContext: z
    .object({ runAsUser: z.number().int().optional(), fsGroup: z.number().int().optional(), runAsNonRoot: z.boolean().optional() })
    .optional(),
  tolerations: z
    .array(
      z.object({
        key: z.string().optional(),
        operator: z.string().optional(),
        value: z.string().optional(),
        effect: z.string().optional(),
      }),
    )
    .optional(),
});

/** apps/v1 Deployment, the fields manifests commonly set. */
export const Deployment = kubeObject({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  spec: z.object({
    replicas: z.number().int().min(0).optional(),
    revisionHistoryLimit: z.number().int().optional(),
    selector: LabelSelector,
    strategy: z
      .object({
        type: z.enum(['RollingUpdate', 'Recreate']).optional(),
        rollingUpdate: z.object({ maxSurge: IntOrString.optional(), maxUnavailable: IntOrString.optional() }).optional(),
      })
      .optional(),
    template: z.object({
      metadata: z
        .object({
          labels: z.record(z.string(), z.string()).optional(),
          annotations: z.record(z.string(), z.string()).optional(),
        })
        .optional(),
      spec: PodSpec,
    }),
  }),
});

/** v1 Service. */
export const Service = kubeObject({
  apiVersion: 'v1',
  kind: 'Service',
  spec: z.object({
    type: z.enum(['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName']).optional(),
    selector: z.record(z.string(), z.string()).optional(),
    clusterIP: z.string().optional(),
    ports: z.array(
      z.object({
        name: z.string().optional(),
        port: z.number().int(),
        targetPort: IntOrString.optional(),
        protocol: z.enum(['TCP', 'UDP', 'SCTP']).optional(),
        nodePort: z.number().int().optional(),
      }),
    ),
  }),
});

/** v1 ConfigMap: no spec, so its own strict object. */
export const ConfigMap = z.object({
  apiVersion: z.literal('v1'),
  kind: z.literal('ConfigMap'),
  metadata: objectMetaSchema,
  data: z.record(z.string(), z.string()).optional(),
  binaryData: z.record(z.string(), z.string()).optional(),
  immutable: z.boolean().optional(),
});

/** The three, for `schemaByKind`. */
export const manifestSchemas = [
  { apiVersion: 'apps/v1', kind: 'Deployment', schema: Deployment },
  { apiVersion: 'v1', kind: 'Service', schema: Service },
  { apiVersion: 'v1', kind: 'ConfigMap', schema: ConfigMap },
];
