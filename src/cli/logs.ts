import { Command, Option } from 'commander';

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
    .action(async (targets: string[], opts: LogsCliOptions) => {
      const { DockerClient, formatRfc3339Nano, parseDurationMs, tailLogBatches } = await import(
        '../docker/index.ts'
      );
      const tail = opts.tail === undefined || opts.tail === 'all' ? opts.tail : Number(opts.tail);
      if (typeof tail === 'number' && (!Number.isInteger(tail) || tail < 0)) {
        throw new Error(`--tail must be a non-negative integer or "all", got ${opts.tail}`);
      }
      const graceMs = parseDurationMs(opts.grace);
      const controller = new AbortController();
      const onSignal = () => controller.abort();
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      const client = new DockerClient(opts.host ? { host: opts.host } : {});
      const out = writer(process.stdout);
      const err = writer(process.stderr);
      // NO_COLOR and FORCE_COLOR as most CLIs read them (no-color.org; FORCE_COLOR=0 means off).
      const force = process.env.FORCE_COLOR;
      const colour = (stream: NodeJS.WriteStream) =>
        opts.color !== false &&
        !process.env.NO_COLOR &&
        (force !== undefined && force !== '' ? force !== '0' : stream.isTTY === true);
      const colours = new Map<string, number>();
      const prefix = (name: string, stream: NodeJS.WriteStream) => {
        if (!colour(stream)) return `${name} `;
        let c = colours.get(name);
        if (c === undefined) {
          c = COLOURS[colours.size % COLOURS.length]!;
          colours.set(name, c);
        }
        return `\x1b[${c}m${name}\x1b[0m `;
      };
      try {
        const batches = tailLogBatches(client, targets, {
          follow: opts.follow ?? false,
          keepWatching: opts.keepWatching ?? false,
          graceMs,
          stdout: !opts.stderrOnly,
          stderr: !opts.stdoutOnly,
          signal: controller.signal,
          ...(opts.since !== undefined ? { since: opts.since } : {}),
          ...(tail !== undefined ? { tail } : {}),
          onNotice: (n) => {
            if (!opts.verbose) return;
            const text =
              n.type === 'reconnecting'
                ? `reconnecting in ${n.delayMs} ms (attempt ${n.attempt}): ${n.error}`
                : n.type === 'reconnected'
                  ? `reconnected after ${(n.downMs / 1000).toFixed(1)} s, dropped ${n.duplicatesDropped} duplicate line(s)`
                  : n.type === 'restarted'
                    ? `restarted at ${n.startedAt}`
                    : n.type === 'joined'
                      ? 'joined (started matching a label selector)'
                      : `ended (${n.reason}${n.exitCode !== undefined ? `, exit code ${n.exitCode}` : ''})`;
            process.stderr.write(`[capstan logs] ${n.container}: ${text}\n`);
          },
        });
        for await (const batch of batches) {
          // One write per stream per batch: a chatty container must not cost a syscall per line.
          let outText = '';
          let errText = '';
          for (const line of batch) {
            if (opts.output === 'json') {
              outText += `${JSON.stringify({
                container: line.container,
                containerId: line.containerId,
                stream: line.stream,
                timestamp: formatRfc3339Nano(line.timeNs),
                text: line.text,
              })}\n`;
            } else if (line.stream === 'stderr') {
              errText += `${prefix(line.container, process.stderr)}${opts.timestamps ? `${line.timestamp} ` : ''}${line.text}\n`;
            } else {
              outText += `${prefix(line.container, process.stdout)}${opts.timestamps ? `${line.timestamp} ` : ''}${line.text}\n`;
            }
          }
          const pending = [outText && out(outText), errText && err(errText)].filter(Boolean);
          if (pending.length) await Promise.all(pending);
        }
      } catch (e) {
        if (!controller.signal.aborted) {
          process.stderr.write(`capstan logs: ${(e as Error).message}\n`);
          process.exitCode = 1;
        }
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        await client.close();
      }
      if (controller.signal.aborted) process.exitCode = 130;
    });
}
