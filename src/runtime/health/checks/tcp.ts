import { connect } from 'node:net';
import { abortReason } from '../../abort.ts';
import { healthAbortError } from '../aborted.ts';
import { HealthError } from '../errors.ts';
import type { CheckFunction } from '../types.ts';

/** A check that passes when a TCP connection to host:port opens (it is closed at once). */
export function tcpCheck(host: string, port: number): CheckFunction {
  if (typeof host !== 'string' || host === '') {
    throw new HealthError('CAP_ERR_RUNTIME_HEALTH_INVALID', 'tcpCheck: host must be a non-empty string');
  }
  if (!Number.isInteger(port) || port < 1 || port > 65_535) {
    throw new HealthError('CAP_ERR_RUNTIME_HEALTH_INVALID', `tcpCheck: invalid port ${port}`);
  }
  return (signal) =>
    new Promise<{ detail: string }>((resolve, reject) => {
      if (signal.aborted) return reject(abortReason(signal, healthAbortError));
      const socket = connect({ host, port });
      const onAbort = () => {
        socket.destroy();
        reject(abortReason(signal, healthAbortError));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      socket.once('connect', () => {
        signal.removeEventListener('abort', onAbort);
        const detail = `connected to ${socket.remoteAddress}:${socket.remotePort}`;
        socket.destroy();
        resolve({ detail });
      });
      socket.once('error', (err: NodeJS.ErrnoException) => {
        signal.removeEventListener('abort', onAbort);
        socket.destroy();
        reject(
          new HealthError('CAP_ERR_RUNTIME_HEALTH_TCP', `tcp ${host}:${port}: ${err.code ?? err.message}`, {
            cause: err,
          }),
        );
      });
    });
}
