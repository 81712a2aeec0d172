import {
  type CommandResult,
  ProcessError,
  ProcessErrorCode,
  type RunCommandOptions,
  type RunningProcess,
  runCommand,
  type StartProcessOptions,
  startProcess,
} from '../runtime/index.ts';
import { PeerError, PeerErrorCode } from './errors.ts';

/** What {@link startPeerProcess} needs to run one peer program. */
export type PeerProcessOptions = StartProcessOptions;
/** A running peer program. */
export type PeerProcess = RunningProcess;

// A peer's failures are reported as the peer's: callers (and the port-taken retries) branch on PeerError.
const peerCodes: Record<ProcessErrorCode, PeerErrorCode> = {
  [ProcessErrorCode.exited]: PeerErrorCode.exited,
  [ProcessErrorCode.notReady]: PeerErrorCode.notReady,
  [ProcessErrorCode.spawn]: PeerErrorCode.commandSpawn,
  [ProcessErrorCode.aborted]: PeerErrorCode.commandAborted,
  [ProcessErrorCode.failed]: PeerErrorCode.commandFailed,
};

function asPeerError(err: unknown, prefix: string): unknown {
  if (!(err instanceof ProcessError)) return err;
  return new PeerError(peerCodes[err.code], `${prefix}${err.reason}`, err.logTail, {
    cause: err.cause ?? err,
  });
}

/**
 * Start a peer program (runtime's `startProcess`) and wait until it is ready. If it exits first
 * (`CAP_ERR_PEER_EXITED`) or is never ready (`CAP_ERR_PEER_NOT_READY`), the {@link PeerError} carries
 * the tail of its log.
 */
export async function startPeerProcess(options: PeerProcessOptions): Promise<PeerProcess> {
  try {
    return await startProcess(options);
  } catch (err) {
    throw asPeerError(err, 'peer ');
  }
}

/**
 * Run one peer CLI (helm, tofu, ansible) to completion (runtime's `runCommand`). Fails with a
 * {@link PeerError}: `CAP_ERR_PEER_COMMAND_SPAWN`, `CAP_ERR_PEER_COMMAND_ABORTED` or
 * `CAP_ERR_PEER_COMMAND_FAILED` (unless `allowFailure`), with the output tail.
 */
export async function runPeerCommand(
  name: string,
  command: string,
  args: readonly string[],
  options: RunCommandOptions & { env: NodeJS.ProcessEnv },
): Promise<CommandResult> {
  try {
    return await runCommand(name, command, args, options);
  } catch (err) {
    throw asPeerError(err, '');
  }
}
