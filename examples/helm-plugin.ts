// A team's Helm plugin in a few lines: a command that reads Helm's environment and a downloader for
// `dir://` URLs (a chart repository in a local or mounted folder, e.g. a shared NFS path).
//
//   capstan helm plugin install --module examples/helm-plugin.ts
//   helm team whoami -n team-a
//   helm repo add shared dir:///mnt/charts && helm install web shared/shop
import { readFile } from 'node:fs/promises';
import { defineDownloader, defineHelmPlugin } from 'capstan/helm';

export const plugin = defineHelmPlugin({
  name: 'team',
  usage: 'team conventions for Helm: whoami, dir:// repositories',
  commands: {
    whoami: {
      usage: 'print the helm, context and namespace a release would go to',
      run({ env, args, stdout }) {
        stdout.write(
          `helm=${env.bin} context=${env.kubeContext ?? '(current)'} namespace=${env.namespace}\n`,
        );
        if (args.length > 0) stdout.write(`args=${args.join(' ')}\n`);
      },
    },
  },
  downloaders: [
    defineDownloader({
      protocols: ['dir'],
      // dir:///mnt/charts/index.yaml is the file /mnt/charts/index.yaml; a missing file fails with its reason.
      fetch: ({ url }) => readFile(decodeURIComponent(url.pathname)),
    }),
  ],
});
