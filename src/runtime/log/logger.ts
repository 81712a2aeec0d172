// JSON logs on stdout, one object per line, with secrets redacted at any depth and nothing lost on
// exit. Built on pino; the destination is synchronous because pino's worker transports drop lines on
// exit (pino 2054, 1400) and a log line written before a crash is the one you need.
import { createRequire } from 'node:module';
import { hostname } from 'node:os';
import pino, {
  type DestinationStream,
  type Logger as PinoLogger,
  type LoggerOptions as PinoOptions,
} from 'pino';
import { defineConfig } from '../config/config.ts';
import { env } from '../config/env-types.ts';
import { createRedactor, maskUrlCredentials } from '../redact.ts';
import { LogError, LogErrorCode } from './errors.ts';
import { SyncFdWriter } from './fd-writer.ts';

/** pino's levels, plus `silent`. */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
/** A log level name. */
export type LogLevel = (typeof LOG_LEVELS)[number];
/** `json`: one JSON object per line; `pretty`: human-readable, via pino-pretty. */
export type LogFormat = 'json' | 'pretty';

/** The logger: pino's, so its whole API (child, isLevelEnabled, bindings...) is available. */
export type Logger = PinoLogger;

/**
 * `LOG_LEVEL` (default info) and `LOG_FORMAT` (default: pretty on a TTY, JSON otherwise). {@link createLogger}
 * reads no environment: read these at the edge and pass them in,
 * `createLogger({ name, ...loadConfigOrExit(logConfig) })`.
 */
export const logConfig = defineConfig({
  name: 'log',
  fields: {
    level: env
      .enum(LOG_LEVELS, { caseInsensitive: true })
      .default('info')
      .env('LOG_LEVEL')
      .describe('Minimum level logged'),
    format: env
      .enum(['json', 'pretty'], { caseInsensitive: true })
      .optional()
      .env('LOG_FORMAT')
      .describe('json or pretty; unset = pretty on a terminal, json otherwise'),
  },
});

/** Options for {@link createLogger}: values, never read from the environment (see {@link logConfig}). */
export interface LoggerOptions {
  /** Program or library name, logged as `name`. */
  name?: string;
  /** Part of the program, logged as `component` (children may override it). */
  component?: string;
  /** Minimum level; default `info`. */
  level?: LogLevel;
  /** Default: pretty when the destination is a terminal, JSON otherwise. */
  format?: LogFormat;
  /** File descriptor (default 1, stdout), file path, or any stream with `write(string)`. */
  destination?: number | string | DestinationStream;
  /** Extra field-name fragments to redact, on top of password, token, secret, authorization... */
  redactKeys?: readonly string[];
  /** Extra fields on every line. */
  base?: Record<string, unknown>;
}

/** Something {@link flushLogs} can flush synchronously (a sonic-boom destination). */
interface Flushable {
  flushSync(): void;
}

// Destinations we opened; flushLogs() drains them all. One shared destination per fd, so several
// loggers on stdout keep their lines in order.
const flushables = new Set<Flushable>();
const fdDestinations = new Map<number, DestinationStream & Flushable>();
let exitHookInstalled = false;

function fdDestination(fd: number): DestinationStream & Flushable {
  let d = fdDestinations.get(fd);
  if (!d) {
    d = new SyncFdWriter(fd);
    fdDestinations.set(fd, d);
    flushables.add(d);
  }
  return d;
}

/**
 * Flush every destination opened by {@link createLogger}, synchronously. Call it last in a shutdown
 * sequence, right before `process.exit`. Also runs on the process `exit` event.
 */
export function flushLogs(): void {
  for (const d of flushables) {
    try {
      d.flushSync();
    } catch {
      // A closed descriptor (EBADF) or a reader gone (EPIPE): nothing left to save.
    }
  }
}

const requireCjs = createRequire(import.meta.url);

/** Wrap `dest` so each JSON line is prettified first; synchronous, so flushing still works. */
function prettyDestination(dest: DestinationStream, colorize: boolean): DestinationStream {
  // Loaded only in pretty mode: production (JSON) never pays for pino-pretty.
  const { prettyFactory } = requireCjs('pino-pretty') as typeof import('pino-pretty');
  const pretty = prettyFactory({ colorize, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' });
  return { write: (line: string) => dest.write(pretty(line)) };
}

function isTty(fd: number): boolean {
  return (fd === 1 && process.stdout.isTTY === true) || (fd === 2 && process.stderr.isTTY === true);
}

/**
 * Create a logger writing JSON lines (`level` as a label, ISO-8601 `time`, `msg`) synchronously to
 * stdout. Fields named like secrets are replaced by `[REDACTED]` at any depth, in logged objects and in
 * child bindings, and URL passwords are masked in every string, including the message. It reads no
 * environment: `LOG_LEVEL`/`LOG_FORMAT` are read at the edge through {@link logConfig}.
 *
 * ```ts
 * const log = createLogger({ name: 'exporter', ...loadConfigOrExit(logConfig) });
 * log.child({ component: 'scrape', requestId }).info({ target }, 'scraped');
 * ```
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  if (options.level !== undefined && !LOG_LEVELS.includes(options.level)) {
    throw new LogError(
      LogErrorCode.options,
      `unknown log level ${JSON.stringify(options.level)}; use one of ${LOG_LEVELS.join(', ')}`,
    );
  }
  if (options.format !== undefined && options.format !== 'json' && options.format !== 'pretty') {
    throw new LogError(
      LogErrorCode.options,
      `unknown log format ${JSON.stringify(options.format)}; use json or pretty`,
    );
  }
  const fd =
    typeof options.destination === 'number'
      ? options.destination
      : options.destination === undefined
        ? 1
        : -1;
  const format: LogFormat = options.format ?? (fd >= 0 && isTty(fd) ? 'pretty' : 'json');

  let dest: DestinationStream;
  if (typeof options.destination === 'object') {
    dest = options.destination;
  } else if (typeof options.destination === 'string') {
    let file: DestinationStream & Flushable;
    try {
      file = pino.destination({ dest: options.destination, sync: true, mkdir: true });
    } catch (err) {
      throw new LogError(LogErrorCode.options, `cannot open log file ${options.destination}`, { cause: err });
    }
    flushables.add(file);
    dest = file;
  } else {
    dest = fdDestination(fd);
  }
  if (format === 'pretty') dest = prettyDestination(dest, fd >= 0 && isTty(fd));
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', flushLogs);
  }

  const redact = createRedactor(options.redactKeys ? { extraKeys: options.redactKeys } : {});
  const redactRecord = (o: Record<string, unknown>) => redact(o) as Record<string, unknown>;
  const first: Record<string, unknown> = { ...options.base };
  if (options.name !== undefined) first['name'] = options.name;
  if (options.component !== undefined) first['component'] = options.component;

  // Format arguments (`log.info('%j', { apiToken })`, `%o`, `%O`, `%s`) become message text inside pino before
  // any formatter or serializer sees them, so redact each object argument first. An error keeps a `toString`
  // so that `%s` still prints `Type: message` rather than `[object Object]`.
  const redactArg = (arg: object): unknown => {
    const out = redact(arg);
    if (arg instanceof Error && out !== null && typeof out === 'object') {
      const text = maskUrlCredentials(String(arg));
      Object.defineProperty(out, 'toString', { value: () => text, enumerable: false });
    }
    return out;
  };
  const pinoOptions: PinoOptions = {
    level: options.level ?? 'info',
    hooks: {
      logMethod(args, method) {
        // args[0] is the merging object (redacted by the `log` formatter) or the message.
        const list = args as unknown[];
        for (let i = 1; i < list.length; i++) {
          const arg = list[i];
          if (arg !== null && typeof arg === 'object') list[i] = redactArg(arg);
        }
        return method.apply(this, args);
      },
    },
    base: { pid: process.pid, hostname: hostname() },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: {
      // Pipelines (Loki, Elasticsearch, Cloud Logging) expect "info", not 30. pino-pretty reads
      // labels as well.
      level: (label) => ({ level: label }),
      bindings: redactRecord,
      log: redactRecord,
    },
    serializers: {
      // Errors were already turned into plain, redacted objects by `log`; this covers the case
      // where pino builds `{ err }` itself from `log.error(err)`.
      err: (e: unknown) => redact(e),
      // pino runs the message through the serializer named like its key.
      msg: (m: unknown) => (typeof m === 'string' ? maskUrlCredentials(m) : m),
    },
  };
  const root = pino(pinoOptions, dest);
  const pinoChild = root.child;
  const keysOf = new WeakMap<Logger, ReadonlySet<string>>();
  type ChildOptions = Parameters<Logger['child']>[1];
  const makeChild = (
    parent: Logger,
    bindings: Record<string, unknown>,
    childOptions?: ChildOptions,
  ): Logger => {
    // pino skips the bindings formatter for child() without options, so redact here.
    const clean = redactRecord(bindings);
    const parentKeys = keysOf.get(parent) ?? new Set<string>();
    let out: Logger;
    let keys: Set<string>;
    if (Object.keys(clean).some((k) => parentKeys.has(k))) {
      // pino appends bindings as text, so re-binding a key (`component`) would print it twice on
      // every line; rebuild from the root with the merged set instead. Child-only serializers of the
      // parent are not carried over.
      const merged = { ...parent.bindings(), ...clean };
      out = pinoChild.call(root, merged, { level: parent.level, ...childOptions }) as unknown as Logger;
      keys = new Set(Object.keys(merged));
    } else {
      out = pinoChild.call(parent, clean, childOptions) as unknown as Logger;
      keys = new Set([...parentKeys, ...Object.keys(clean)]);
    }
    keysOf.set(out, keys);
    return out;
  };
  // Children inherit this method through their prototype.
  Object.defineProperty(root, 'child', {
    value(this: Logger, bindings: Record<string, unknown>, childOptions?: ChildOptions) {
      return makeChild(this, bindings, childOptions);
    },
    writable: true,
    configurable: true,
  });
  return Object.keys(first).length > 0 ? root.child(first) : root;
}
