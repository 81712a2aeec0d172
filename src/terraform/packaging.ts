// A provider as Terraform/OpenTofu find it without a registry: one executable named
// `terraform-provider-<name>_v<version>` in a filesystem mirror's unpacked layout
// (`<mirror>/<host>/<namespace>/<name>/<version>/<os>_<arch>/`), or in a folder `dev_overrides` points at.
// The executable is a small launcher script that runs the provider module with this Node: no bundling
// step, and a provider written in TypeScript runs from source (`--conditions=capstan-source` when the
// module is a .ts file inside a Capstan checkout).
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { TerraformError, TerraformErrorCode } from './errors.ts';

/** Options of {@link installProvider}. */
export interface InstallProviderOptions {
  /** Provider name: `capstanplatform` for `terraform-provider-capstanplatform`. */
  name: string;
  /** Absolute path of the module whose last line is `await serveProvider(provider)`. */
  entry: string;
  /** Root of the filesystem mirror to write into. */
  mirror: string;
  /** Version in the mirror (what `required_providers` asks for). Default `0.0.1`. */
  version?: string;
  /** Namespace in the source address (`capstan/<name>`). Default `capstan`. */
  namespace?: string;
  /** Registry host of the source address. Default `registry.opentofu.org` (what `capstan/x` means to tofu). */
  hostname?: string;
  /** Node binary. Default this process's (`process.execPath`). */
  node?: string;
  /** Node options before the entry. Default `--conditions=capstan-source` for a .ts entry, none otherwise. */
  nodeOptions?: string[];
  /** Extra environment variables set by the launcher (e.g. an API endpoint for tests). */
  env?: Record<string, string>;
}

/** Where {@link installProvider} put the provider. */
export interface InstalledProvider {
  /** The launcher: the provider executable. */
  executable: string;
  /** The folder holding it (what `dev_overrides` maps the source to). */
  dir: string;
  /** `<namespace>/<name>` as written in `required_providers`. */
  source: string;
  /** The version installed. */
  version: string;
  /** A CLI configuration (`TF_CLI_CONFIG_FILE`) that installs this provider from the mirror and nothing else from it. */
  mirrorConfig: string;
  /** A CLI configuration that skips `init` for this provider and runs the executable from `dir`. */
  devOverridesConfig: string;
}

const GOARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64', ia32: '386', arm: 'arm' };

/** Terraform's platform name of this machine: `linux_amd64`. */
export function terraformPlatform(): string {
  return `${process.platform}_${GOARCH[process.arch] ?? process.arch}`;
}

function shellQuote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

function hclString(s: string): string {
  return JSON.stringify(s);
}

/**
 * Write the launcher of a provider into a filesystem mirror (unpacked layout) and return where it is,
 * with the CLI configurations that make `tofu init` (mirror) or `tofu plan` (dev_overrides) use it.
 */
export function installProvider(options: InstallProviderOptions): InstalledProvider {
  if (!/^[a-z][a-z0-9-]*$/.test(options.name)) {
    throw new TerraformError(
      TerraformErrorCode.packaging,
      `provider name "${options.name}" is not a valid type name`,
    );
  }
  if (!isAbsolute(options.entry) || !isAbsolute(options.mirror)) {
    throw new TerraformError(TerraformErrorCode.packaging, 'entry and mirror must be absolute paths');
  }
  const version = options.version ?? '0.0.1';
  const namespace = options.namespace ?? 'capstan';
  const hostname = options.hostname ?? 'registry.opentofu.org';
  const dir = join(options.mirror, hostname, namespace, options.name, version, terraformPlatform());
  mkdirSync(dir, { recursive: true });
  const executable = join(dir, `terraform-provider-${options.name}_v${version}`);
  const nodeOptions =
    options.nodeOptions ?? (options.entry.endsWith('.ts') ? ['--conditions=capstan-source'] : []);
  const env = Object.entries(options.env ?? {}).map(([k, v]) => `export ${k}=${shellQuote(v)}\n`);
  writeFileSync(
    executable,
    [
      '#!/bin/sh\n',
      `# terraform-provider-${options.name} ${version}: written by capstan/terraform installProvider.\n`,
      ...env,
      `exec ${[options.node ?? process.execPath, ...nodeOptions, options.entry].map(shellQuote).join(' ')} "$@"\n`,
    ].join(''),
  );
  chmodSync(executable, 0o755);
  const address = `${hostname}/${namespace}/${options.name}`;
  return {
    executable,
    dir,
    source: `${namespace}/${options.name}`,
    version,
    mirrorConfig: [
      'provider_installation {',
      `  filesystem_mirror {\n    path    = ${hclString(options.mirror)}\n    include = [${hclString(address)}]\n  }`,
      `  direct {\n    exclude = [${hclString(address)}]\n  }`,
      '}',
      '',
    ].join('\n'),
    devOverridesConfig: [
      'provider_installation {',
      `  dev_overrides {\n    ${hclString(address)} = ${hclString(dir)}\n  }`,
      '  direct {}',
      '}',
      '',
    ].join('\n'),
  };
}
