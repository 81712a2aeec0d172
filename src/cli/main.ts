#!/usr/bin/env node
// The `capstan` CLI. Command groups are listed here with a one-line summary and loaded only when run,
// so `capstan --help` never imports a heavy SDK.
import { readFileSync } from 'node:fs';
import { Command } from 'commander';

/** One command group: its module exports `command()` building the group's commander Command. */
interface CommandGroup {
  name: string;
  summary: string;
  load: () => Promise<{ command: () => Command }>;
}

const groups: CommandGroup[] = [
  {
    name: 'up',
    summary: 'Start every Capstan service on this machine on embedded defaults',
    load: () => import('./up.ts'),
  },
  {
    name: 'dev',
    summary: 'Local development: peers and a local control plane',
    load: () => import('./dev.ts'),
  },
  {
    name: 'config',
    summary: 'Document and check environment configuration',
    load: () => import('./config.ts'),
  },
  {
    name: 'docker',
    summary: 'Docker Engine helpers: sidecar event watch',
    load: () => import('./docker.ts'),
  },
  {
    name: 'logs',
    summary: 'Follow container logs (merged, no line lost or repeated)',
    load: () => import('./logs.ts'),
  },
];

function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));
  return pkg.version;
}

export async function main(argv: string[]): Promise<void> {
  const program = new Command('capstan')
    .description('Platform engineering in TypeScript')
    .version(packageVersion(), '-v, --version')
    .showHelpAfterError();
  for (const group of groups) {
    program
      .command(group.name)
      .description(group.summary)
      .helpOption(false)
      .allowUnknownOption()
      .allowExcessArguments()
      .argument('[args...]')
      .action(async (args: string[]) => {
        const { command } = await group.load();
        const sub = command().name(group.name);
        await sub.parseAsync(args, { from: 'user' });
      });
  }
  await program.parseAsync(argv, { from: 'user' });
}

await main(process.argv.slice(2));
