// `capstan helm`: what the Capstan Helm plugin runs (`helm capstan <args>` is `capstan helm <args>`), and the
// commands that install plugins into Helm.
import { readFileSync, writeFileSync } from 'node:fs';
import { extname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import type { HelmPlugin, SecretsMode } from '../helm/index.ts';
import { CliError, CliErrorCode } from './errors.ts';
import { runAction } from './run-action.ts';
import { importUserModule, oneExport } from './user-module.ts';

/** This CLI's entry (`main.ts` in the source, `main.js` once built), for launchers that run it again. */
function cliEntry(): string {
  const here = fileURLToPath(import.meta.url);
  return fileURLToPath(new URL(`./main${extname(here)}`, import.meta.url));
}

/** The Node flags a launcher must repeat: `--conditions` (running from source needs `capstan-source`). */
function nodeConditions(): string[] {
  const flags: string[] = [];
  const argv = process.execArgv;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a.startsWith('--conditions=') || (a.startsWith('-C') && a.length > 2)) flags.push(a);
    else if ((a === '--conditions' || a === '-C') && i + 1 < argv.length) flags.push(a, argv[++i]!);
  }
  return flags;
}

/** The program a launcher runs to reach `capstan helm ...`: this Node, its conditions, this CLI. */
function capstanExec(): string[] {
  return [process.execPath, ...nodeConditions(), cliEntry(), 'helm'];
}

async function pluginIn(modulePath: string, exportName?: string): Promise<HelmPlugin> {
  const { exportedHelmPlugins } = await import('../helm/index.ts');
  const mod = await importUserModule(modulePath);
  return oneExport(
    modulePath,
    exportedHelmPlugins(mod),
    exportName,
    'Helm plugin',
    'export const plugin = defineHelmPlugin({ ... })',
  );
}

/** The launcher program for a module's plugin: `capstan helm plugin run <module> [--export=name]`. */
function moduleExec(modulePath: string, exportName?: string): string[] {
  return [
    ...capstanExec(),
    'plugin',
    'run',
    resolve(modulePath),
    ...(exportName ? [`--export=${exportName}`] : []),
  ];
}

function secretsMode(value: string): SecretsMode {
  if (value !== 'values' && value !== 'file')
    throw new CliError(CliErrorCode.usage, `--mode: values or file, not ${value}`);
  return value;
}

/** A command whose arguments and options all go to helm untouched. */
function passThrough(
  parent: Command,
  name: string,
  description: string,
  action: (args: string[]) => Promise<void>,
) {
  parent
    .command(name)
    .description(description)
    .helpOption(false)
    .allowUnknownOption()
    .allowExcessArguments()
    .argument('[args...]')
    .action(action);
}

/** `capstan helm`: the Capstan Helm plugin's commands and plugin installation. */
export function command(): Command {
  const helm = new Command('helm').description(
    'Helm: the Capstan plugin (lint against the cluster, encrypted values, s3:// repositories) and plugin installation',
  );

  passThrough(
    helm,
    'lint',
    'Render a chart (helm template <chart> [flags]) and validate every manifest with the cluster (server-side dry run)',
    (args) =>
      runAction('helm capstan lint', async ({ signal }) => {
        if (args.length === 0 || args[0] === '--help' || args[0] === '-h') {
          process.stdout.write('Usage: helm capstan lint <chart> [helm template flags]\n');
          return args.length === 0 ? 2 : 0;
        }
        const { helmEnv, lintChart, formatLintProblem, loadSecretsKey, HelmError, HelmErrorCode } =
          await import('../helm/index.ts');
        const report = await lintChart(args, { env: helmEnv(), key: () => loadSecretsKey(), signal });
        for (const note of report.notes) process.stderr.write(`note: ${note}\n`);
        if (report.problems.length > 0) {
          const lines = report.problems.map((p) => `  ${formatLintProblem(p)}`);
          throw new HelmError(
            HelmErrorCode.lintFailed,
            `${report.problems.length} problem(s) in ${report.manifests} manifest(s):\n${lines.join('\n')}`,
            { problems: report.problems.map(formatLintProblem) },
          );
        }
        process.stdout.write(`${report.manifests} manifest(s) valid on the cluster\n`);
      }),
  );

  // Raw arguments: Helm passes empty strings for the TLS files it was not given, which commander drops.
  passThrough(
    helm,
    'download',
    "Helm's downloader contract for s3:// URLs: certFile keyFile caFile URL in, the bytes on stdout",
    (args) =>
      runAction('helm capstan download', async ({ signal }) => {
        const { runDownloader, s3Downloader } = await import('../helm/index.ts');
        return runDownloader([s3Downloader], args, { signal });
      }),
  );

  const s3 = helm.command('s3').description('s3:// chart repositories');
  s3.command('push')
    .description(
      'Upload a packaged chart to an s3:// repository and add it to its index.yaml (created if missing)',
    )
    .argument('<chart>', 'a chart archive (helm package output)')
    .argument('<repository>', 's3://bucket/prefix')
    .option('--force', 'replace the version if the repository has it')
    .action((chart: string, repository: string, opts: { force?: boolean }) =>
      runAction('helm capstan s3 push', async ({ signal }) => {
        const { pushChart, s3SettingsFromEnv } = await import('../helm/index.ts');
        const pushed = await pushChart(chart, repository, s3SettingsFromEnv(), {
          force: opts.force ?? false,
          signal,
        });
        process.stdout.write(`pushed ${pushed.name} ${pushed.version} to ${pushed.url}\n`);
      }),
    );

  const secrets = helm
    .command('secrets')
    .description(
      'Encrypted values files (AES-256-GCM; key in CAPSTAN_HELM_SECRETS_KEY or CAPSTAN_HELM_SECRETS_KEY_FILE); ' +
        'install/upgrade/template pass them to helm decrypted through pipes, never through a file',
    );
  secrets
    .command('keygen')
    .description('Print a new random key (base64, 32 bytes)')
    .action(() =>
      runAction('helm capstan secrets keygen', async () => {
        const { generateSecretsKey } = await import('../helm/index.ts');
        process.stdout.write(`${generateSecretsKey()}\n`);
      }),
    );
  secrets
    .command('encrypt')
    .description('Encrypt a values file: each value (default) or the whole file')
    .argument('<file>')
    .option('-i, --in-place', 'replace the file with its encrypted form')
    .option('-o, --output <file>', 'write here instead of stdout')
    .option('--mode <mode>', 'values (keys stay readable) or file', secretsMode, 'values' as SecretsMode)
    .option('--key-file <file>', 'the key, instead of the environment')
    .action(
      (file: string, opts: { inPlace?: boolean; output?: string; mode: SecretsMode; keyFile?: string }) =>
        runAction('helm capstan secrets encrypt', async () => {
          const { encryptSecrets, loadSecretsKey } = await import('../helm/index.ts');
          const key = loadSecretsKey(opts.keyFile ? { keyFile: opts.keyFile } : {});
          const out = encryptSecrets(readFileSync(file, 'utf8'), key, { mode: opts.mode, source: file });
          const target = opts.inPlace ? file : opts.output;
          if (target) writeFileSync(target, out);
          else process.stdout.write(out);
        }),
    );
  secrets
    .command('decrypt')
    .description('Print a decrypted values file (to stdout unless -o names a file)')
    .argument('<file>')
    .option('-o, --output <file>', 'write the plaintext here (on disk: your choice)')
    .option('--key-file <file>', 'the key, instead of the environment')
    .action((file: string, opts: { output?: string; keyFile?: string }) =>
      runAction('helm capstan secrets decrypt', async () => {
        const { decryptSecrets, loadSecretsKey } = await import('../helm/index.ts');
        const key = loadSecretsKey(opts.keyFile ? { keyFile: opts.keyFile } : {});
        const out = decryptSecrets(readFileSync(file, 'utf8'), key, file);
        if (opts.output) writeFileSync(opts.output, out, { mode: 0o600 });
        else process.stdout.write(out);
      }),
    );
  secrets
    .command('edit')
    .description(
      'Edit an encrypted file with $EDITOR; the plaintext lives in memory (/dev/shm) and is removed after',
    )
    .argument('<file>')
    .option('--key-file <file>', 'the key, instead of the environment')
    .action((file: string, opts: { keyFile?: string }) =>
      runAction('helm capstan secrets edit', async () => {
        const { editSecrets, loadSecretsKey } = await import('../helm/index.ts');
        const key = loadSecretsKey(opts.keyFile ? { keyFile: opts.keyFile } : {});
        const changed = await editSecrets(file, { key });
        process.stderr.write(changed ? `${file}: re-encrypted\n` : `${file}: unchanged\n`);
      }),
    );
  for (const verb of ['install', 'upgrade', 'template', 'lint', 'diff']) {
    passThrough(secrets, verb, `helm ${verb} with encrypted -f/--values files decrypted into pipes`, (args) =>
      runAction(`helm capstan secrets ${verb}`, async ({ signal }) => {
        const { helmEnv, loadSecretsKey, runHelmWithSecrets } = await import('../helm/index.ts');
        return runHelmWithSecrets([verb, ...args], { env: helmEnv(), key: () => loadSecretsKey(), signal });
      }),
    );
  }

  const plugin = helm
    .command('plugin')
    .description("Install Helm plugins: Capstan's own, or one defined with defineHelmPlugin");
  plugin
    .command('install')
    .description("Write a plugin folder and `helm plugin install` it (Capstan's plugin unless --module)")
    .option('--module <module>', '.ts or .js module exporting a plugin made by defineHelmPlugin')
    .option('--export <name>', 'the plugin export, when the module has several')
    .option(
      '--dir <dir>',
      'the plugin folder (kept: Helm links to it); default under $XDG_DATA_HOME/capstan/helm-plugins',
    )
    .option('--helm <path>', 'the helm binary (default $HELM_BIN, else helm on PATH)')
    .action((opts: { module?: string; export?: string; dir?: string; helm?: string }) =>
      runAction('capstan helm plugin install', async ({ signal }) => {
        const { capstanHelmPlugin, installHelmPlugin } = await import('../helm/index.ts');
        const target = opts.module ? await pluginIn(opts.module, opts.export) : capstanHelmPlugin;
        const exec = opts.module ? moduleExec(opts.module, opts.export) : capstanExec();
        const done = await installHelmPlugin(target, {
          exec,
          signal,
          ...(opts.dir ? { dir: resolve(opts.dir) } : {}),
          ...(opts.helm ? { helm: opts.helm } : {}),
        });
        process.stdout.write(
          `${done.installed ? 'installed' : 'refreshed'} Helm plugin ${done.name} (${done.dir}): helm ${done.name} --help\n`,
        );
      }),
    );
  plugin
    .command('write')
    .description('Write a plugin folder for `helm plugin install <dir>` without installing it')
    .argument('<dir>', 'the folder, named after the plugin')
    .option('--module <module>', '.ts or .js module exporting a plugin made by defineHelmPlugin')
    .option('--export <name>', 'the plugin export, when the module has several')
    .action((dir: string, opts: { module?: string; export?: string }) =>
      runAction('capstan helm plugin write', async () => {
        const { capstanHelmPlugin, writeHelmPluginDir } = await import('../helm/index.ts');
        const target = opts.module ? await pluginIn(opts.module, opts.export) : capstanHelmPlugin;
        const exec = opts.module ? moduleExec(opts.module, opts.export) : capstanExec();
        const written = writeHelmPluginDir(target, { dir: resolve(dir), exec });
        process.stdout.write(`${written.manifest}\n${written.launcher}\n`);
      }),
    );
  plugin
    .command('run')
    .description(
      "Run a module's plugin as Helm calls it (what the launcher of `plugin install --module` runs)",
    )
    .helpOption(false)
    .allowUnknownOption()
    .allowExcessArguments()
    .argument('<module>')
    .argument('[args...]')
    .action((modulePath: string, args: string[]) =>
      runAction('helm plugin', async ({ signal }) => {
        let exportName: string | undefined;
        if (args[0]?.startsWith('--export=')) exportName = args.shift()!.slice('--export='.length);
        const { runHelmPlugin } = await import('../helm/index.ts');
        return runHelmPlugin(await pluginIn(modulePath, exportName), args, { signal });
      }),
    );
  return helm;
}
