import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  type ChannelCredentials,
  Client,
  credentials,
  Metadata,
  type ServiceError,
  status,
} from '@grpc/grpc-js';
import { createCertAuthority } from '../../runtime/index.ts';
import { encodeValue } from './cty.ts';
import { healthService } from './go-plugin.ts';
import { type LaunchedProvider, launchProvider } from './plugin-client.ts';
import { MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE } from './plugin-server.ts';

const fixture = fileURLToPath(new URL('../testdata/file-provider.ts', import.meta.url));
const nodeArgs = ['--conditions=capstan-source', fixture];

function pemOf(certBase64: string): string {
  return `-----BEGIN CERTIFICATE-----\n${Buffer.from(certBase64, 'base64').toString('base64')}\n-----END CERTIFICATE-----\n`;
}

/** A health Check over a channel of our choosing (wrong or no client certificate). */
function checkWith(socket: string, creds: ChannelCredentials): Promise<number> {
  const client = new Client(`unix://${socket}`, creds, { 'grpc.ssl_target_name_override': 'localhost' });
  const def = healthService.Check!;
  return new Promise<number>((resolve, reject) => {
    client.makeUnaryRequest(
      def.path,
      def.requestSerialize,
      def.responseDeserialize,
      { service: 'plugin' },
      new Metadata(),
      { deadline: Date.now() + 10_000 },
      (err: ServiceError | null, res?: { status: number }) => {
        client.close();
        if (err) reject(err);
        else resolve(res!.status);
      },
    );
  });
}

describe('plugin process (go-plugin handshake, AutoMTLS, controller, health)', () => {
  test('refuses to run without TF_PLUGIN_MAGIC_COOKIE: a clear message on stderr, exit 1, nothing on stdout', () => {
    const env = { ...process.env };
    delete env[MAGIC_COOKIE_KEY];
    const r = spawnSync(process.execPath, nodeArgs, { env, encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 1, r.stderr);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /This binary is a plugin\. These are not meant to be executed directly\./);
    // A wrong cookie is no cookie.
    const wrong = spawnSync(process.execPath, nodeArgs, {
      env: { ...env, [MAGIC_COOKIE_KEY]: 'nope' },
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.equal(wrong.status, 1);
    assert.equal(wrong.stdout, '');
  });

  test('refuses a host that offers no protocol 6', () => {
    const r = spawnSync(process.execPath, nodeArgs, {
      env: { ...process.env, [MAGIC_COOKIE_KEY]: MAGIC_COOKIE_VALUE, PLUGIN_PROTOCOL_VERSIONS: '4,5' },
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.equal(r.status, 1);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /plugin protocol 4,5; this provider speaks 6 only/);
  });

  describe('a launched provider', () => {
    let root: string;
    let provider: LaunchedProvider;

    before(async () => {
      root = mkdtempSync(join(tmpdir(), 'capstan-tf-proto-'));
      provider = await launchProvider(process.execPath, {
        args: nodeArgs,
        env: { CAPSTANTEST_ROOT: root, PLUGIN_UNIX_SOCKET_DIR: root },
      });
    });
    after(async () => {
      await provider?.close();
      rmSync(root, { recursive: true, force: true });
    });

    test('prints exactly one handshake line: 1|6|unix|<socket>|grpc|<CA cert, base64 DER without padding>', () => {
      const m = /^1\|6\|unix\|([^|]+)\|grpc\|([A-Za-z0-9+/]+)$/.exec(provider.handshake);
      assert.ok(m, provider.handshake);
      const [, socket, cert] = m;
      // The socket honours PLUGIN_UNIX_SOCKET_DIR.
      assert.equal(join(root, socket!.slice(root.length + 1)), socket);
      assert.ok(statSync(socket!).isSocket());
      const x509 = new X509Certificate(Buffer.from(cert!, 'base64'));
      assert.ok(x509.ca, 'the handshake certificate is the root the host pins');
      assert.equal(provider.laterStdout(), '');
    });

    test('serves gRPC health "plugin" and "" as SERVING, anything else NOT_FOUND', async () => {
      assert.equal(await provider.health('plugin'), 1);
      assert.equal(await provider.health(''), 1);
      await assert.rejects(provider.health('tfplugin6.Provider.nope'), { code: status.NOT_FOUND });
    });

    test('speaks TLS with the host certificate only: no, or another, client certificate is refused', async () => {
      const root = pemOf(provider.address.certBase64);
      await assert.rejects(checkWith(provider.address.path, credentials.createSsl(Buffer.from(root))), {
        code: status.UNAVAILABLE,
      });
      const stranger = await createCertAuthority('stranger', 1);
      await assert.rejects(
        checkWith(
          provider.address.path,
          credentials.createSsl(
            Buffer.from(root),
            Buffer.from(stranger.keyPem),
            Buffer.from(stranger.certPem),
          ),
        ),
        { code: status.UNAVAILABLE },
      );
      await assert.rejects(checkWith(provider.address.path, credentials.createInsecure()), {
        code: status.UNAVAILABLE,
      });
      // The server is who the handshake says: the same call over the launcher's channel succeeds.
      assert.equal(await provider.health(), 1);
    });

    test('takes and sends messages far beyond gRPC 4 MiB default (limits raised to 256 MiB)', async () => {
      await provider.call('ConfigureProvider', {
        config: { msgpack: Buffer.from(encodeValue({ object: { root: 'string' } }, { root })) },
      });
      const type = {
        object: { size: 'number', echo: 'string', content: 'string', length: 'number' },
      } as const;
      const echo = 'e'.repeat(12 * 1024 * 1024);
      const res = await provider.call<{ state: { msgpack: Buffer }; diagnostics: unknown[] }>(
        'ReadDataSource',
        {
          type_name: 'capstantest_blob',
          config: { msgpack: Buffer.from(encodeValue(type, { size: 20 * 1024 * 1024, echo })) },
        },
      );
      assert.deepEqual(res.diagnostics, []);
      assert.ok(res.state.msgpack.length > 20 * 1024 * 1024, `response of ${res.state.msgpack.length} bytes`);
    });

    test('provider code writing to stdout after the handshake lands on stderr, never on stdout', async () => {
      const type = {
        object: {
          id: 'string',
          name: 'string',
          content: 'string',
          mode: 'string',
          size: 'number',
          labels: { map: 'string' },
          extra: 'dynamic',
          owner: { object: { name: 'string', uid: 'number' } },
          rule: { list: { object: { port: 'number', protocol: 'string' } } },
        },
      } as const;
      const planned = { name: 'noisy', content: 'LOG-TO-STDOUT', mode: '0644', rule: [] };
      const res = await provider.call<{ diagnostics: unknown[] }>('ApplyResourceChange', {
        type_name: 'capstantest_file',
        prior_state: { msgpack: Buffer.from(encodeValue(type, null)) },
        planned_state: { msgpack: Buffer.from(encodeValue(type, planned)) },
        config: { msgpack: Buffer.from(encodeValue(type, planned)) },
      });
      assert.deepEqual(res.diagnostics, []);
      assert.ok(existsSync(join(root, 'noisy')));
      assert.equal(provider.laterStdout(), '');
      assert.match(provider.stderr(), /provider code writing to stdout/);
    });

    test('logs are hclog JSON lines on stderr (level, message, microsecond timestamp)', () => {
      const lines = provider
        .stderr()
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, string>);
      const serving = lines.find((l) => l['@message'] === 'provider serving');
      assert.ok(serving, provider.stderr());
      assert.equal(serving['@level'], 'info');
      assert.equal(serving['@module'], 'provider.terraform-provider-capstantest');
      assert.match(serving['@timestamp']!, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    });

    test('plugin.GRPCController/Shutdown ends the process with status 0 and removes the socket', async () => {
      const socket = provider.address.path;
      assert.equal(await provider.shutdown(), 0);
      assert.equal(existsSync(socket), false);
    });
  });
});
