// Docker containers as inventory hosts, reached by Ansible's docker connection (`docker exec` through the
// Docker CLI): each container is a host named after the container, with `ansible_connection: docker`.
// capstan/docker is loaded on the first collect only, so an inventory without a Docker source never pays for it.
import type { DockerSourceConfig } from './config.ts';
import type { SourceHost } from './inventory.ts';
import type { CollectOptions, InventorySource } from './source.ts';

/** Options of {@link dockerSource}. */
export type DockerSourceOptions = Pick<DockerSourceConfig, 'name' | 'host' | 'all' | 'labels'> & {
  /** Where `DOCKER_HOST` and the TLS variables are read. Default `process.env`. */
  env?: NodeJS.ProcessEnv;
};

/**
 * The containers of one daemon (running ones, or all with `all`; only those with every label of `labels`),
 * one host each: named after the container, `ansible_connection: docker`, `ansible_host` the name, and
 * `docker_id`, `docker_image`, `docker_state`, `docker_status`, `docker_labels`. With `host` given, the hosts
 * also carry `ansible_docker_extra_args: -H <host>` so Ansible's Docker CLI reaches the same daemon; without
 * it both read `DOCKER_HOST`. Labels are matched by `label`/`labels`/`labelRegex` rules; kind `container`.
 */
export function dockerSource(options: DockerSourceOptions): InventorySource {
  const env = options.env ?? process.env;
  const host = options.host ?? (env['DOCKER_HOST'] || 'unix:///var/run/docker.sock');
  return {
    name: options.name,
    description: `docker ${host}`,
    async collect({ signal }: CollectOptions): Promise<SourceHost[]> {
      const { DockerClient } = await import('../docker/index.ts');
      const client = new DockerClient({ ...(options.host ? { host: options.host } : {}), env });
      try {
        const containers = await client.listContainers({
          all: options.all ?? false,
          ...(options.labels?.length ? { filters: { label: options.labels } } : {}),
          signal,
        });
        return containers.map((c) => {
          const name = (c.Names[0] ?? c.Id.slice(0, 12)).replace(/^\//, '');
          const labels = c.Labels ?? {};
          return {
            name,
            kind: 'container',
            vars: {
              ansible_connection: 'docker',
              ansible_host: name,
              ...(options.host ? { ansible_docker_extra_args: `-H ${options.host}` } : {}),
              docker_id: c.Id,
              docker_image: c.Image,
              docker_state: c.State,
              docker_status: c.Status,
              docker_labels: labels,
            },
            labels,
          };
        });
      } finally {
        await client.close();
      }
    },
  };
}
