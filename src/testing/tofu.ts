import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensurePeers, peerBinary, runPeerCommand } from '../peers/index.ts';
import type { CommandResult, RunCommandOptions } from '../runtime/index.ts';

/** Options of {@link runTofu}. `cwd` is the root module (where `.terraform/` and the state land). */
export type RunTofuOptions = RunCommandOptions;

/** Path of the pinned `tofu` binary, building it on first use (see scripts/peers/versions.json). */
export function tofuBinary(): string {
  ensurePeers(['tofu']);
  return peerBinary('tofu', 'tofu');
}

/**
 * Run the pinned OpenTofu CLI (built from the Go module proxy) non-interactively: no prompts
 * (`TF_INPUT=0`), automation-style output, no update checks, colourless, and an empty CLI config so
 * ~/.tofurc, credentials and plugin caches never leak in. `options.env` is laid over these defaults, so
 * a caller can set `TF_CLI_CONFIG_FILE` (e.g. dev_overrides for a provider under test).
 * Non-zero exits throw `CAP_ERR_PEER_COMMAND_FAILED` unless `allowFailure` (`plan -detailed-exitcode`
 * exits 2 for "changes present": pass `allowFailure` and read `code`).
 */
export async function runTofu(args: readonly string[], options: RunTofuOptions = {}): Promise<CommandResult> {
  const binary = tofuBinary();
  const home = mkdtempSync(join(tmpdir(), 'capstan-tofu-'));
  try {
    const cliConfig = join(home, 'tofurc');
    writeFileSync(cliConfig, '');
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      HOME: home,
      TF_CLI_CONFIG_FILE: cliConfig,
      TF_INPUT: '0',
      TF_IN_AUTOMATION: '1',
      CHECKPOINT_DISABLE: '1',
      NO_COLOR: '1',
      ...options.env,
    };
    // -no-color exists per subcommand only; NO_COLOR is not honoured by every one of them.
    const withColorFlag = args.length > 0 && !args.includes('-no-color') && colorable.has(args[0]!);
    const finalArgs = withColorFlag ? [args[0]!, '-no-color', ...args.slice(1)] : args;
    return await runPeerCommand('tofu', binary, finalArgs, { ...options, env });
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
}

const colorable = new Set([
  'init',
  'validate',
  'plan',
  'apply',
  'destroy',
  'refresh',
  'output',
  'show',
  'import',
]);
