import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import {
  checkConfig,
  configGroup,
  defineConfig,
  describeConfig,
  EX_CONFIG,
  envNameFor,
  isConfigDefinition,
  listenConfig,
  loadConfig,
  renderConfigRows,
} from './config.ts';
import { type EnvField, env, formatDuration, parseDuration } from './env-types.ts';
import { ConfigDefinitionError, ConfigError } from './errors.ts';

const nodeBin = process.execPath;

/** Load a one-field definition reading `V` from `raw`. */
function one<T>(field: EnvField<T>, raw: string | undefined): T {
  const def = defineConfig({ fields: { v: field } });
  return loadConfig(def, raw === undefined ? {} : { V: raw }).v as T;
}

/** The ConfigError thrown when `field` reads `raw`. */
function failure(field: EnvField<unknown>, raw: string | undefined): ConfigError {
  try {
    one(field, raw);
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    assert.equal(err.code, 'CAP_ERR_RUNTIME_CONFIG_INVALID');
    return err;
  }
  assert.fail(`expected ${JSON.stringify(raw)} to be rejected`);
}

describe('env types', () => {
  test('port: 1..65535 integers only', () => {
    assert.equal(one(env.port(), '8080'), 8080);
    assert.equal(one(env.port(), ' 443 '), 443);
    assert.equal(one(env.port(), '65535'), 65535);
    for (const bad of ['0', '65536', '-1', '80.5', 'http', '8080abc', '1e3']) {
      const err = failure(env.port(), bad);
      assert.equal(err.issues[0]!.kind, 'invalid');
      assert.match(err.issues[0]!.expected, /port number \(integer 1\.\.65535\)/);
    }
    assert.equal(one(env.port({ allowZero: true }), '0'), 0);
  });

  test('int and number honour min/max', () => {
    assert.equal(one(env.int({ min: -5, max: 5 }), '-5'), -5);
    assert.equal(one(env.number(), '0.25'), 0.25);
    assert.equal(one(env.number(), '1e3'), 1000);
    assert.match(failure(env.int({ min: 1 }), '0').message, /expected an integer >= 1, found "0"/);
    assert.match(failure(env.int({ max: 3 }), '4').message, /expected an integer <= 3/);
    assert.match(failure(env.int(), '1.5').message, /expected an integer, found "1.5"/);
    assert.match(failure(env.int(), '99999999999999999999').message, /expected an integer/);
    assert.match(failure(env.number({ min: 0, max: 1 }), '1.5').message, /a number 0\.\.1/);
    assert.match(failure(env.number(), 'NaN').message, /expected a number/);
    assert.match(failure(env.number(), 'Infinity').message, /expected a number/);
  });

  test('bool: true/1/yes/on and false/0/no/off, anything else rejected', () => {
    for (const t of ['true', 'TRUE', '1', 'yes', 'On']) assert.equal(one(env.bool(), t), true, t);
    for (const f of ['false', 'False', '0', 'no', 'OFF']) assert.equal(one(env.bool(), f), false, f);
    for (const bad of ['2', 'y', 'enabled', 'nope', 'truee']) {
      assert.match(failure(env.bool(), bad).message, /expected a boolean \(true\/false/);
    }
    // The z.coerce.boolean() trap: "false" must not read as true.
    assert.equal(one(env.bool().default(true), 'false'), false);
  });

  test('duration: units to milliseconds, bare numbers only with a unit', () => {
    assert.equal(one(env.duration(), '250ms'), 250);
    assert.equal(one(env.duration(), '30s'), 30_000);
    assert.equal(one(env.duration(), '5m'), 300_000);
    assert.equal(one(env.duration(), '1h30m'), 5_400_000);
    assert.equal(one(env.duration(), '1.5h'), 5_400_000);
    assert.equal(one(env.duration(), '2d'), 172_800_000);
    assert.equal(one(env.duration(), '0'), 0);
    for (const bad of ['30', '1x', 'h', '5 m', '-5s', 's30', '1h30', '']) {
      if (bad === '') continue; // empty means unset, tested separately
      assert.match(failure(env.duration(), bad).message, /expected a duration such as 250ms/, bad);
    }
    assert.equal(one(env.duration({ unit: 's' }), '30'), 30_000);
    assert.equal(one(env.duration({ unit: 'ms' }), '30'), 30);
    assert.match(failure(env.duration({ unit: 's' }), '-3').message, /or a number of s/);
    assert.match(failure(env.duration({ max: 60_000 }), '2m').message, /<= 1m/);
    assert.equal(parseDuration('1h1m1s1ms'), 3_661_001);
    assert.equal(formatDuration(5_400_000), '1h30m');
    assert.equal(formatDuration(1_500), '1s500ms');
  });

  test('url: parses, restricts protocols, masks credentials in messages', () => {
    assert.equal(one(env.url(), 'https://example.com/x'), 'https://example.com/x');
    const pg = env.url({ protocols: ['postgres', 'postgresql:'] });
    assert.equal(one(pg, 'postgres://u:p@db:5432/app'), 'postgres://u:p@db:5432/app');
    assert.equal(one(pg, 'postgresql://db/app'), 'postgresql://db/app');
    const err = failure(pg, 'mysql://admin:hunter2@db/app');
    assert.match(err.message, /expected a URL with protocol postgres: or postgresql:/);
    assert.match(err.message, /found "mysql:\/\/admin:\[REDACTED\]@db\/app"/);
    assert.doesNotMatch(err.message, /hunter2/);
    assert.match(failure(env.url(), 'not a url').message, /expected a URL, found "not a url"/);
  });

  test('list: trimmed, typed items, empty entries skipped', () => {
    assert.deepEqual(one(env.list(), ' a, b ,c,'), ['a', 'b', 'c']);
    assert.deepEqual(one(env.list(env.int()), '1, 2,3'), [1, 2, 3]);
    assert.deepEqual(one(env.list(env.duration(), { separator: ';' }), '1s; 2m'), [1000, 120_000]);
    const err = failure(env.list(env.port()), '80,http,443');
    assert.match(
      err.message,
      /expected a comma-separated list of port numbers \(integer 1\.\.65535\); item 2 is invalid, found/,
    );
    assert.deepEqual(one(env.list(env.int()).default([7]), undefined), [7]);
    assert.deepEqual(one(env.list(env.int()).default('1,2'), undefined), [1, 2]);
    const shared = defineConfig({ fields: { v: env.list(env.int()).default([1]) } });
    assert.throws(() => (loadConfig(shared, {}).v as number[]).push(2), TypeError);
    assert.deepEqual(loadConfig(shared, {}).v, [1]);
  });

  test('enum and string', () => {
    const level = env.enum(['debug', 'info']);
    assert.equal(one(level, 'info'), 'info');
    assert.match(failure(level, 'INFO').message, /expected one of debug, info, found "INFO"/);
    assert.equal(one(env.enum(['debug', 'info'], { caseInsensitive: true }), 'INFO'), 'info');
    assert.equal(one(env.string(), ' keep spaces '), ' keep spaces ');
    assert.match(failure(env.string({ pattern: /^[a-z]+$/ }), 'A1').message, /matching/);
    assert.match(failure(env.string({ minLength: 3 }), 'ab').message, /at least 3 characters/);
  });

  test('raw zod schemas work as fields', () => {
    const def = defineConfig({
      fields: {
        mode: z.enum(['a', 'b']).default('a'),
        ratio: z.coerce.number().optional(),
        must: z.string(),
      },
    });
    assert.deepEqual({ ...loadConfig(def, { MUST: 'x' }) }, { mode: 'a', ratio: undefined, must: 'x' });
    assert.throws(() => loadConfig(def, { MODE: 'c' }), ConfigError);
    const { issues } = checkConfig(def, { MODE: 'c' });
    assert.deepEqual(
      issues.map((i) => [i.env, i.kind]),
      [
        ['MODE', 'invalid'],
        ['MUST', 'missing'],
      ],
    );
    assert.match(issues[0]!.message, /MODE: expected one of "a"\|"b", found "c"/);
  });
});

describe('loading', () => {
  test('empty or blank variables are unset: default, optional or "required"', () => {
    const def = defineConfig({
      fields: { port: env.port().default(8080), name: env.string().optional(), key: env.string() },
    });
    assert.deepEqual(
      { ...loadConfig(def, { PORT: '', NAME: '', KEY: 'k' }) },
      { port: 8080, name: undefined, key: 'k' },
    );
    const { issues } = checkConfig(def, { PORT: '   ', KEY: '' });
    assert.equal(issues.length, 1);
    assert.equal(issues[0]!.env, 'KEY');
    assert.equal(issues[0]!.kind, 'missing');
    assert.equal(issues[0]!.found, 'empty');
    assert.match(issues[0]!.message, /^KEY: required, expected a string, found empty$/);
    assert.equal(checkConfig(def, {}).issues[0]!.found, 'unset');
  });

  test('prefix maps camelCase fields; explicit names override it', () => {
    assert.equal(envNameFor('listenPort', 'EXPORTER_'), 'EXPORTER_LISTEN_PORT');
    assert.equal(envNameFor('databaseURL'), 'DATABASE_URL');
    assert.equal(envNameFor('http2Port', 'APP'), 'APP_HTTP2_PORT');
    assert.equal(envNameFor('maxRetries'), 'MAX_RETRIES');
    const def = defineConfig({
      prefix: 'EXPORTER',
      fields: { listenPort: env.port(), databaseUrl: env.url().env('DATABASE_URL') },
    });
    assert.deepEqual(
      def.entries.map((e) => e.env),
      ['EXPORTER_LISTEN_PORT', 'DATABASE_URL'],
    );
    const cfg = loadConfig(def, {
      EXPORTER_LISTEN_PORT: '9100',
      DATABASE_URL: 'redis://r',
      LISTEN_PORT: '1',
    });
    assert.equal(cfg.listenPort, 9100);
    assert.equal(cfg.databaseUrl, 'redis://r');
    assert.ok(Object.isFrozen(cfg));
  });

  test('groups nest fields like envconfig nested structs', () => {
    const def = defineConfig({
      prefix: 'APP_',
      fields: {
        name: env.string().default('app'),
        db: configGroup({
          url: env.url({ protocols: ['postgres:'] }).secret(),
          poolSize: env.int({ min: 1 }).default(10),
          tls: configGroup({ enabled: env.bool().default(false) }),
        }),
        cache: configGroup({ redisUrl: env.url().optional() }, { prefix: 'REDIS' }),
        flat: configGroup({ level: env.int().default(1) }, { prefix: '' }),
      },
    });
    assert.deepEqual(
      def.entries.map((e) => [e.key, e.env]),
      [
        ['name', 'APP_NAME'],
        ['db.url', 'APP_DB_URL'],
        ['db.poolSize', 'APP_DB_POOL_SIZE'],
        ['db.tls.enabled', 'APP_DB_TLS_ENABLED'],
        ['cache.redisUrl', 'APP_REDIS_REDIS_URL'],
        ['flat.level', 'APP_LEVEL'],
      ],
    );
    const cfg = loadConfig(def, { APP_DB_URL: 'postgres://db/x', APP_DB_TLS_ENABLED: 'yes' });
    const poolSize: number = cfg.db.poolSize;
    const tls: boolean = cfg.db.tls.enabled;
    assert.deepEqual(
      [cfg.name, cfg.db.url, poolSize, tls, cfg.cache.redisUrl, cfg.flat.level],
      ['app', 'postgres://db/x', 10, true, undefined, 1],
    );
    assert.ok(Object.isFrozen(cfg.db) && Object.isFrozen(cfg.db.tls));
    const { issues } = checkConfig(def, { APP_DB_POOL_SIZE: '0' });
    assert.deepEqual(
      issues.map((i) => [i.field, i.env, i.kind]),
      [
        ['db.url', 'APP_DB_URL', 'missing'],
        ['db.poolSize', 'APP_DB_POOL_SIZE', 'invalid'],
      ],
    );
    assert.equal(describeConfig(def)[1]!.field, 'db.url');
    assert.throws(
      () => defineConfig({ fields: { a: configGroup({ x: env.int() }), aX: env.int() } }),
      /fields a\.x and aX both read A_X/,
    );
    assert.throws(
      () => defineConfig({ fields: { g: configGroup({}, { prefix: 'a-b' }) } }),
      /invalid prefix "a-b" for group g/,
    );
  });

  test('every problem is reported at once, in definition order', () => {
    const def = defineConfig({
      prefix: 'APP_',
      fields: {
        port: env.port(),
        timeout: env.duration(),
        debug: env.bool(),
        hosts: env.list(env.url()),
        databaseUrl: env.url({ protocols: ['postgres:'] }),
        fine: env.int().default(1),
      },
    });
    const { issues } = checkConfig(def, {
      APP_PORT: 'eighty',
      APP_TIMEOUT: '10',
      APP_DEBUG: 'maybe',
      APP_HOSTS: 'http://a,::',
    });
    assert.deepEqual(
      issues.map((i) => `${i.env}:${i.kind}`),
      [
        'APP_PORT:invalid',
        'APP_TIMEOUT:invalid',
        'APP_DEBUG:invalid',
        'APP_HOSTS:invalid',
        'APP_DATABASE_URL:missing',
      ],
    );
    assert.throws(
      () => loadConfig(def, { APP_PORT: 'eighty' }),
      (e: unknown) =>
        e instanceof ConfigError &&
        e.issues.length === 5 &&
        /^invalid configuration: 5 problems\n {2}- APP_PORT: expected a port number/.test(e.message),
    );
  });

  test('secret values never appear in messages or documentation', () => {
    const secretValue = 'SUPER-SECRET-VALUE-42';
    const def = defineConfig({
      fields: {
        apiToken: env.string({ minLength: 40 }).secret(),
        pin: env.int().secret(),
        keys: env.list(env.int()).secret(),
        dsn: env.url({ protocols: ['postgres:'] }).secret(),
        plainUrl: env.url({ protocols: ['postgres:'] }),
        signingKey: env.string().secret().default('default-signing-key'),
      },
    });
    const { issues } = checkConfig(def, {
      API_TOKEN: secretValue,
      PIN: secretValue,
      KEYS: `1,${secretValue}`,
      DSN: `mysql://${secretValue}`,
      PLAIN_URL: `mysql://user:${secretValue}@host`,
    });
    assert.equal(issues.length, 5);
    const text = JSON.stringify(issues);
    assert.ok(!text.includes(secretValue), text);
    assert.ok(!text.includes('SUPER-SECRET'), text);
    assert.deepEqual(
      issues.slice(0, 4).map((i) => i.found),
      ['[REDACTED]', '[REDACTED]', '[REDACTED]', '[REDACTED]'],
    );
    assert.equal(issues[4]!.found, '"mysql://user:[REDACTED]@host"');
    const quoting = defineConfig({
      fields: {
        key: env
          .custom(z.string().refine((v) => v.startsWith('k-'), { error: (i) => `bad key ${i.input}` }))
          .secret(),
      },
    });
    const quoted = checkConfig(quoting, { KEY: secretValue }).issues[0]!;
    assert.ok(!quoted.message.includes(secretValue), quoted.message);
    assert.match(quoted.message, /bad key \[REDACTED\]/);
    const doc = JSON.stringify(describeConfig(def));
    assert.ok(!doc.includes('default-signing-key'));
    assert.throws(
      () => env.int().secret().default(secretValue),
      (e: unknown) => e instanceof ConfigDefinitionError && !e.message.includes(secretValue),
    );
  });

  test('secrets may come from <NAME>_FILE, never both, unreadable files reported', () => {
    const dir = mkdtempSync(join(tmpdir(), 'capstan-config-'));
    try {
      const tokenFile = join(dir, 'token');
      writeFileSync(tokenFile, 'file-token-value\n');
      const badFile = join(dir, 'dsn');
      writeFileSync(badFile, 'mysql://root:filepw@db\n');
      const def = defineConfig({
        fields: {
          apiToken: env.string().secret(),
          dsn: env.url({ protocols: ['postgres:'] }).secret(),
          other: env.string().secret().optional(),
          plain: env.string().optional(),
        },
      });
      const cfg = loadConfig(def, {
        API_TOKEN_FILE: tokenFile,
        DSN: 'postgres://db/x',
        PLAIN_FILE: tokenFile,
      });
      assert.equal(cfg.apiToken, 'file-token-value');
      // Only secret fields read _FILE.
      assert.equal(cfg.plain, undefined);
      const { issues } = checkConfig(def, {
        API_TOKEN: 'inline',
        API_TOKEN_FILE: tokenFile,
        DSN_FILE: badFile,
        OTHER_FILE: join(dir, 'missing'),
      });
      assert.deepEqual(
        issues.map((i) => i.message),
        [
          'API_TOKEN: expected either API_TOKEN or API_TOKEN_FILE, not both, found both set',
          'DSN (from DSN_FILE): expected a URL with protocol postgres:, found [REDACTED]',
          `OTHER_FILE: expected a readable file, found ${JSON.stringify(join(dir, 'missing'))} (ENOENT)`,
        ],
      );
      assert.ok(!JSON.stringify(issues).includes('filepw'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('definition mistakes fail at definition time', () => {
    assert.throws(
      () => defineConfig({ fields: { listenPort: env.port(), other: env.port().env('LISTEN_PORT') } }),
      (e: unknown) => e instanceof ConfigDefinitionError && e.code === 'CAP_ERR_RUNTIME_CONFIG_DEFINITION',
    );
    assert.throws(() => env.port().env('BAD-NAME'), ConfigDefinitionError);
    assert.throws(() => env.duration().default('30'), /default "30" is not a duration/);
    assert.throws(() => defineConfig({ prefix: 'A-B', fields: {} }), ConfigDefinitionError);
    assert.throws(
      () => defineConfig({ fields: { x: 42 as unknown as EnvField<number> } }),
      /neither an env field nor a zod schema/,
    );
  });

  test('listenConfig: PORT defaults to 8080, 0 allowed, HOST optional', () => {
    assert.deepEqual({ ...loadConfig(listenConfig, {}) }, { port: 8080, host: undefined });
    assert.deepEqual(
      { ...loadConfig(listenConfig, { PORT: '0', HOST: '127.0.0.1' }) },
      { port: 0, host: '127.0.0.1' },
    );
    assert.deepEqual({ ...loadConfig(listenConfig, { PORT: '' }) }, { port: 8080, host: undefined });
    assert.throws(
      () => loadConfig(listenConfig, { PORT: '99999' }),
      /PORT: expected a port number \(integer 0\.\.65535\)/,
    );
    assert.ok(isConfigDefinition(listenConfig));
    assert.ok(!isConfigDefinition({ fields: {} }));
  });
});

describe('documentation', () => {
  test('describeConfig rows and renderings', () => {
    const def = defineConfig({
      prefix: 'EXP_',
      fields: {
        listenPort: env.port().default(9100).describe('Metrics port'),
        interval: env.duration().default(90_000),
        token: env.string().secret().describe('API | token'),
        tags: env.list().optional(),
      },
    });
    const rows = describeConfig(def);
    assert.deepEqual(rows[0], {
      env: 'EXP_LISTEN_PORT',
      field: 'listenPort',
      type: 'port',
      required: false,
      default: '9100',
      secret: false,
      description: 'Metrics port',
    });
    assert.equal(rows[1]!.default, '1m30s');
    assert.equal(rows[2]!.required, true);
    assert.equal(rows[2]!.secret, true);
    assert.deepEqual(
      rows.map((r) => r.fileEnv),
      [undefined, undefined, 'EXP_TOKEN_FILE', undefined],
    );
    assert.equal(rows[3]!.type, 'list<string>');
    const table = renderConfigRows(rows, 'table').split('\n');
    assert.match(table[0]!, /^Variable\s+Type\s+Default\s+Secret\s+Description$/);
    assert.match(table[3]!, /^EXP_TOKEN\s+string\s+\(required\)\s+yes \(or _FILE\)\s+API \| token$/);
    const md = renderConfigRows(rows, 'markdown');
    assert.match(
      md,
      /^\| Variable \| Type \| Default \| Secret \| Description \|\n\|---\|---\|---\|---\|---\|\n/,
    );
    assert.match(md, /API \\\| token/);
    assert.deepEqual(JSON.parse(renderConfigRows(rows, 'json')), rows);
  });
});

/** Every form a secret could leak in, by name: raw, URL-, form-, URI-encoded, base64, hex, JSON-escaped. */
function secretForms(secret: string): Map<string, string> {
  const bytes = Buffer.from(secret, 'utf8');
  const json = JSON.stringify(secret).slice(1, -1);
  return new Map([
    ['raw', secret],
    ['URL-encoded', encodeURIComponent(secret)],
    ['URI-encoded', encodeURI(secret)],
    ['form-encoded', new URLSearchParams({ s: secret }).toString().slice(2)],
    ['base64', bytes.toString('base64')],
    ['base64 without padding', bytes.toString('base64').replace(/=+$/, '')],
    ['base64url', bytes.toString('base64url')],
    ['hex', bytes.toString('hex')],
    ['HEX', bytes.toString('hex').toUpperCase()],
    ['JSON-escaped', json],
    [
      'JSON-escaped, ASCII only',
      json.replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`),
    ],
    ['JSON-escaped, slashes too', json.replaceAll('/', '\\/')],
  ]);
}

/**
 * Fails when any secret shows in `output`: in any form of {@link secretForms}; split across lines or
 * wrapped (the output without whitespace); or any 5 characters of it in a row (a partial mask).
 */
function assertNoSecret(output: string, secrets: readonly string[]): void {
  const squeezed = output.replace(/\s+/g, '');
  for (const secret of secrets) {
    for (const [form, text] of secretForms(secret)) {
      assert.ok(!output.includes(text), `the ${form} form of a secret is in the output:\n${output}`);
      assert.ok(!squeezed.includes(text), `the ${form} form of a secret is split across lines:\n${output}`);
    }
    for (let i = 0; i + 5 <= secret.length; i++) {
      const part = secret.slice(i, i + 5);
      assert.ok(!output.includes(part), `a part of a secret (${JSON.stringify(part)}) is in the output`);
    }
  }
}

describe('loadConfigOrExit', () => {
  const script = fileURLToPath(new URL('./testdata/exit-78.ts', import.meta.url));
  const run = (env: Record<string, string>) =>
    spawnSync(nodeBin, [script], {
      env: { PATH: process.env['PATH'] ?? '', ...env },
      encoding: 'utf8',
      timeout: 60_000,
    });

  // Secrets whose characters change under every encoding a message might apply: @ / : + " and a non-ASCII
  // letter. Each value is invalid, so the message is about it.
  const password = 'p@ss/w:rd+x"é';
  const databaseUrl = `mysql://root:${encodeURIComponent(password)}@db.internal/x`;
  const token = 't@k/:"é'; // 7 characters: shorter than the 8 the token needs

  test('prints every problem to stderr and exits 78 before starting, and no secret in any form', () => {
    const r = run({
      EXPORTER_SCRAPE_INTERVAL: '30',
      DATABASE_URL: databaseUrl,
      PORT: 'x',
      EXPORTER_API_TOKEN: token,
    });
    assert.equal(r.status, EX_CONFIG, r.stderr);
    assert.equal(r.stdout, '');
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines[0], 'invalid configuration: 5 problems');
    assert.deepEqual(
      lines.slice(1).map((l) => l.replace(/^ {2}- (\w+):.*$/, '$1')),
      ['PORT', 'DATABASE_URL', 'EXPORTER_SCRAPE_INTERVAL', 'EXPORTER_TARGETS', 'EXPORTER_API_TOKEN'],
    );
    assertNoSecret(r.stdout + r.stderr, [databaseUrl, password, token]);
  });

  test('a secret read from its _FILE appears in no form either', () => {
    const dir = mkdtempSync(join(tmpdir(), 'capstan-exit78-'));
    try {
      const file = join(dir, 'token');
      writeFileSync(file, token, { mode: 0o600 });
      const r = run({ DATABASE_URL: databaseUrl, EXPORTER_TARGETS: 'a', EXPORTER_API_TOKEN_FILE: file });
      assert.equal(r.status, EX_CONFIG, r.stderr);
      assert.match(r.stderr, /EXPORTER_API_TOKEN \(from EXPORTER_API_TOKEN_FILE\): .*found \[REDACTED\]/);
      assertNoSecret(r.stdout + r.stderr, [databaseUrl, password, token]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('assertNoSecret catches each form it claims to', () => {
    // The check itself must be able to fail: each encoded form, and the raw value split over lines.
    for (const [form, text] of secretForms(password)) {
      assert.throws(() => assertNoSecret(`found ${text}\n`, [password]), /in the output/, form);
    }
    assert.throws(() => assertNoSecret('found p@ss/w:r\n  d+x"é\n', [password]), /split across lines/);
    assert.throws(() => assertNoSecret('found p@ss/****', [password]), /a part of a secret/);
    assert.doesNotThrow(() => assertNoSecret('found [REDACTED]\n', [password, token]));
  });

  test('starts normally when the environment is valid', () => {
    const r = run({
      DATABASE_URL: 'postgres://u:p@db/x',
      EXPORTER_TARGETS: 'a,b',
      EXPORTER_API_TOKEN: 'long-enough',
    });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'started on 8080\n');
  });
});
