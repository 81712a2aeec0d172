// Kept apart from errors.ts, which loads the runtime: main.ts needs these numbers on the `--help` path.

/** Exit statuses of the `capstan` CLI, one place for every command. */
export const ExitCode = {
  /** Done. */
  ok: 0,
  /** Failed. */
  failed: 1,
  /** Usage error: unknown option, bad option value, unusable argument (as most CLIs and `sh` use 2). */
  usage: 2,
  /** Bad configuration or input (`EX_CONFIG` from sysexits.h, as `loadConfigOrExit` exits). */
  config: 78,
  /** Interrupted by Ctrl-C (128 + SIGINT). */
  interrupted: 130,
} as const;
