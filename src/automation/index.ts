// capstan/automation: ops automation — bounded-parallel fan-out (`fanOut`, `capstan parallel`).

export { commandFor } from './command-template.ts';
export { AutomationError, AutomationErrorCode } from './errors.ts';
export {
  type FanOutEvent,
  type FanOutOptions,
  type FanOutReport,
  fanOut,
  type ItemOutcome,
  type ItemStatus,
  type TaskContext,
} from './fan-out.ts';
export { type ShellValue, sh, shellCommand, shellQuote } from './shell.ts';
export { type BuildBinaryOptions, type BuiltBinary, buildBinary } from './single-binary.ts';
export {
  type ArgSpec,
  type ArgsOf,
  type ArgType,
  deps,
  namespace,
  serialDeps,
  type Target,
  type TargetOptions,
  target,
} from './targets.ts';
export {
  findTarget,
  loadTaskfile,
  parseTargetArgs,
  type RunRecord,
  type RunTargetsOptions,
  runTargets,
  type TargetInfo,
  type Taskfile,
} from './task-runner.ts';
