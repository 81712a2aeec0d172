// `capstan run`: Mage's model for TypeScript — the exported functions of ./capstanfile.ts are targets.
import { Command } from 'commander';
import { CliError, CliErrorCode } from './errors.ts';
import { runAction } from './run-action.ts';

interface RunOptions {
  list?: boolean;
  file: string;
  serial?: boolean;
  force?: boolean;
  verbose?: boolean;
}

export function command(): Command {
  return new Command('run')
    .description(
      'Run targets of a capstanfile.ts (its exported functions; doc comments are their help): capstan run build, capstan run deploy staging 3, capstan run --list',
    )
    .argument('[target-and-args...]', 'targets, each followed by its arguments; none: the default export')
    .option('-l, --list', 'list the targets with their help')
    .option('-f, --file <path>', 'the capstanfile', 'capstanfile.ts')
    .option('--serial', 'run dependencies one after another instead of in parallel')
    .option('--force', 'run targets even when their outputs are up to date')
    .option('--verbose', 'say which targets run, are skipped and how long they took')
    .passThroughOptions()
    .action((words: string[], opts: RunOptions) =>
      runAction('capstan run', async ({ signal }) => {
        const {
          AutomationError,
          AutomationErrorCode,
          findTarget,
          loadTaskfile,
          parseTargetArgs,
          runTargets,
        } = await import('../automation/index.ts');
        try {
          const taskfile = await loadTaskfile(opts.file);
          if (opts.list) {
            process.stdout.write(listing(taskfile.targets));
            return;
          }
          const requests = [];
          if (words.length === 0) requests.push({ target: findTarget(taskfile, undefined), args: {} });
          for (let i = 0; i < words.length; ) {
            const target = findTarget(taskfile, words[i]!);
            const count = Object.keys(target.args).length;
            requests.push({ target, args: parseTargetArgs(target, words.slice(i + 1, i + 1 + count)) });
            i += 1 + count;
          }
          await runTargets(taskfile, requests, {
            signal,
            serial: opts.serial === true,
            force: opts.force === true,
            ...(opts.verbose
              ? { log: (line: string) => process.stderr.write(`[capstan run] ${line}\n`) }
              : {}),
          });
        } catch (err) {
          // A missing file, an unknown target or bad arguments are the user's typing: usage (exit 2).
          if (
            err instanceof AutomationError &&
            err.code === AutomationErrorCode.taskfile &&
            !signal.aborted
          ) {
            throw new CliError(CliErrorCode.usage, err.message, { cause: err });
          }
          throw err;
        }
      }),
    );
}

function listing(
  targets: ReadonlyArray<{ name: string; summary: string; isDefault: boolean; args: Record<string, string> }>,
): string {
  const rows = targets.map((t) => {
    const args = Object.entries(t.args)
      .map(([name, type]) => `<${name}${type === 'string' ? '' : `: ${type}`}>`)
      .join(' ');
    return [`${t.name}${t.isDefault ? '*' : ''}${args ? ` ${args}` : ''}`, t.summary];
  });
  const width = Math.max(0, ...rows.map(([left]) => left!.length));
  return `Targets:\n${rows.map(([left, summary]) => `  ${left!.padEnd(width)}  ${summary}`.trimEnd()).join('\n')}\n${targets.some((t) => t.isDefault) ? '\n* default target\n' : ''}`;
}
