/**
 * A Deployment whose pods never need to run: the scaling tests read and write its Scale subresource only
 * (the image does not exist, and no node is asked for).
 */
export function deployment(name: string, replicas: number) {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name },
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: { containers: [{ name: 'main', image: 'registry.invalid/none:1' }] },
      },
    },
  };
}
