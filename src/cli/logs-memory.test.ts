import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DockerClient } from 'capstan/docker';
import { type DockerPeer, startDocker } from 'capstan/testing';

let docker: DockerPeer;
let client: DockerClient;

before(async () => {
  docker = await startDocker();
  client = new DockerClient({ host: docker.dockerHost });
});

after(async () => {
  await client?.close();
  await docker?.stop();
});

const main = join(import.meta.dirname, 'main.ts');
const BYTES = 200_000_000;
/** Generous: the follower holds about 2 MiB of the line; Node itself and the loaded CLI take the rest. */
const RSS_LIMIT_KIB = 300 * 1024;

/** Peak resident memory (VmHWM) of a live process, in KiB; undefined once it is gone. */
function peakRssKib(pid: number): number | undefined {
  try {
    const m = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

describe('capstan logs -f on a hostile stream (real dockerd)', () => {
  test('a 200 MB line without a newline: the follower stays under 300 MiB and prints every byte, in order', async (t) => {
    const name = 'mem-follow';
    const { Id } = await client.createContainer(
      {
        Image: docker.image,
        Cmd: ['sh', '-c', `head -c ${BYTES} /dev/zero | tr '\\0' x`],
        HostConfig: { NetworkMode: 'none' },
      },
      { name },
    );
    await client.startContainer(Id);
    const child = spawn(
      process.execPath,
      ['--conditions=capstan-source', main, 'logs', '-f', '--grace', '500ms', '--verbose', name],
      {
        env: { ...process.env, DOCKER_HOST: docker.dockerHost, NO_COLOR: '1' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    // Counted as it streams: the test must not hold the 200 MB either.
    let total = 0;
    let xs = 0;
    let newlines = 0;
    let head = '';
    let last = -1;
    child.stdout!.on('data', (chunk: Buffer) => {
      if (head.length < 64) head += chunk.toString('latin1', 0, 64);
      for (let i = 0; i < chunk.length; i++) {
        const c = chunk[i]!;
        if (c === 0x78) xs++;
        else if (c === 0x0a) newlines++;
      }
      total += chunk.length;
      last = chunk[chunk.length - 1]!;
    });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    let peak = 0;
    const sampler = setInterval(() => {
      peak = Math.max(peak, peakRssKib(child.pid!) ?? 0);
    }, 50);
    // Only a hang misses this: the daemon stores the 200 MB in about 3 s here and serves it back in about 2.
    const timeout = setTimeout(() => child.kill('SIGKILL'), 240_000);
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    clearInterval(sampler);
    clearTimeout(timeout);
    assert.equal(code, 0, stderr);
    t.diagnostic(`follower peak RSS ${Math.round(peak / 1024)} MiB, ${total} bytes printed`);
    assert.ok(peak > 0, 'sampled the follower');
    assert.ok(peak < RSS_LIMIT_KIB, `follower peak RSS ${Math.round(peak / 1024)} MiB`);
    const prefix = `${name} `;
    assert.equal(head.slice(0, prefix.length), prefix);
    assert.equal(xs, BYTES, 'every byte of the line');
    assert.equal(newlines, 1, 'one line, ended once');
    assert.equal(last, 0x0a);
    assert.equal(total, prefix.length + BYTES + 1, 'nothing else: one prefix, the bytes, one newline');
    assert.match(stderr, /stdout line longer than 1048576 bytes, printed in pieces \(1 line\(s\) so far\)/);
  });
});
