import { Command } from 'commander';
import { clusterCommand } from './dev-cluster.ts';
import { runAction } from './run-action.ts';

/** `capstan dev`: peers and local clusters for development. */
export function command(): Command {
  const dev = new Command('dev').description('Local development: peers and a local control plane');
  const peers = dev.command('peers').description('Peer programs Capstan is tested against');
  peers
    .command('status')
    .description('Show which peers are installed and where')
    .option('--json', 'print JSON')
    .action((opts: { json?: boolean }) =>
      runAction('capstan dev peers status', async () => {
        const { peerStatus } = await import('../peers/index.ts');
        const rows = peerStatus();
        if (opts.json) {
          process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
          return;
        }
        for (const r of rows) {
          process.stdout.write(
            `${r.name.padEnd(12)} ${r.installed ? 'installed' : 'missing  '} ${r.version.padEnd(14)} ${r.source}  ${r.where}\n`,
          );
        }
      }),
    );
  peers
    .command('ensure')
    .description('Install the named peers (or the test suite set)')
    .argument('[names...]')
    .option('--suite', 'the peers `npm test` needs')
    .action((names: string[], opts: { suite?: boolean }) =>
      runAction('capstan dev peers ensure', async () => {
        const { ensurePeers, peerCatalogue } = await import('../peers/index.ts');
        const list = opts.suite || names.length === 0 ? peerCatalogue().suite : names;
        ensurePeers(list, (line) => process.stderr.write(`[peers] ${line}\n`));
      }),
    );
  dev.addCommand(clusterCommand());
  return dev;
}
