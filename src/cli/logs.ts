import { Command, Option } from 'commander';
import type { LogLine, LogNotice } from '../docker/index.ts';
import { CliError, CliErrorCode } from './errors.ts';
import { runAction } from './run-action.ts';

interface LogsCliOptions {
  follow?: boolean;
  keepWatching?: boolean;
  since?: string;
  tail?: string;
  timestamps?: boolean;
  stderrOnly?: boolean;
  stdoutOnly?: boolean;
  output: 'text' | 'json';
  grace: string;
  host?: string;
  verbose?: boolean;
  color?: boolean;
}

const COLOURS = [36, 33, 32, 35, 34, 91, 92, 93, 94, 95, 96];

/** Write respecting backpressure: a chatty container must not grow our memory when the reader is slow. */
function writer(stream: NodeJS.WriteStream): (text: string) => Promise<void> | undefined {
  return (text) => {
    if (stream.write(text)) return undefined;
    return new Promise<void>((resolve) => stream.once('drain', resolve));
  };
}

/** `--tail`: a line count or `all`. */
function parseTail(value: string | undefined): number | 'all' | undefined {
  if (value === undefined || value === 'all') return value;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) {
    throw new CliError(CliErrorCode.usage, `--tail must be a non-negative integer or "all", got ${value}`);
  }
  return n;
}

/** The `--verbose` line for one follower notice. */
function describeNotice(n: LogNotice): string {
  switch (n.type) {
    case 'reconnecting':
      return `reconnecting in ${n.delayMs} ms (attempt ${n.attempt}): ${n.error}`;
    case 'reconnected':
      return `reconnected after ${(n.downMs / 1000).toFixed(1)} s, dropped ${n.duplicatesDropped} duplicate line(s)`;
    case 'restarted':
      return `restarted at ${n.startedAt}`;
    case 'joined':
      return 'joined (started matching a label selector)';
    case 'line-split':
      return `${n.stream} line longer than ${n.maxLineBytes} bytes, printed in pieces (${n.total} line(s) so far)`;
    case 'ended':
      return `ended (${n.reason}${n.exitCode !== undefined ? `, exit code ${n.exitCode}` : ''})`;
  }
}

/**
 * Whether to colour what goes to `stream`: never with `--no-color` or NO_COLOR, always with FORCE_COLOR
 * (except `0`), else only on a terminal (as most CLIs read them: no-color.org).
 */
function colourOn(stream: NodeJS.WriteStream, flag: boolean | undefined): boolean {
  if (flag === false || process.env['NO_COLOR']) return false;
  const force = process.env['FORCE_COLOR'];
  if (force !== undefined && force !== '') return force !== '0';
  return stream.isTTY === true;
}

/** Renders batches of lines as text (name prefix, one colour per container) or JSON, per output stream. */
function lineRenderer(opts: LogsCliOptions, formatRfc3339Nano: (ns: bigint) => string) {
  const colours = new Map<string, number>();
  const colourOut = colourOn(process.stdout, opts.color);
  const colourErr = colourOn(process.stderr, opts.color);
  const prefix = (name: string, coloured: boolean) => {
    if (!coloured) return `${name} `;
    let c = colours.get(name);
    if (c === undefined) {
      c = COLOURS[colours.size % COLOURS.length]!;
      colours.set(name, c);
    }
    return `\x1b[${c}m${name}\x1b[0m `;
  };
  // A line longer than the follower's maxLineBytes comes in pieces (`partial` on all but the last): a piece
  // is printed without its newline and the next one continues it, so the output holds the line's bytes in
  // order. Per output, the container|stream whose line is open; another line in between ends it first.
  const open: { out: string | undefined; err: string | undefined } = { out: undefined, err: undefined };
  const text = (line: LogLine, coloured: boolean, to: 'out' | 'err') => {
    const key = `${line.containerId}|${line.stream}`;
    let s = '';
    if (open[to] === key) {
      s = line.text;
    } else {
      if (open[to] !== undefined) s = '\n';
      s += `${prefix(line.container, coloured)}${opts.timestamps && line.timestamp ? `${line.timestamp} ` : ''}${line.text}`;
    }
    open[to] = line.partial ? key : undefined;
    return line.partial ? s : `${s}\n`;
  };
  return (batch: readonly LogLine[]): { out: string; err: string } => {
    let out = '';
    let err = '';
    for (const line of batch) {
      if (opts.output === 'json') {
        const { container, containerId, stream } = line;
        const timestamp = line.timeNs === undefined ? null : formatRfc3339Nano(line.timeNs);
        const row = { container, containerId, stream, timestamp, text: line.text };
        out += `${JSON.stringify(line.partial ? { ...row, partial: true } : row)}\n`;
      } else if (line.stream === 'stderr') {
        err += text(line, colourErr, 'err');
      } else {
        out += text(line, colourOut, 'out');
      }
    }
    return { out, err };
  };
}

/** `capstan logs`: follow several containers like stern, without losing or repeating a line. */
export function command(): Command {
  return new Command('logs')
    .description(
      'Print (and follow) the logs of containers, by name, id or label selector (key=value), merged with a ' +
        'name prefix. Follow survives container restarts, broken connections and daemon restarts.',
    )
    .argument('<targets...>', 'container names or ids, or label selectors such as app=web')
    .option('-f, --follow', 'keep following new output')
    .option(
      '--keep-watching',
      'with -f and a label selector: after every container ended, wait for new ones (like stern) until Ctrl-C',
    )
    .option('--since <time>', 'only lines since a time (RFC3339, Unix seconds) or a duration ago (10m, 1h)')
    .option('--tail <n>', 'only the last n lines of each container ("all" for everything)')
    .option('-t, --timestamps', 'show the daemon timestamp of each line')
    .option('--stderr-only', 'only stderr')
    .option('--stdout-only', 'only stdout')
    .addOption(
      new Option('-o, --output <format>', 'text or json (one object per line)')
        .choices(['text', 'json'])
        .default('text'),
    )
    .option(
      '--grace <duration>',
      'with -f, wait this long for a stopped container to restart before ending',
      '5s',
    )
    .option('-H, --host <host>', 'daemon address (default: DOCKER_HOST, else the system socket)')
    .option('--no-color', 'no colour, even on a terminal')
    .option('--verbose', 'report reconnects and restarts on stderr')
    .action((targets: string[], opts: LogsCliOptions) =>
      runAction('capstan logs', async ({ signal }) => {
        const { DockerClient, formatRfc3339Nano, parseDurationMs, tailLogBatches } = await import(
          '../docker/index.ts'
        );
        const tail = parseTail(opts.tail);
        let graceMs: number;
        try {
          graceMs = parseDurationMs(opts.grace);
        } catch (err) {
          throw new CliError(CliErrorCode.usage, `--grace: ${(err as Error).message}`, { cause: err });
        }
        const render = lineRenderer(opts, formatRfc3339Nano);
        const out = writer(process.stdout);
        const err = writer(process.stderr);
        const client = new DockerClient(opts.host ? { host: opts.host } : {});
        try {
          const batches = tailLogBatches(client, targets, {
            follow: opts.follow ?? false,
            keepWatching: opts.keepWatching ?? false,
            graceMs,
            stdout: !opts.stderrOnly,
            stderr: !opts.stdoutOnly,
            signal,
            ...(opts.since !== undefined ? { since: opts.since } : {}),
            ...(tail !== undefined ? { tail } : {}),
            onNotice: (n) => {
              if (opts.verbose) process.stderr.write(`[capstan logs] ${n.container}: ${describeNotice(n)}\n`);
            },
          });
          for await (const batch of batches) {
            // One write per stream per batch: a chatty container must not cost a syscall per line.
            const text = render(batch);
            const pending = [text.out && out(text.out), text.err && err(text.err)].filter(Boolean);
            if (pending.length) await Promise.all(pending);
          }
        } finally {
          await client.close();
        }
      }),
    );
}
