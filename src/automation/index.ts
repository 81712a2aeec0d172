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
