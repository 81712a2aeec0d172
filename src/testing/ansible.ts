import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensurePeers, runPeerCommand } from '../peers/index.ts';
import type { CommandResult, RunCommandOptions } from '../runtime/index.ts';

/** The Ansible programs {@link runAnsible} can run (all from the Debian `ansible` package). */
export type AnsibleTool =
  | 'ansible'
  | 'ansible-inventory'
  | 'ansible-playbook'
  | 'ansible-config'
  | 'ansible-doc'
  | 'ansible-galaxy';

/** Options of {@link runAnsible}. */
export interface RunAnsibleOptions extends RunCommandOptions {
  /** Which program to run. Default `ansible` (ad-hoc commands). */
  tool?: AnsibleTool;
}

/**
 * Run an Ansible program with an isolated home: a private ANSIBLE_HOME, local and remote temp dirs and
 * an empty ANSIBLE_CONFIG (so /etc/ansible/ansible.cfg and ~/.ansible never leak in), removed afterwards.
 * A broken inventory fails the run (`ANSIBLE_INVENTORY_UNPARSED_FAILED=true`) instead of being only a
 * warning. `options.env` is laid over these defaults. Non-zero exits throw `CAP_ERR_PEER_COMMAND_FAILED`
 * unless `allowFailure`.
 */
export async function runAnsible(
  args: readonly string[],
  options: RunAnsibleOptions = {},
): Promise<CommandResult> {
  ensurePeers(['ansible']);
  const home = mkdtempSync(join(tmpdir(), 'capstan-ansible-'));
  try {
    const config = join(home, 'ansible.cfg');
    writeFileSync(config, '[defaults]\n');
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      HOME: home,
      ANSIBLE_CONFIG: config,
      ANSIBLE_HOME: join(home, '.ansible'),
      ANSIBLE_LOCAL_TEMP: join(home, 'tmp'),
      ANSIBLE_REMOTE_TEMP: join(home, 'remote-tmp'),
      ANSIBLE_INVENTORY_UNPARSED_FAILED: 'true',
      ANSIBLE_HOST_KEY_CHECKING: 'False',
      ANSIBLE_RETRY_FILES_ENABLED: 'False',
      ANSIBLE_NOCOLOR: '1',
      ANSIBLE_FORCE_COLOR: '0',
      // Interpreter discovery prints a warning per host; tests compare output.
      ANSIBLE_PYTHON_INTERPRETER: 'auto_silent',
      ...options.env,
    };
    return await runPeerCommand('ansible', options.tool ?? 'ansible', args, { ...options, env });
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
}
