// `sh`: a shell command as a template literal in which every interpolated value is one quoted word, so a
// file name with spaces or `;` can never become two arguments or a second command.
import { type CommandResult, runCommand } from '../runtime/index.ts';
import { AutomationError, AutomationErrorCode } from './errors.ts';
import { currentRun } from './task-context.ts';

/** A value `sh` may interpolate: arrays become several words, each quoted. */
export type ShellValue = string | number | boolean | bigint | readonly (string | number | boolean | bigint)[];

/** Quote one word for a POSIX shell: the empty string and anything but plain characters in single quotes. */
export function shellQuote(word: string): string {
  if (word !== '' && /^[\w@%+=:,./-]+$/.test(word)) return word;
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

/**
 * The command line a `sh` template makes: literal parts as written, each value quoted for where it stands.
 * Outside quotes a value becomes single-quoted words (arrays: one word per element); inside `"..."` its
 * `\\`, `$`, `` ` `` and `"` are escaped; inside `'...'` its `'` is closed, escaped and reopened. So
 * `` sh`echo "note: ${text}"` `` prints the text as given, `$(...)` and all.
 */
export function shellCommand(strings: TemplateStringsArray, values: readonly ShellValue[]): string {
  let line = strings[0]!;
  let quote = quoteStateAfter(strings[0]!, 'none');
  values.forEach((value, i) => {
    const words = (Array.isArray(value) ? value : [value]).map(String);
    if (quote === 'double') line += words.map((w) => w.replace(/[\\$`"]/g, '\\$&')).join(' ');
    else if (quote === 'single') line += words.map((w) => w.replaceAll("'", `'\\''`)).join(' ');
    else line += words.map(shellQuote).join(' ');
    const literal = strings[i + 1]!;
    quote = quoteStateAfter(literal, quote);
    line += literal;
  });
  return line;
}

type QuoteState = 'none' | 'single' | 'double';

/** Whether the shell is inside single or double quotes after reading `text` from state `from`. */
function quoteStateAfter(text: string, from: QuoteState): QuoteState {
  let state = from;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (state === 'single') {
      if (c === "'") state = 'none';
    } else if (c === '\\') {
      i++; // the next character is escaped, in or out of double quotes
    } else if (state === 'double') {
      if (c === '"') state = 'none';
    } else if (c === "'") state = 'single';
    else if (c === '"') state = 'double';
  }
  return state;
}

/**
 * Run a shell command (`/bin/sh -c`), with its output shown as it comes, and resolve with its stdout. A
 * non-zero exit rejects with `CAP_ERR_AUTOMATION_COMMAND_FAILED` naming the command, its status and its
 * stderr's tail. Inside `capstan run`, the command is stopped when the run fails or is interrupted.
 *
 * ```ts
 * const file = 'my report; rm -rf ~.txt';
 * await sh`gzip -k ${file}`; // one argument, never a second command
 * const rev = (await sh`git rev-parse HEAD`).trim();
 * ```
 */
export async function sh(strings: TemplateStringsArray, ...values: ShellValue[]): Promise<string> {
  const command = shellCommand(strings, values);
  const run = currentRun();
  run?.log(`$ ${command}`);
  run?.signal.throwIfAborted();
  const echo = run?.echo !== false;
  let result: CommandResult;
  try {
    result = await runCommand('sh', '/bin/sh', ['-c', command], {
      env: process.env,
      ...(run ? { signal: run.signal } : {}),
      timeoutMs: 2 ** 31 - 1,
      allowFailure: true,
      // The shell's children (every command of the line) stop with it.
      processGroup: true,
      onOutput: (stream, chunk) => {
        if (stream === 'stderr') process.stderr.write(chunk);
        else if (echo) process.stdout.write(chunk);
      },
    });
  } catch (err) {
    throw new AutomationError(
      AutomationErrorCode.commandFailed,
      `${command}: ${err instanceof Error ? err.message : String(err)}`,
      { cause: err },
    );
  }
  if (result.code === 0) return result.stdout;
  const tail = result.stderr.trimEnd().split('\n').slice(-10).join('\n');
  throw new AutomationError(
    AutomationErrorCode.commandFailed,
    `${command}: exited with ${result.code}${tail ? `\n${tail}` : ''}`,
  );
}
