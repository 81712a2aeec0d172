#!/usr/bin/env node
// The `capstan` CLI. Command groups are listed here with a one-line summary and loaded only when run,
// so `capstan --help` never imports a heavy SDK.
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { ExitCode } from './exit-code.ts';

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
    name: 'crd',
    summary: 'CustomResourceDefinitions from custom resources defined in TypeScript',
    load: () => import('./crd.ts'),
  },
  {
    name: 'kube',
    summary: 'Operators: least-privilege RBAC, deploy manifests, a new project',
    load: () => import('./kube.ts'),
  },
  {
    name: 'scale',
    summary: 'Set the replicas of a Deployment, StatefulSet or CRD through its scale subresource',
    load: () => import('./scale.ts'),
  },
  {
    name: 'webhook',
    summary: 'Admission webhooks: configurations for the apiserver',
    load: () => import('./webhook.ts'),
  },
  {
    name: 'autoscale',
    summary:
      'Scale on RabbitMQ queue depth or a Prometheus query (HPA formula, stabilization, hold on failure)',
    load: () => import('./autoscale.ts'),
  },
  {
    name: 'external-metrics',
    summary: 'External Metrics API adapter: the APIService, Service and RBAC that register it',
    load: () => import('./external-metrics.ts'),
  },
  {
    name: 'lb',
    summary: 'Load-balancing reverse proxy with health checks, outlier ejection and retries',
    load: () => import('./lb.ts'),
  },
  {
    name: 'yaml',
    summary: 'YAML files: get, set in place (comments kept), validate strictly, format',
    load: () => import('./yaml.ts'),
  },
  {
    name: 'inventory',
    summary: 'Ansible dynamic inventory from Docker, Consul, Kubernetes and static files, with group rules',
    load: () => import('./inventory.ts'),
  },
  {
    name: 'helm',
    summary: 'Helm plugins: chart lint against the cluster, encrypted values, s3:// repositories',
    load: () => import('./helm.ts'),
  },
  {
    name: 'xds',
    summary: 'xDS control plane (ADS, SotW and delta) serving a mesh file to proxyless gRPC clients',
    load: () => import('./xds.ts'),
  },
  {
    name: 'run',
    summary:
      'Run targets of a capstanfile.ts (Mage-style: exported functions, deps once each, up-to-date skips)',
    load: () => import('./run.ts'),
  },
  {
    name: 'build-binary',
    summary: 'Build a single executable (no Node, no node_modules) of the capstan CLI or your own tool',
    load: () => import('./build-binary.ts'),
  },
  {
    name: 'parallel',
    summary: 'Run a command per item, N at a time, with per-item timeout and retries (GNU parallel style)',
    load: () => import('./parallel.ts'),
  },
  {
    name: 'cloud',
    summary: 'Cloud resources through the official SDKs: capstan cloud aws s3 ls|du|gc',
    load: () => import('./cloud.ts'),
  },
  {
    name: 'logs',
    summary: 'Follow container logs (merged, no line lost or repeated)',
    load: () => import('./logs.ts'),
  },
];

// `capstan build-binary` bakes the version in: a single executable has no package.json beside it.
declare const CAPSTAN_VERSION: string | undefined;

function packageVersion(): string {
  if (typeof CAPSTAN_VERSION === 'string') return CAPSTAN_VERSION;
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));
  return pkg.version;
}

/**
 * Commander exits by itself on a parse error; make it throw instead, on `cmd` and every subcommand, so
 * {@link main} chooses the status. Subcommands copy this setting only when created after it, hence the walk.
 */
function throwOnParseError(cmd: Command): Command {
  cmd.exitOverride();
  for (const sub of cmd.commands) throwOnParseError(sub);
  return cmd;
}

/**
 * Run the CLI on `argv` (without node and the script). Sets `process.exitCode`: a parse error (unknown
 * command or option, bad choice) is a usage error, exit 2; commands set theirs through `runAction`.
 */
export async function main(argv: string[]): Promise<void> {
  const program = new Command('capstan')
    .description('Platform engineering in TypeScript')
    .version(packageVersion(), '-v, --version')
    .showHelpAfterError()
    .exitOverride();
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
        const sub = throwOnParseError(command().name(group.name));
        await sub.parseAsync(args, { from: 'user' });
      });
  }
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (err) {
    // Commander has printed the reason already; `--help` and `--version` come here too, with status 0.
    if (err instanceof CommanderError) {
      process.exitCode = err.exitCode === 0 ? ExitCode.ok : ExitCode.usage;
      return;
    }
    // A command not yet on runAction: same message and status rules. Loaded only now: it loads the runtime.
    const { reportError } = await import('./run-action.ts');
    process.exitCode = reportError('capstan', err);
  }
}

// Not a top-level await: the same module is the entry of the single executable, which runs as CommonJS.
void main(process.argv.slice(2));
