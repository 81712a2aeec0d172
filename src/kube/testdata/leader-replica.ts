// A replica of an operator in its own process, for the leader-election test to SIGKILL: it campaigns for the
// lease `mirror-operator` in $NAMESPACE as $IDENTITY and prints `leading` once it leads.
import { Action, ConfigMap, controller, KubeClient, Manager } from '../index.ts';

const client = await KubeClient.fromKubeconfig({ path: process.env['KUBECONFIG_PATH'] ?? '' });
const manager = new Manager({
  client,
  leaderElection: {
    name: 'mirror-operator',
    namespace: process.env['NAMESPACE'] ?? '',
    identity: process.env['IDENTITY'] ?? 'child',
    leaseDurationMs: 3_000,
    renewDeadlineMs: 2_000,
    retryPeriodMs: 500,
  },
});
manager.add(
  controller(ConfigMap)
    .inNamespace(process.env['NAMESPACE'] ?? '')
    .build(async () => {
      if (manager.isLeader) process.stdout.write('leading\n');
      return Action.awaitChange();
    }),
);
await manager.run();
