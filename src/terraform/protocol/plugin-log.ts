// Logs of a provider process, as hclog JSON lines on stderr: go-plugin's host parses each line with an
// `@level`, `@message` and an `@timestamp` in Go's "2006-01-02T15:04:05.000000Z07:00" layout and files it
// under TF_LOG at that level; any other line only shows as a raw debug line.

/** hclog levels, lowest first. */
export const PLUGIN_LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error'] as const;
/** One of {@link PLUGIN_LOG_LEVELS}. */
export type PluginLogLevel = (typeof PLUGIN_LOG_LEVELS)[number];

/** Structured logger of a provider; fields are added to the line as JSON. */
export interface PluginLogger {
  trace(message: string, fields?: Record<string, unknown>): void;
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/** Options of {@link createPluginLogger}. */
export interface PluginLoggerOptions {
  /** `@module` of each line (hclog's logger name), e.g. `provider.capstanplatform`. */
  module: string;
  /** Lowest level written. Default from `TF_LOG_PROVIDER`, else `TF_LOG`, else `info`. */
  level?: PluginLogLevel;
  /** Where lines go. Default stderr. */
  write?: (line: string) => void;
  /** Clock, for tests. */
  now?: () => Date;
}

function levelFromEnv(env: NodeJS.ProcessEnv): PluginLogLevel {
  const raw = (env.TF_LOG_PROVIDER || env.TF_LOG || '').toLowerCase();
  if (raw === 'json') return 'trace';
  return (PLUGIN_LOG_LEVELS as readonly string[]).includes(raw) ? (raw as PluginLogLevel) : 'info';
}

/** `2026-12-02T18:00:00.123000Z`: hclog's layout wants exactly six fraction digits. */
export function hclogTimestamp(date: Date): string {
  return date.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

/** A logger writing hclog JSON lines (to stderr unless told). */
export function createPluginLogger(options: PluginLoggerOptions): PluginLogger {
  const min = PLUGIN_LOG_LEVELS.indexOf(options.level ?? levelFromEnv(process.env));
  const write = options.write ?? ((line: string) => process.stderr.write(line));
  const now = options.now ?? (() => new Date());
  const at =
    (level: PluginLogLevel) =>
    (message: string, fields?: Record<string, unknown>): void => {
      if (PLUGIN_LOG_LEVELS.indexOf(level) < min) return;
      const entry = {
        '@level': level,
        '@message': message,
        '@module': options.module,
        '@timestamp': hclogTimestamp(now()),
        ...fields,
      };
      let text: string;
      try {
        text = JSON.stringify(entry, (_k, v) => (typeof v === 'bigint' ? v.toString() : v));
      } catch {
        text = JSON.stringify({ ...entry, fields: '[unserializable]' });
      }
      write(`${text}\n`);
    };
  return { trace: at('trace'), debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}
