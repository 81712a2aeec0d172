import assert from 'node:assert/strict';
import {
  copyFileSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { DockerClient } from 'capstan/docker';
import { busyboxTarball, createTestCertificates, startDocker } from 'capstan/testing';

/** Pids whose command line mentions `dir` (dockerd, its containerd, shims). */
function processesUsing(dir: string): number[] {
  return readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e))
    .filter((e) => {
      try {
        return readFileSync(`/proc/${e}/cmdline`, 'utf8').includes(dir);
      } catch {
        return false;
      }
    })
    .map(Number);
}

const mountsUnder = (dir: string) =>
  readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((l) => l.split(' ')[4]?.startsWith(dir));

test('startDocker: private daemon with busybox:local; live restore keeps containers; stop leaves nothing behind', async () => {
  const tarball = busyboxTarball();
  assert.ok(existsSync(tarball));
  const docker = await startDocker({ liveRestore: true });
  const client = new DockerClient({ host: docker.dockerHost });
  let pid = 0;
  try {
    assert.equal(docker.dockerHost, `unix://${docker.socketPath}`);
    assert.ok(docker.socketPath.startsWith(docker.dir));
    const { Id } = await client.createContainer({
      Image: docker.image,
      Cmd: ['sh', '-c', 'ls /bin | wc -l; echo $((6*7)); sleep 300'],
      HostConfig: { NetworkMode: 'none' },
    });
    await client.startContainer(Id);
    pid = (await client.inspectContainer(Id)).State.Pid;
    assert.ok(pid > 0 && existsSync(`/proc/${pid}`));
    const ls = await client.exec(Id, ['sh', '-c', 'echo $((6*7))']);
    assert.equal(ls.stdout.toString(), '42\n');

    await docker.restart();
    const after = await client.inspectContainer(Id);
    assert.equal(after.State.Running, true, 'live restore kept the container running');
    assert.equal(after.State.Pid, pid);
    assert.ok(processesUsing(docker.dir).length >= 2, 'dockerd and its containerd run from the private dir');
  } finally {
    await client.close();
    await docker.stop();
  }
  assert.equal(existsSync(`/proc/${pid}`), false, 'the container process is gone');
  assert.deepEqual(processesUsing(docker.dir), []);
  assert.deepEqual(mountsUnder(docker.dir), []);
  assert.equal(existsSync(docker.dir), false);
  await docker.stop();
});

test('startDocker without live restore: a daemon restart stops running containers; TLS over tcp like the CLI', async () => {
  const docker = await startDocker({ tls: true });
  const client = new DockerClient({ host: docker.dockerHost });
  try {
    const { Id } = await client.createContainer({
      Image: docker.image,
      Cmd: ['sleep', '300'],
      HostConfig: { NetworkMode: 'none' },
    });
    await client.startContainer(Id);
    await docker.restart();
    assert.equal((await client.inspectContainer(Id)).State.Running, false);

    // DOCKER_HOST=tcp://... + DOCKER_TLS_VERIFY + DOCKER_CERT_PATH, as the Docker CLI reads them.
    assert.ok(docker.tcpHost && docker.certPath);
    const env = { DOCKER_HOST: docker.tcpHost, DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: docker.certPath };
    const tls = new DockerClient({ env });
    try {
      assert.match(tls.endpoint.origin, /^https:\/\/127\.0\.0\.1:\d+$/);
      const listed = await tls.listContainers({ all: true });
      assert.deepEqual(
        listed.map((c) => c.Id),
        [Id],
      );
    } finally {
      await tls.close();
    }
    // Plain HTTP to the TLS port: the daemon answers 400.
    const plain = new DockerClient({ env: { DOCKER_HOST: docker.tcpHost } });
    try {
      await assert.rejects(plain.ping(), (e: unknown) => (e as { status?: number }).status === 400);
    } finally {
      await plain.close();
    }
    // TLS without a client certificate (only the CA in the cert path): the daemon refuses it
    // (TLS 1.3: the refusal comes after the client's side of the handshake, as a closed connection).
    const noCerts = mkdtempSync(join(tmpdir(), 'capstan-nocerts-'));
    copyFileSync(join(docker.certPath, 'ca.pem'), join(noCerts, 'ca.pem'));
    const anonymous = new DockerClient({
      env: { DOCKER_HOST: docker.tcpHost, DOCKER_TLS: '1', DOCKER_CERT_PATH: noCerts },
    });
    try {
      await assert.rejects(anonymous.ping(), (e: unknown) => {
        assert.equal((e as { code?: string }).code, 'CAP_ERR_DOCKER_CONNECT', String(e));
        assert.match(String((e as Error).message), /other side closed|certificate|handshake/i);
        return true;
      });
    } finally {
      await anonymous.close();
    }
    // DOCKER_TLS (the CLI's --tls, which does not verify the daemon there) verifies here too, and works.
    const tlsOnly = new DockerClient({
      env: { DOCKER_HOST: docker.tcpHost, DOCKER_TLS: '1', DOCKER_CERT_PATH: docker.certPath },
    });
    try {
      assert.equal(tlsOnly.endpoint.tls?.rejectUnauthorized, true);
      await tlsOnly.ping();
    } finally {
      await tlsOnly.close();
    }
    // Verification against another CA: the daemon's certificate is refused before anything is sent.
    const otherCa = mkdtempSync(join(tmpdir(), 'capstan-otherca-'));
    try {
      writeFileSync(join(otherCa, 'ca.pem'), (await createTestCertificates()).caPem);
      for (const f of ['cert.pem', 'key.pem']) copyFileSync(join(docker.certPath, f), join(otherCa, f));
      const wrongCa = new DockerClient({
        env: { DOCKER_HOST: docker.tcpHost, DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: otherCa },
      });
      try {
        await assert.rejects(wrongCa.ping(), (e: unknown) => {
          assert.equal((e as { code?: string }).code, 'CAP_ERR_DOCKER_TLS', String(e));
          assert.match(
            `${(e as Error).message} ${String((e as { cause?: unknown }).cause)}`,
            /certificate|self.signed|verify/i,
          );
          return true;
        });
      } finally {
        await wrongCa.close();
      }
    } finally {
      rmSync(otherCa, { recursive: true, force: true });
      rmSync(noCerts, { recursive: true, force: true });
    }
  } finally {
    await client.close();
    await docker.stop();
  }
  assert.deepEqual(processesUsing(docker.dir), []);
  assert.equal(existsSync(docker.dir), false);
});
