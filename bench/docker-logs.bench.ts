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

function cliLines(
  host: string,
  id: string,
  follow = false,
  onLine?: (count: number) => void,
): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(DOCKER_CLI, ['logs', '--timestamps', ...(follow ? ['--follow'] : []), id], {
      env: { ...process.env, DOCKER_HOST: host },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let lines = 0;
    const count = (d: Buffer) => {
      for (let i = d.indexOf(10); i !== -1; i = d.indexOf(10, i + 1)) lines++;
      onLine?.(lines);
    };
    child.stdout.on('data', count);
    child.stderr.on('data', count);
    child.on('error', reject);
    // 'close', not 'exit': the process can exit before its pipes are read to the end.
    child.on('close', (code) =>
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

/** Log-like lines of ~60 bytes; 1 in 10 on stderr. */
function chatty(n: number): string[] {
  return [
    'sh',
    '-c',
    `seq 1 ${n} | awk '{ if ($1 % 10 == 0) print "level=warn msg=request id=" $1 " took=12ms" > "/dev/stderr"; else print "level=info msg=request id=" $1 " path=/api/v1/items" }'`,
  ];
}

const bench: Benchmark = {
  name: 'docker-logs',
  description:
    'Lines/s reading all logs (with timestamps) of a finished chatty container on a private dockerd, and ' +
    'following a live one from its start: capstan followLogBatches / followLogs vs `docker logs --timestamps ' +
    '[-f]` (docker.io CLI), same containers.',
  async run({ quick, log }) {
    const n = quick ? 100_000 : 500_000;
    const passes = quick ? 2 : 5;
    const docker = await startDocker();
    const client = new DockerClient({ host: docker.dockerHost });
    try {
      const { Id } = await client.createContainer({
        Image: docker.image,
        Cmd: chatty(n),
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

      // Tailing a live chatty container: the follower attaches (-f) right after the container starts; lines/s
      // from the start until the follower has seen the last line (the CLI's process spawn included). The producer and dockerd's log driver
      // bound both, so this shows whether a follower keeps up rather than raw parsing speed.
      const live = quick ? 50_000 : 200_000;
      const follow = async (subject: string, attach: (id: string, done: () => void) => Promise<number>) => {
        const rates: number[] = [];
        for (let i = 0; i < (quick ? 1 : 3); i++) {
          const { Id: id } = await client.createContainer({
            Image: docker.image,
            Cmd: chatty(live),
            HostConfig: { NetworkMode: 'none' },
          });
          let t1 = 0;
          const t0 = performance.now();
          await client.startContainer(id);
          const got = await attach(id, () => {
            t1 ||= performance.now();
          });
          if (got !== live) throw new Error(`${subject} followed ${got} lines, expected ${live}`);
          rates.push(live / ((t1 - t0) / 1000));
          await client.removeContainer(id, { force: true });
        }
        results.push({
          subject,
          metric: 'follow lines/s',
          unit: 'lines/s',
          ...summarize(rates),
          notes: `-f attached at start; ${live} lines per container`,
        });
      };
      await follow('capstan', async (id, done) => {
        let lines = 0;
        for await (const batch of followLogBatches(client, id, { graceMs: 0 })) {
          lines += batch.length;
          if (lines >= live) done();
        }
        return lines;
      });
      await follow('docker-cli', (id, done) =>
        cliLines(docker.dockerHost, id, true, (count) => {
          if (count >= live) done();
        }),
      );
      return results;
    } finally {
      await client.close();
      await docker.stop();
    }
  },
  ratios: [
    {
      label: 'following a live container: capstan / docker logs -f (lines/s)',
      numerator: { subject: 'capstan', metric: 'follow lines/s' },
      denominator: { subject: 'docker-cli', metric: 'follow lines/s' },
      goal: { op: '>=', value: 1 },
    },
    {
      label: 'capstan / docker logs CLI (lines/s)',
      numerator: { subject: 'capstan', metric: 'lines/s' },
      denominator: { subject: 'docker-cli', metric: 'lines/s' },
      goal: { op: '>=', value: 1 },
    },
  ],
};

export default bench;
