import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));
const mainTs = fileURLToPath(new URL('./main.ts', import.meta.url));
const fixture = fileURLToPath(new URL('../runtime/config/testdata/service-config.ts', import.meta.url));

/** Run the real CLI in a child process with only `env` (plus PATH) in its environment. */
function capstan(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, ['--conditions=capstan-source', mainTs, ...args], {
    cwd: root,
    env: { PATH: process.env['PATH'] ?? '', ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const validEnv = {
  DATABASE_URL: 'postgres://app:s3cr3t-pw@db:5432/app',
  EXPORTER_TARGETS: 'a:1,b:2',
  EXPORTER_API_TOKEN: 'token-value-long',
};

describe('capstan config doc', () => {
  test('prints a table per exported definition, ignoring other exports', () => {
    const r = capstan(['config', 'doc', fixture]);
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.split('\n');
    assert.equal(lines[0], 'exporterConfig');
    assert.match(lines[1]!, /^Variable\s+Type\s+Default\s+Secret\s+Description$/);
    assert.match(r.stdout, /\nPORT\s+port\s+8080\s+HTTP listen port/);
    assert.match(
      r.stdout,
      /\nDATABASE_URL\s+url\(postgres:\|postgresql:\)\s+\(required\)\s+yes \(or _FILE\)\s+Database to export from/,
    );
    assert.match(r.stdout, /\nEXPORTER_SCRAPE_INTERVAL\s+duration\s+30s\s+Time between scrapes/);
    assert.match(r.stdout, /\nfeatureConfig\n/);
    assert.match(r.stdout, /\nFEATURE_FAST_PATH\s+bool\s+false\s+Use the fast path/);
    assert.doesNotMatch(r.stdout, /notAConfig/);
  });

  test('documents the example exporter users copy (examples/host-exporter.ts)', () => {
    const r = capstan(['config', 'doc', join(root, 'examples', 'host-exporter.ts')]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.split('\n')[0], 'exporterConfig');
    assert.match(r.stdout, /\nPORT\s+port\s+8080\s/);
    assert.match(
      r.stdout,
      /\nEXPORTER_MOUNTS\s+list<string>\s+\/\s+Filesystems whose free space is exported/,
    );
    assert.match(r.stdout, /\nEXPORTER_INTERVAL\s+duration\s+5s\s/);
    assert.match(
      r.stdout,
      /\nDATABASE_URL\s+url\(postgres:\|postgresql:\)\s+\(optional\)\s+yes \(or _FILE\)/,
    );
  });

  test('--export and --format json / markdown', () => {
    const json = capstan(['config', 'doc', fixture, '--export', 'featureConfig', '--format', 'json']);
    assert.equal(json.status, 0, json.stderr);
    assert.deepEqual(JSON.parse(json.stdout), {
      featureConfig: [
        {
          env: 'FEATURE_FAST_PATH',
          field: 'fastPath',
          type: 'bool',
          required: false,
          secret: false,
          description: 'Use the fast path',
          default: 'false',
        },
      ],
    });
    const md = capstan(['config', 'doc', fixture, '--export', 'exporterConfig', '--format', 'markdown']);
    assert.equal(md.status, 0, md.stderr);
    assert.match(
      md.stdout,
      /^### exporterConfig\n\n\| Variable \| Type \| Default \| Secret \| Description \|\n/,
    );
    assert.match(
      md.stdout,
      /\| EXPORTER_API_TOKEN \| string \| \(required\) \| yes \(or _FILE\) \| Token for the upstream API \|/,
    );
    assert.doesNotMatch(md.stdout, /featureConfig/);
  });

  test('bad inputs: unknown export, missing module, bad format', () => {
    const noExport = capstan(['config', 'doc', fixture, '--export', 'nope']);
    assert.equal(noExport.status, 2);
    assert.match(noExport.stderr, /exports no config definition named nope/);
    const noModule = capstan(['config', 'doc', 'does/not/exist.ts']);
    assert.equal(noModule.status, 2);
    assert.match(noModule.stderr, /cannot import does\/not\/exist\.ts/);
    const badFormat = capstan(['config', 'doc', fixture, '--format', 'xml']);
    assert.notEqual(badFormat.status, 0);
    assert.match(badFormat.stderr, /Allowed choices are table, markdown, json/);
  });
});

describe('capstan config check', () => {
  test('valid environment: exit 0', () => {
    const r = capstan(['config', 'check', fixture], validEnv);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'ok: 7 variables in 2 definition(s)\n');
  });

  test('--dotenv supplies variables; the real environment wins; a missing file is an error', () => {
    const dir = mkdtempSync(join(tmpdir(), 'capstan-cli-config-'));
    try {
      const file = join(dir, '.env');
      writeFileSync(
        file,
        '# service settings\nDATABASE_URL=postgres://app:pw@db/app\nEXPORTER_TARGETS="a,b"\nFEATURE_FAST_PATH=maybe\n',
      );
      const bad = capstan(['config', 'check', fixture, '--dotenv', file], {
        EXPORTER_API_TOKEN: 'long-enough',
      });
      assert.equal(bad.status, 78);
      assert.match(
        bad.stderr,
        /^invalid configuration: 1 problem\n {2}- FEATURE_FAST_PATH: expected a boolean/,
      );
      const ok = capstan(['config', 'check', fixture, '--dotenv', file], {
        EXPORTER_API_TOKEN: 'long-enough',
        FEATURE_FAST_PATH: 'on',
      });
      assert.equal(ok.status, 0, ok.stderr);
      const missing = capstan(['config', 'check', fixture, '--dotenv', join(dir, 'nope.env')]);
      assert.equal(missing.status, 2);
      assert.match(missing.stderr, /cannot read .*nope\.env: ENOENT/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('invalid environment: every problem listed, secrets masked, exit 78', () => {
    const r = capstan(['config', 'check', fixture], {
      ...validEnv,
      PORT: '',
      DATABASE_URL: 'mysql://app:s3cr3t-pw@db/app',
      EXPORTER_SCRAPE_INTERVAL: '30',
      EXPORTER_API_TOKEN: 'tiny',
      FEATURE_FAST_PATH: 'maybe',
    });
    assert.equal(r.status, 78);
    assert.equal(r.stdout, '');
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines[0], 'invalid configuration: 4 problems');
    assert.deepEqual(
      lines.slice(1).map((l) => l.replace(/^ {2}- (\w+):.*$/, '$1')),
      ['DATABASE_URL', 'EXPORTER_SCRAPE_INTERVAL', 'EXPORTER_API_TOKEN', 'FEATURE_FAST_PATH'],
    );
    assert.match(
      r.stderr,
      /FEATURE_FAST_PATH: expected a boolean \(true\/false, 1\/0, yes\/no, on\/off\), found "maybe"/,
    );
    assert.ok(!r.stderr.includes('s3cr3t-pw'));
    assert.ok(!r.stderr.includes('tiny'));
  });
});
