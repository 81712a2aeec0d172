// Lines per second reading a chatty container's logs: Capstan (followLogs: demux, line split, timestamp parse,
// dedupe bookkeeping) vs the Docker CLI from docker.io (`docker logs --timestamps`), on the same container.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { DockerClient, followLogBatches, followLogs } from '../src/docker/index.ts';
import { startDocker } from '../src/testing/index.ts';
import type { Benchmark, BenchResult } from './harness.ts';
import { peakRssMb, summarize } from './harness.ts';

/** The Debian docker.io client (a newer CLI may sit first on PATH; the peer is the packaged one). */
const DOCKER_CLI = existsSync('/usr/bin/docker') ? '/usr/bin/docker' : 'docker';

function cliLines(host: string, id: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(DOCKER_CLI, ['logs', '--timestamps', id], {
      env: { ...process.env, DOCKER_HOST: host },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let lines = 0;
    const count = (d: Buffer) => {
      for (let i = d.indexOf(10); i !== -1; i = d.indexOf(10, i + 1)) lines++;
    };
    child.stdout.on('data', count);
    child.stderr.on('data', count);
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0 ? resolve(lines) : reject(new Error(`docker logs exited ${code}`)),
    );
  });
}

async function capstanBatches(client: DockerClient, id: string): Promise<number> {
  let lines = 0;
  for await (const batch of followLogBatches(client, id, { follow: false })) lines += batch.length;
  return lines;
}

async function capstanLines(client: DockerClient, id: string): Promise<number> {
  let lines = 0;
  for await (const _ of followLogs(client, id, { follow: false })) lines++;
  return lines;
}

const bench: Benchmark = {
  name: 'docker-logs',
  description:
    'Lines/s reading all logs (with timestamps) of a finished chatty container on a private dockerd: ' +
    'capstan followLogBatches / followLogs vs `docker logs --timestamps` (docker.io CLI), same container.',
  async run({ quick, log }) {
    const n = quick ? 100_000 : 500_000;
    const passes = quick ? 2 : 5;
    const docker = await startDocker();
    const client = new DockerClient({ host: docker.dockerHost });
    try {
      const { Id } = await client.createContainer({
        Image: docker.image,
        // Log-like lines of ~60 bytes; 1 in 10 on stderr.
        Cmd: [
          'sh',
          '-c',
          `seq 1 ${n} | awk '{ if ($1 % 10 == 0) print "level=warn msg=request id=" $1 " took=12ms" > "/dev/stderr"; else print "level=info msg=request id=" $1 " path=/api/v1/items" }'`,
        ],
        HostConfig: { NetworkMode: 'none' },
      });
      await client.startContainer(Id);
      const { StatusCode } = await client.waitContainer(Id);
      if (StatusCode !== 0) throw new Error(`generator container exited ${StatusCode}`);
      log(`container wrote ${n} lines`);
      const results: BenchResult[] = [];
      const measure = async (
        subject: string,
        fn: () => Promise<number>,
        notes: string,
        metric = 'lines/s',
      ) => {
        const rates: number[] = [];
        for (let i = 0; i < passes; i++) {
          const t0 = performance.now();
          const got = await fn();
          const s = (performance.now() - t0) / 1000;
          if (got !== n) throw new Error(`${subject} read ${got} lines, expected ${n}`);
          rates.push(got / s);
        }
        results.push({ subject, metric, unit: 'lines/s', ...summarize(rates), notes });
      };
      await measure(
        'capstan',
        () => capstanBatches(client, Id),
        `followLogBatches; ${n} lines, ${passes} passes`,
      );
      results.at(-1)!.peakRssMb = peakRssMb();
      await measure(
        'capstan',
        () => capstanLines(client, Id),
        `followLogs (one await per line); ${n} lines, ${passes} passes`,
        'lines/s per-line iterator',
      );
      await measure(
        'docker-cli',
        () => cliLines(docker.dockerHost, Id),
        `${DOCKER_CLI} logs --timestamps, includes ~5 ms process spawn`,
      );
      return results;
    } finally {
      await client.close();
      await docker.stop();
    }
  },
  ratios: [
    {
      label: 'capstan / docker logs CLI (lines/s)',
      numerator: { subject: 'capstan', metric: 'lines/s' },
      denominator: { subject: 'docker-cli', metric: 'lines/s' },
      goal: '>= 1',
    },
  ],
};

export default bench;
