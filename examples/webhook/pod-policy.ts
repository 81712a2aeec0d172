// A pod policy as an admission webhook: three rules, each one `when(...)` chain.
//
//   deny     a container that is privileged, may escalate privileges, or runs as root (runAsUser 0, its own
//            or the pod's)
//   label    every new pod gets `policy.capstan.dev/reviewed: "true"`
//   sidecar  a pod labelled `sidecar.capstan.dev/inject: "true"` gets a `capstan-sidecar` container
//            (image from SIDECAR_IMAGE)
//
// Register it and run it:
//
//   capstan webhook manifests examples/webhook/pod-policy.ts --service pod-policy-system/pod-policy \
//     --ca-bundle ca.pem | kubectl apply -f -
//   node examples/webhook/pod-policy.ts       # in its Deployment: certificates, CA bundle, TLS on 9443
//
// Outside a cluster: WEBHOOK_CERTIFICATES=memory WEBHOOK_REGISTER=none PORT=9443 node examples/webhook/pod-policy.ts
import { Pod } from 'capstan/kube';
import {
  type AdmissionContext,
  defineWebhook,
  runWebhook,
  type Verdict,
  type Webhook,
} from 'capstan/webhook';

/** The label every pod admitted by this webhook carries. */
export const REVIEWED_LABEL = 'policy.capstan.dev/reviewed';
/** Pods with this label set to "true" get the sidecar. */
export const INJECT_LABEL = 'sidecar.capstan.dev/inject';
/** The injected container's name. */
export const SIDECAR_NAME = 'capstan-sidecar';

type Container = NonNullable<Pod['spec']>['containers'][number];

/** Why a container may not run, or undefined when it may. */
export function containerProblem(pod: Pod, container: Container): string | undefined {
  const security = container.securityContext;
  if (security?.privileged) return `container ${container.name} is privileged`;
  if (security?.allowPrivilegeEscalation) return `container ${container.name} allows privilege escalation`;
  const runAsUser = security?.runAsUser ?? pod.spec?.securityContext?.runAsUser;
  if (runAsUser === 0) return `container ${container.name} runs as root (runAsUser 0)`;
  return undefined;
}

function checkPod(req: AdmissionContext<Pod, 'CREATE' | 'UPDATE'>): Verdict {
  const pod = req.object;
  const containers = [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])];
  for (const container of containers) {
    const problem = containerProblem(pod, container);
    if (problem) return req.deny(`${problem}: refused by pod-policy`);
  }
  return req.allow();
}

/** The pod policy, with the sidecar's image. */
export function podPolicy(options: { sidecarImage: string }): Webhook {
  const webhook = defineWebhook({
    name: 'pod-policy',
    failurePolicy: 'Fail',
    timeoutSeconds: 5,
    // The control plane's own pods are never held up by this policy.
    namespaceSelector: {
      matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system'] }],
    },
  });

  webhook.when(Pod).isCreatedOrUpdated().validate(checkPod);

  webhook
    .when(Pod)
    .isCreated()
    .mutate((req) => {
      req.object.metadata ??= {};
      req.object.metadata.labels = { ...req.object.metadata.labels, [REVIEWED_LABEL]: 'true' };
    });

  webhook
    .when(Pod)
    .isCreated()
    .withLabel(INJECT_LABEL, 'true')
    .mutate((req) => {
      const spec = req.object.spec;
      if (!spec || spec.containers.some((c) => c.name === SIDECAR_NAME)) return;
      spec.containers.push({
        name: SIDECAR_NAME,
        image: options.sidecarImage,
        command: ['sh', '-c', 'echo sidecar up; exec sleep 2147483647'],
        securityContext: { allowPrivilegeEscalation: false, runAsUser: 65534 },
        resources: { requests: { cpu: '10m', memory: '16Mi' }, limits: { memory: '32Mi' } },
      });
    });
  return webhook;
}

/** What `capstan webhook manifests` and the program below serve. */
export const webhook = podPolicy({ sidecarImage: process.env['SIDECAR_IMAGE'] || 'busybox:local' });

// PORT (9443), POD_NAMESPACE, WEBHOOK_CERTIFICATES, WEBHOOK_REGISTER, LOG_LEVEL... (see runWebhook).
if (import.meta.main) await runWebhook(webhook);
