// A command on the action runner, doing what argv[2] says, for run-action.test.ts to run as a process.
import { CapstanError, defineConfig, env, loadConfig } from '../../runtime/index.ts';
import { CliError, CliErrorCode } from '../errors.ts';
import { runAction } from '../run-action.ts';

const mode = process.argv[2];
const fixtureConfig = defineConfig({ name: 'fixture', fields: { port: env.port().env('FIXTURE_PORT') } });

/** Resolves on abort. A timer keeps the process up meanwhile, as a command's open socket would. */
function aborted(signal: AbortSignal): Promise<void> {
  const keepAlive = setInterval(() => {}, 60_000);
  return new Promise((resolve) =>
    signal.addEventListener(
      'abort',
      () => {
        clearInterval(keepAlive);
        resolve();
      },
      { once: true },
    ),
  );
}

await runAction('capstan fixture', async ({ signal, stoppedBy }) => {
  switch (mode) {
    case 'config':
      loadConfig(fixtureConfig, { FIXTURE_PORT: 'eighty' });
      return;
    case 'area':
      throw new CapstanError('CAP_ERR_FIXTURE_BROKEN', 'the fixture area broke');
    case 'usage':
      throw new CliError(CliErrorCode.usage, '--flag wants a number, got x');
    case 'plain':
      throw new TypeError('something unexpected');
    case 'exit-status':
      return 3;
    case 'wait':
      process.stdout.write('waiting\n');
      await aborted(signal);
      process.stdout.write(`aborted by ${stoppedBy()}: ${(signal.reason as CliError).code}\n`);
      return;
    case 'throw-when-stopped':
      process.stdout.write('waiting\n');
      await aborted(signal);
      signal.throwIfAborted();
      return;
    case 'ignore-signals':
      process.stdout.write('waiting\n');
      // Does not listen to the signal: only a second Ctrl-C ends it.
      await new Promise((resolve) => setTimeout(resolve, 60_000));
      return;
    default:
      process.stdout.write('done\n');
  }
});
