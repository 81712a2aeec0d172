import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import {
  DockerError,
  formatDockerTime,
  formatRfc3339Nano,
  ndjson,
  parseDurationMs,
  parseTimestampNs,
  resolveEndpoint,
  throwIfStreamError,
  toNs,
} from 'capstan/docker';

async function parse(chunks: Array<string | Buffer>): Promise<unknown[]> {
  const out: unknown[] = [];
  const source = (async function* () {
    for (const c of chunks) yield typeof c === 'string' ? Buffer.from(c) : c;
  })();
  for await (const v of ndjson(source)) out.push(v);
  return out;
}

const isCode = (code: string) => (e: unknown) => e instanceof DockerError && e.code === code;

describe('ndjson', () => {
  const objects = [
    { status: 'start', id: 'a', Actor: { Attributes: { name: 'x\ny', emoji: 'é☃' } } },
    { status: 'die', id: 'b', note: '}{ not a boundary' },
    { status: 'destroy', id: 'c' },
  ];
  const text = `${objects.map((o) => JSON.stringify(o)).join('\n')}\n`;

  test('objects packed in one chunk, split across chunks, and split byte by byte (incl. UTF-8)', async () => {
    assert.deepEqual(await parse([text]), objects);
    assert.deepEqual(await parse([text.slice(0, 10), text.slice(10, 57), text.slice(57)]), objects);
    const bytes = Buffer.from(text);
    assert.deepEqual(await parse(Array.from(bytes, (_, i) => bytes.subarray(i, i + 1))), objects);
  });

  test('concatenated objects without newline, blank lines, and a last object without newline', async () => {
    const glued = `${JSON.stringify(objects[0])}${JSON.stringify(objects[1])}\n\n\r\n${JSON.stringify(objects[2])}`;
    assert.deepEqual(await parse([glued]), objects);
  });

  test('a truncated object at the end raises CAP_ERR_DOCKER_JSON', async () => {
    await assert.rejects(parse(['{"status":"start"}\n{"status":"di']), isCode('CAP_ERR_DOCKER_JSON'));
  });

  test('throwIfStreamError turns {error, errorDetail} into CAP_ERR_DOCKER_STREAM with the daemon text', () => {
    assert.throws(
      () =>
        throwIfStreamError(
          { errorDetail: { message: 'manifest unknown' }, error: 'manifest unknown' },
          'pull x',
        ),
      (e: unknown) =>
        isCode('CAP_ERR_DOCKER_STREAM')(e) && (e as DockerError).daemonMessage === 'manifest unknown',
    );
    assert.throws(() => throwIfStreamError({ error: 'boom' }, 'pull x'), /pull x failed: boom/);
    throwIfStreamError({ status: 'Downloading' }, 'pull x');
    throwIfStreamError(null, 'pull x');
  });
});

describe('time', () => {
  test('RFC3339Nano parses exactly, including trimmed trailing zeros and offsets', () => {
    assert.equal(parseTimestampNs('2026-11-25T09:11:56.319265997Z'), 1795597916319265997n);
    assert.equal(parseTimestampNs('2026-11-25T09:11:56.31926Z'), 1795597916319260000n);
    assert.equal(parseTimestampNs('2026-11-25T09:11:56Z'), 1795597916000000000n);
    assert.equal(parseTimestampNs('2026-11-25T10:11:56.5+01:00'), 1795597916500000000n);
    assert.equal(parseTimestampNs('not a time'), undefined);
    assert.equal(parseTimestampNs('2026-11-25 09:11:56Z'), undefined);
    assert.equal(parseTimestampNs('2026-11-25T09:11:56.x1Z'), undefined);
    assert.equal(parseTimestampNs('2026-11-25T09:11:56.1234567891Z'), undefined);
    assert.equal(parseTimestampNs('2026-11-25T09:11:56.Z'), undefined);
    assert.equal(parseTimestampNs('2026-11-25T09:11:57.000000001Z'), 1795597917000000001n);
  });

  test('formatting for the API and back', () => {
    assert.equal(formatDockerTime(1795597916000000001n), '1795597916.000000001');
    assert.equal(formatRfc3339Nano(1795597916319265997n), '2026-11-25T09:11:56.319265997Z');
    assert.equal(parseTimestampNs(formatRfc3339Nano(1795597916000000007n)), 1795597916000000007n);
  });

  test('durations and time specs', () => {
    assert.equal(parseDurationMs('10m'), 600_000);
    assert.equal(parseDurationMs('1h30m'), 5_400_000);
    assert.equal(parseDurationMs('500ms'), 500);
    for (const bad of ['', '10', '5x', 'm10', '10m junk'])
      assert.throws(() => parseDurationMs(bad), isCode('CAP_ERR_DOCKER_BAD_REQUEST'));
    const now = 1_700_000_000_000;
    assert.equal(toNs('10m', now), BigInt(now - 600_000) * 1_000_000n);
    assert.equal(toNs('1700000000.5'), 1_700_000_000_500_000_000n);
    assert.equal(toNs(1_700_000_000), 1_700_000_000_000_000_000n);
    assert.equal(toNs(new Date(5)), 5_000_000n);
  });
});

describe('resolveEndpoint (the Docker CLI rules)', () => {
  test('unix sockets, default, tcp without TLS', () => {
    assert.deepEqual(resolveEndpoint(undefined, {}), {
      origin: 'http://localhost',
      socketPath: '/var/run/docker.sock',
      host: 'unix:///var/run/docker.sock',
    });
    assert.equal(resolveEndpoint(undefined, { DOCKER_HOST: 'unix:///tmp/x.sock' }).socketPath, '/tmp/x.sock');
    assert.equal(resolveEndpoint('tcp://10.0.0.1', {}).origin, 'http://10.0.0.1:2375');
    assert.equal(
      resolveEndpoint(undefined, { DOCKER_HOST: 'tcp://h:1234', DOCKER_API_VERSION: '1.41' }).apiVersion,
      '1.41',
    );
  });

  test('TLS from DOCKER_TLS_VERIFY + DOCKER_CERT_PATH; missing files are a config error', () => {
    const dir = mkdtempSync(join(tmpdir(), 'capstan-certs-'));
    try {
      for (const f of ['ca.pem', 'cert.pem', 'key.pem']) writeFileSync(join(dir, f), `${f} contents`);
      const ep = resolveEndpoint('tcp://docker.example:2376', {
        DOCKER_TLS_VERIFY: '1',
        DOCKER_CERT_PATH: dir,
      });
      assert.equal(ep.origin, 'https://docker.example:2376');
      assert.equal(ep.tls?.ca?.toString(), 'ca.pem contents');
      assert.equal(ep.tls?.rejectUnauthorized, true);
      rmSync(join(dir, 'key.pem'));
      assert.throws(
        () => resolveEndpoint('tcp://docker.example', { DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: dir }),
        isCode('CAP_ERR_DOCKER_CONFIG'),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('TLS verifies unless explicitly told not to: https://, DOCKER_TLS, ca.pem optional, system CAs', () => {
    const dir = mkdtempSync(join(tmpdir(), 'capstan-certs-'));
    const empty = mkdtempSync(join(tmpdir(), 'capstan-nocerts-'));
    try {
      for (const f of ['ca.pem', 'cert.pem', 'key.pem']) writeFileSync(join(dir, f), `${f} contents`);
      // https:// alone: TLS on, verified, files from the cert path when there.
      const https = resolveEndpoint('https://docker.example', { DOCKER_CERT_PATH: dir });
      assert.equal(https.origin, 'https://docker.example:2376');
      assert.equal(https.tls?.rejectUnauthorized, true);
      assert.equal(https.tls?.cert?.toString(), 'cert.pem contents');
      // DOCKER_TLS (the CLI's --tls, unverified there) verifies; no ca.pem: the system CAs (no `ca`).
      const tlsOnly = resolveEndpoint('tcp://docker.example', { DOCKER_TLS: '1', DOCKER_CERT_PATH: empty });
      assert.deepEqual(tlsOnly.tls, { rejectUnauthorized: true });
      // A `tls` option turns TLS on for tcp://.
      assert.equal(resolveEndpoint('tcp://h', {}, { tls: {} }).origin, 'https://h:2376');
      // The opt-out, by option or environment; the option wins; a typo or a contradiction is refused.
      const skip = { DOCKER_CERT_PATH: empty };
      assert.equal(
        resolveEndpoint('https://h', skip, { tls: { insecureSkipVerify: true } }).tls?.rejectUnauthorized,
        false,
      );
      const env = { ...skip, CAPSTAN_DOCKER_TLS_SKIP_VERIFY: 'true' };
      assert.equal(resolveEndpoint('https://h', env).tls?.rejectUnauthorized, false);
      assert.equal(
        resolveEndpoint('https://h', env, { tls: { insecureSkipVerify: false } }).tls?.rejectUnauthorized,
        true,
      );
      assert.throws(
        () => resolveEndpoint('https://h', { ...skip, CAPSTAN_DOCKER_TLS_SKIP_VERIFY: 'yes please' }),
        isCode('CAP_ERR_DOCKER_CONFIG'),
      );
      assert.throws(
        () => resolveEndpoint('https://h', { ...env, DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: dir }),
        isCode('CAP_ERR_DOCKER_CONFIG'),
      );
      // Half a client certificate is a mistake, not an anonymous connection.
      rmSync(join(dir, 'key.pem'));
      assert.throws(
        () => resolveEndpoint('https://h', { DOCKER_CERT_PATH: dir }),
        isCode('CAP_ERR_DOCKER_CONFIG'),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
      rmSync(empty, { recursive: true, force: true });
    }
  });

  test('bad hosts are config errors', () => {
    assert.throws(() => resolveEndpoint('ssh://user@host', {}), isCode('CAP_ERR_DOCKER_CONFIG'));
    assert.throws(() => resolveEndpoint('unix://', {}), isCode('CAP_ERR_DOCKER_CONFIG'));
    assert.throws(() => resolveEndpoint('tcp://', {}), isCode('CAP_ERR_DOCKER_CONFIG'));
  });
});
