// TLS to a real `dockerd --tlsverify` (client certificate required): verification is on by default for every
// form that turns TLS on, a wrong CA or a wrong name fails with CAP_ERR_DOCKER_TLS, skipping verification is
// an explicit opt-in that warns once, and a log stream followed over TLS delivers every line.
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DockerClient, type DockerClientOptions, followLogs } from 'capstan/docker';
import { type DockerPeer, startDocker } from 'capstan/testing';

let docker: DockerPeer;
/** The daemon's TLS port, `https://127.0.0.1:<port>`. */
let httpsHost: string;
/** Client certificate and key only, no CA: verification falls back to the system CAs. */
let clientOnly: string;
const dirs: string[] = [];

before(async () => {
  docker = await startDocker({ tls: true });
  assert.ok(docker.tcpHost && docker.certPath);
  httpsHost = docker.tcpHost.replace('tcp://', 'https://');
  clientOnly = mkdtempSync(join(tmpdir(), 'capstan-clientonly-'));
  dirs.push(clientOnly);
  for (const f of ['cert.pem', 'key.pem']) copyFileSync(join(docker.certPath, f), join(clientOnly, f));
});

after(async () => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  await docker?.stop();
});

/** Ping with a fresh client; returns the warnings it gave. */
async function ping(options: DockerClientOptions): Promise<string[]> {
  const warnings: string[] = [];
  const client = new DockerClient({ ...options, onWarning: (m) => warnings.push(m) });
  try {
    await client.ping();
    await client.version();
  } finally {
    await client.close();
  }
  return warnings;
}

function isTlsError(e: unknown): boolean {
  assert.equal((e as { code?: string }).code, 'CAP_ERR_DOCKER_TLS', String(e));
  return true;
}

describe('Docker over TLS verifies by default', () => {
  test('https:// verifies: the CA from DOCKER_CERT_PATH works, no CA (system CAs only) fails CAP_ERR_DOCKER_TLS', async () => {
    // The right CA and client certificate, no DOCKER_TLS_VERIFY: verified, accepted, no warning.
    assert.deepEqual(await ping({ env: { DOCKER_HOST: httpsHost, DOCKER_CERT_PATH: docker.certPath } }), []);
    // No ca.pem: the throwaway CA is in no system store. This used to connect with no check at all.
    await assert.rejects(ping({ env: { DOCKER_HOST: httpsHost, DOCKER_CERT_PATH: clientOnly } }), isTlsError);
    // tcp:// with DOCKER_TLS (the CLI's --tls, which skips verification there) verifies here too.
    await assert.rejects(
      ping({ env: { DOCKER_HOST: docker.tcpHost, DOCKER_TLS: '1', DOCKER_CERT_PATH: clientOnly } }),
      isTlsError,
    );
  });

  test('a hostname mismatch is refused with CAP_ERR_DOCKER_TLS', async () => {
    // The daemon's certificate names 127.0.0.1 only; `localhost` reaches the same port with the right CA and
    // client certificate, so the name is the only thing wrong.
    const byName = httpsHost.replace('127.0.0.1', 'localhost');
    await assert.rejects(ping({ env: { DOCKER_HOST: byName, DOCKER_CERT_PATH: docker.certPath } }), (e) => {
      isTlsError(e);
      assert.match(String((e as { cause?: unknown }).cause), /localhost|altname|does not match/i);
      return true;
    });
  });

  test('skipping verification is an explicit opt-in, warned once', async () => {
    const env = { DOCKER_HOST: httpsHost, DOCKER_CERT_PATH: clientOnly };
    // The option: a client that could not verify the daemon connects, and says so once for two requests.
    const warnings = await ping({ env, tls: { insecureSkipVerify: true } });
    assert.equal(warnings.length, 1, String(warnings));
    assert.match(warnings[0]!, /verification .* is off \(tls\.insecureSkipVerify\)/);
    // The environment form, for the CLI.
    const fromEnv = await ping({ env: { ...env, CAPSTAN_DOCKER_TLS_SKIP_VERIFY: '1' } });
    assert.equal(fromEnv.length, 1, String(fromEnv));
    assert.match(fromEnv[0]!, /CAPSTAN_DOCKER_TLS_SKIP_VERIFY=1/);
    // The option wins over the environment, both ways.
    await assert.rejects(
      ping({ env: { ...env, CAPSTAN_DOCKER_TLS_SKIP_VERIFY: '1' }, tls: { insecureSkipVerify: false } }),
      isTlsError,
    );
    // Without a client certificate the daemon (--tlsverify) still refuses: skipping our check skips no other.
    const none = mkdtempSync(join(tmpdir(), 'capstan-nocerts-'));
    dirs.push(none);
    await assert.rejects(
      ping({ env: { DOCKER_HOST: httpsHost, DOCKER_CERT_PATH: none }, tls: { insecureSkipVerify: true } }),
      (e) => (e as { code?: string }).code === 'CAP_ERR_DOCKER_CONNECT',
    );
  });

  test('a log stream followed over TLS (dockerd --tlsverify) delivers every line, across a container restart', async () => {
    const lines = 3_000;
    const unix = new DockerClient({ host: docker.dockerHost });
    const tls = new DockerClient({ env: { DOCKER_HOST: httpsHost, DOCKER_CERT_PATH: docker.certPath } });
    try {
      assert.equal(tls.endpoint.tls?.rejectUnauthorized, true);
      const { Id } = await unix.createContainer({
        Image: docker.image,
        // Lines on both streams, in bursts, so the follower reads many TLS records and frames.
        Cmd: [
          'sh',
          '-c',
          `i=1; while [ $i -le ${lines} ]; do echo "out $i"; echo "err $i" >&2; ` +
            'if [ $((i % 500)) -eq 0 ]; then sleep 0.1; fi; i=$((i+1)); done',
        ],
        HostConfig: { NetworkMode: 'none' },
      });
      await unix.startContainer(Id);
      const seen: string[] = [];
      let restarted = false;
      const signal = AbortSignal.timeout(120_000);
      for await (const line of followLogs(tls, Id, { signal, graceMs: 3_000 })) {
        seen.push(`${line.stream} ${line.text}`);
        // Once the first run is complete, run it again: the follower reconnects over a new TLS connection.
        if (!restarted && seen.length === 2 * lines) {
          restarted = true;
          await unix.waitContainer(Id, { signal });
          await unix.startContainer(Id);
        }
      }
      assert.equal(seen.length, 4 * lines);
      for (const stream of ['stdout', 'stderr'] as const) {
        const prefix = stream === 'stdout' ? 'out' : 'err';
        const got = seen.filter((l) => l.startsWith(`${stream} `));
        const want = Array.from({ length: lines }, (_, i) => `${stream} ${prefix} ${i + 1}`);
        assert.deepEqual(got, [...want, ...want]);
      }
    } finally {
      await tls.close();
      await unix.close();
    }
  });
});
