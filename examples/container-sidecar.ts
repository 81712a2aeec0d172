// A sidecar for a Docker host, built on capstan/docker and capstan/runtime. It tails the logs of every container
// that carries a label (containers that start later join), re-emitting each line as a JSON log record, and logs
// a warning when one of them dies: also a death that happened while dockerd was restarting, which the daemon
// itself never reports. SIGTERM or Ctrl-C stops it cleanly; nothing is lost or repeated across reconnects.
//
//   DOCKER_HOST=unix:///var/run/docker.sock SIDECAR_SELECTOR=app=web node examples/container-sidecar.ts
//
// `capstan config doc examples/container-sidecar.ts` lists every variable it reads.
import { DockerClient, tailLogBatches, watchEvents } from 'capstan/docker';
import {
  createLogger,
  defineConfig,
  env,
  flushLogs,
  Lifecycle,
  loadConfigOrExit,
  logConfig,
} from 'capstan/runtime';

export const sidecarConfig = defineConfig({
  name: 'container-sidecar',
  prefix: 'SIDECAR_',
  fields: {
    selector: env
      .string({ pattern: /^[\w.\-/]+(=[\w.-]*)?$/ })
      .describe('Label selector of the containers to follow: key or key=value'),
    grace: env.duration().default('5s').describe('How long a stopped container may take to restart'),
  },
});

/** Run the sidecar until `lifecycle` shuts down. */
export function startSidecar(envVars: Record<string, string | undefined> = process.env): Lifecycle {
  const config = loadConfigOrExit(sidecarConfig, envVars);
  const log = createLogger({ name: 'container-sidecar', ...loadConfigOrExit(logConfig, envVars) });
  const docker = new DockerClient({ env: envVars });
  const lifecycle = new Lifecycle({
    drainDelayMs: 0,
    log: (level, msg, fields) => log[level](fields ?? {}, msg),
  });
  lifecycle.onShutdown('flush logs', () => flushLogs());
  lifecycle.onShutdown('close docker client', () => docker.close());

  // Lines from this moment on, of the containers matching now and of those that start matching later. A time,
  // not `tail: 0`: a container that writes while the follow is still connecting is not skipped.
  const since = new Date();
  lifecycle.addJob('tail logs', async (signal) => {
    for await (const batch of tailLogBatches(docker, [config.selector], {
      follow: true,
      keepWatching: true,
      since,
      graceMs: config.grace,
      signal,
      // This sidecar serves no HTTP, so it has no /metrics: split over-long lines show as `line-split` notices.
      // A sidecar run as a `createService` passes `metrics: service.metrics` here to count them in
      // capstan_docker_log_lines_split_total{container}.
      onNotice: (n) => log.debug({ notice: n }, 'log follower'),
    })) {
      for (const line of batch) log.info({ container: line.container, stream: line.stream }, line.text);
    }
  });

  const deaths = watchEvents(docker, {
    on: ['die'],
    filters: { label: [config.selector] },
    handler: (event) => {
      const attrs = event.Actor.Attributes;
      log.warn(
        {
          container: attrs.name,
          exitCode: Number(attrs.exitCode),
          ...(attrs['capstan.reconciled'] ? { reconciled: true } : {}),
        },
        'container died',
      );
    },
    onNotice: (n) => {
      if (n.type === 'reconnected') log.info({ ...n }, 'docker events reconnected');
    },
  });
  lifecycle.addJob('watch deaths', async (signal) => {
    await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
    await deaths.close();
  });

  log.info({ selector: config.selector, docker: docker.endpoint.host }, 'sidecar started');
  return lifecycle;
}

if (import.meta.main) startSidecar().handleSignals();
