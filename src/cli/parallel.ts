// `capstan parallel`: GNU parallel's core on fanOut — a command per item, bounded, with a deadline and
// retries per item, Ctrl-C that stops in-flight commands, a progress bar on a TTY and a summary table.
import { availableParallelism } from 'node:os';
import { createInterface } from 'node:readline';
import { Command } from 'commander';
import { CliError, CliErrorCode } from './errors.ts';
import { ExitCode } from './exit-code.ts';
import { runAction } from './run-action.ts';
import { replicaCount } from './scale.ts';

const ITEMS_MARK = ':::';

interface ParallelOptions {
  jobs: number;
  timeout?: string;
  retries: number;
  keepOrder?: boolean;
  tag?: boolean;
  summary: boolean;
  progress?: boolean;
}

/** A job whose command exited non-zero: retried like a throw, and its output is what the user sees. */
class JobFailed extends Error {
  readonly result: JobOutput;
  constructor(result: JobOutput, shown: string) {
    super(`${shown} exited with ${result.code}`);
    this.result = result;
  }
}

export function command(): Command {
  return new Command('parallel')
    .description(
      'Run a command once per item, N at a time: capstan parallel -j 16 --timeout 30s --retries 2 -- ssh {} reboot ::: web-1 web-2 (items after ::: or one per line on stdin; {} is the item, else it is the last argument; no shell)',
    )
    .usage('[options] -- <command> [args...] [::: items...]')
    .argument('<command...>', 'the program and its arguments, then ::: and the items (or items on stdin)')
    .option('-j, --jobs <n>', 'how many commands run at once', positive('--jobs'), availableParallelism())
    .option(
      '--timeout <duration>',
      'deadline of one attempt (e.g. 500ms, 30s, 2m); the command is killed then',
    )
    .option('--retries <n>', 'further attempts of a failed item', replicaCount('--retries'), 0)
    .option('-k, --keep-order', "print outputs in the items' order, not as they finish")
    .option('--tag', 'prefix each output line with its item and a tab')
    .option('--no-summary', 'no summary table on stderr at the end')
    .option('--progress', 'a progress bar on stderr even when it is not a terminal')
    .passThroughOptions()
    .action((words: string[], opts: ParallelOptions) =>
      runAction('capstan parallel', async ({ signal }) => {
        const { parseDuration } = await import('../runtime/index.ts');
        const { commandFor, fanOut } = await import('../automation/index.ts');
        const { runCommand } = await import('../runtime/index.ts');
        const mark = words.indexOf(ITEMS_MARK);
        const template = mark === -1 ? words : words.slice(0, mark);
        const listed = mark === -1 ? undefined : words.slice(mark + 1);
        if (template.length === 0) throw new CliError(CliErrorCode.usage, 'no command before :::');
        if (listed?.includes(ITEMS_MARK)) {
          throw new CliError(
            CliErrorCode.usage,
            'one ::: list only (combinations of several lists are not supported)',
          );
        }
        if (!listed && process.stdin.isTTY) {
          throw new CliError(CliErrorCode.usage, 'no items: give them after ::: or one per line on stdin');
        }
        let timeoutMs: number | undefined;
        if (opts.timeout !== undefined) {
          timeoutMs = parseDuration(opts.timeout);
          if (timeoutMs === undefined || timeoutMs <= 0) {
            throw new CliError(
              CliErrorCode.usage,
              `--timeout: a duration such as 500ms, 30s or 2m, not "${opts.timeout}"`,
            );
          }
        }
        const items: Iterable<string> | AsyncIterable<string> = listed ?? stdinLines();
        const progress = new ProgressBar(opts.progress === true || process.stderr.isTTY === true);
        const printer = new OutputPrinter(opts.keepOrder === true, opts.tag === true);
        const shownItems: string[] = [];
        // The last attempt's output is what gets printed, once the item has settled.
        const lastResult: Array<{ code: number; stdout: string; stderr: string }> = [];
        const report = await fanOut(
          items,
          async (item, ctx) => {
            shownItems[ctx.index] = item;
            const [program, ...args] = commandFor(template, item);
            const result = await runCommand('capstan parallel', program!, args, {
              env: process.env,
              signal: ctx.signal,
              timeoutMs: 2 ** 31 - 1,
              allowFailure: true,
              // A script's children stop with it on timeout or Ctrl-C.
              processGroup: true,
            });
            lastResult[ctx.index] = result;
            if (result.code !== 0) throw new JobFailed(result, [program, ...args].join(' '));
            return result;
          },
          {
            concurrency: opts.jobs,
            retries: opts.retries,
            signal,
            ...(timeoutMs !== undefined ? { timeoutMs } : {}),
            // A program that is not there will not be there on the next attempt either.
            retryIf: (err) =>
              !(err instanceof Error && 'code' in err && err.code === 'CAP_ERR_RUNTIME_PROCESS_SPAWN'),
            onEvent: (event) => {
              progress.update(event);
              if (event.type === 'settled') {
                progress.clear();
                printer.settled(event.index, shownItems[event.index] ?? '', lastResult[event.index]);
                progress.draw();
              }
            },
          },
        );
        progress.done();
        printer.flush();
        if (opts.summary) process.stderr.write(summaryTable(report, shownItems));
        if (signal.aborted) return ExitCode.interrupted;
        return report.failed > 0 ? ExitCode.failed : ExitCode.ok;
      }),
    );
}

function positive(option: string): (value: string) => number {
  const whole = replicaCount(option);
  return (value: string) => {
    const n = whole(value);
    if (n < 1) throw new CliError(CliErrorCode.usage, `${option} must be at least 1, got ${value}`);
    return n;
  };
}

async function* stdinLines(): AsyncIterable<string> {
  const lines = createInterface({ input: process.stdin, crlfDelay: Number.POSITIVE_INFINITY });
  for await (const line of lines) if (line !== '') yield line;
}

/** A one-line bar on stderr, redrawn at most every 100 ms; absent when stderr is not a terminal. */
class ProgressBar {
  #started = 0;
  #settled = 0;
  #failed = 0;
  #running = 0;
  #drawnAt = 0;
  #shown = false;

  readonly enabled: boolean;
  constructor(enabled: boolean) {
    this.enabled = enabled;
  }

  update(event: import('../automation/index.ts').FanOutEvent): void {
    if (event.type === 'started' && event.attempt === 1) {
      this.#started++;
      this.#running++;
    } else if (event.type === 'settled') {
      this.#settled++;
      this.#running--;
      if (event.status !== 'ok') this.#failed++;
    }
    if (Date.now() - this.#drawnAt >= 100) this.draw();
  }

  draw(): void {
    if (!this.enabled) return;
    this.#drawnAt = Date.now();
    this.#shown = true;
    const width = 30;
    // The total of a stream is not known: the bar measures what has started.
    const filled = this.#started === 0 ? 0 : Math.round((this.#settled / this.#started) * width);
    process.stderr.write(
      `\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${this.#settled}/${this.#started} done, ${this.#running} running, ${this.#failed} failed `,
    );
  }

  clear(): void {
    if (this.#shown) process.stderr.write('\r\x1b[K');
  }

  done(): void {
    if (!this.enabled) return;
    this.draw();
    process.stderr.write('\n');
  }
}

/** Writes each item's output whole (grouped, as GNU parallel does), as items finish or in input order. */
class OutputPrinter {
  readonly #pending = new Map<number, { item: string; result: JobOutput | undefined }>();
  #nextInOrder = 0;

  readonly keepOrder: boolean;
  readonly tag: boolean;
  constructor(keepOrder: boolean, tag: boolean) {
    this.keepOrder = keepOrder;
    this.tag = tag;
  }

  settled(index: number, item: string, result: JobOutput | undefined): void {
    if (!this.keepOrder) {
      this.#write(item, result);
      return;
    }
    this.#pending.set(index, { item, result });
    for (let next = this.#pending.get(this.#nextInOrder); next; next = this.#pending.get(this.#nextInOrder)) {
      this.#pending.delete(this.#nextInOrder++);
      this.#write(next.item, next.result);
    }
  }

  /** What is still held back (items after one that never finished, on cancellation). */
  flush(): void {
    for (const index of [...this.#pending.keys()].sort((a, b) => a - b)) {
      const held = this.#pending.get(index)!;
      this.#write(held.item, held.result);
    }
    this.#pending.clear();
  }

  #write(item: string, result: JobOutput | undefined): void {
    if (!result) return;
    process.stdout.write(this.#tagged(item, result.stdout));
    process.stderr.write(this.#tagged(item, result.stderr));
  }

  #tagged(item: string, text: string): string {
    if (!this.tag || text === '') return text;
    const lines = text.endsWith('\n') ? text.slice(0, -1).split('\n') : text.split('\n');
    return `${lines.map((line) => `${item}\t${line}`).join('\n')}\n`;
  }
}

interface JobOutput {
  code: number;
  stdout: string;
  stderr: string;
}

/** The summary on stderr: counts, durations, and one line per item that did not succeed. */
export function summaryTable(
  report: import('../automation/index.ts').FanOutReport<string, JobOutput>,
  items: readonly string[],
): string {
  const done = report.outcomes.filter((o) => o !== undefined);
  const durations = done
    .filter((o) => o.attempts > 0)
    .map((o) => o.durationMs)
    .sort((a, b) => a - b);
  const at = (p: number) =>
    durations.length === 0 ? 0 : durations[Math.min(durations.length - 1, Math.floor(p * durations.length))]!;
  const ms = (n: number) => (n >= 10_000 ? `${(n / 1000).toFixed(1)} s` : `${Math.round(n)} ms`);
  const rows: string[][] = [
    ['items', 'ok', 'failed', 'cancelled', 'retried', 'wall', 'p50', 'p99', 'max'],
    [
      String(done.length),
      String(report.ok),
      String(report.failed),
      String(report.cancelled),
      String(report.retried),
      ms(report.durationMs),
      ms(at(0.5)),
      ms(at(0.99)),
      ms(durations.at(-1) ?? 0),
    ],
  ];
  let text = table(rows);
  const bad = done.filter((o) => o.status !== 'ok');
  if (bad.length > 0) {
    const shown = bad.slice(0, 20).map((o) => {
      const error = o.error;
      const reason =
        error instanceof JobFailed
          ? `${error.message}${lastLine(error.result.stderr)}`
          : error instanceof Error
            ? error.message
            : String(error);
      return [items[o.index] ?? String(o.index), o.status, String(o.attempts), reason];
    });
    text += table([['item', 'status', 'attempts', 'reason'], ...shown]);
    if (bad.length > shown.length) text += `... and ${bad.length - shown.length} more\n`;
  }
  return text;
}

function lastLine(text: string): string {
  const line = text.trimEnd().split('\n').at(-1) ?? '';
  return line === '' ? '' : `: ${line}`;
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return (
    rows
      .map((r) =>
        r
          .map((cell, i) => cell.padEnd(widths[i]!))
          .join('  ')
          .trimEnd(),
      )
      .join('\n') + '\n'
  );
}
