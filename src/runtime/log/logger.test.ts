import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Headers as UndiciHeaders } from 'undici';
import { loadConfig } from '../config/config.ts';
import { ConfigError } from '../config/errors.ts';
import { createRedactor, maskUrlCredentials } from '../redact.ts';
import { LogError } from './errors.ts';
import {
  createLogger,
  flushLogs,
  type LogFormat,
  type LoggerOptions,
  type LogLevel,
  logConfig,
} from './logger.ts';

/** A logger writing into an array; each entry is one raw line. */
function capture(options: LoggerOptions = {}) {
  const lines: string[] = [];
  const log = createLogger({
    format: 'json',
    ...options,
    destination: { write: (s: string) => lines.push(s) },
  });
  const parsed = () => lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  return { log, lines, parsed };
}

describe('JSON lines', () => {
  test('one object per line: level label, ISO time, msg, pid, hostname, name, component', () => {
    const { log, lines, parsed } = capture({ name: 'svc', component: 'api' });
    log.info('hello');
    log.warn({ answer: 42 }, 'with %s', 'args');
    assert.equal(lines.length, 2);
    for (const l of lines) assert.ok(l.endsWith('}\n') && !l.slice(0, -1).includes('\n'));
    const [a, b] = parsed();
    assert.equal(a!['level'], 'info');
    assert.equal(a!['msg'], 'hello');
    assert.equal(a!['name'], 'svc');
    assert.equal(a!['component'], 'api');
    assert.equal(a!['pid'], process.pid);
    assert.equal(typeof a!['hostname'], 'string');
    assert.match(a!['time'] as string, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.equal(new Date(a!['time'] as string).toISOString(), a!['time']);
    assert.equal(b!['level'], 'warn');
    assert.equal(b!['msg'], 'with args');
    assert.equal(b!['answer'], 42);
  });

  test('child bindings are added to every line and can be nested', () => {
    const { log, parsed } = capture({ name: 'svc' });
    const req = log.child({ component: 'http', requestId: 'r-1' });
    req.info('a');
    req.child({ attempt: 2 }).error('b');
    log.info('c');
    const [a, b, c] = parsed();
    assert.deepEqual([a!['component'], a!['requestId']], ['http', 'r-1']);
    assert.deepEqual(
      [b!['component'], b!['requestId'], b!['attempt'], b!['level']],
      ['http', 'r-1', 2, 'error'],
    );
    assert.equal(c!['requestId'], undefined);
  });

  test('re-binding a key replaces it instead of printing it twice', () => {
    const { log, lines } = capture({ name: 'svc', component: 'main', level: 'debug' });
    const http = log.child({ component: 'http', requestId: 'r-1' });
    http.child({ requestId: 'r-2', user: 'ann' }).debug('x');
    http.info('y');
    const [x, y] = lines;
    assert.equal(x!.match(/"component"/g)?.length, 1, x);
    assert.equal(x!.match(/"requestId"/g)?.length, 1, x);
    assert.deepEqual(
      [
        JSON.parse(x!).name,
        JSON.parse(x!).component,
        JSON.parse(x!).requestId,
        JSON.parse(x!).user,
        JSON.parse(x!).level,
      ],
      ['svc', 'http', 'r-2', 'ann', 'debug'],
    );
    assert.equal(y!.match(/"component"/g)?.length, 1, y);
    assert.equal(JSON.parse(y!).requestId, 'r-1');
  });

  test('errors are serialised with type, message and stack', () => {
    const { log, parsed } = capture();
    log.error(new TypeError('bad thing'));
    log.error({ err: new Error('outer', { cause: new Error('inner') }) }, 'failed');
    const [a, b] = parsed();
    assert.equal(a!['msg'], 'bad thing');
    const err = a!['err'] as Record<string, unknown>;
    assert.equal(err['type'], 'TypeError');
    assert.match(err['stack'] as string, /TypeError: bad thing/);
    assert.equal(b!['msg'], 'failed');
    assert.match(JSON.stringify(b!['err']), /inner/);
  });
});

describe('levels', () => {
  test('level filtering from options and from LOG_LEVEL (read at the edge with logConfig)', () => {
    const explicit = capture({ level: 'warn' });
    explicit.log.debug('d');
    explicit.log.info('i');
    explicit.log.warn('w');
    explicit.log.error('e');
    assert.deepEqual(
      explicit.parsed().map((l) => l['msg']),
      ['w', 'e'],
    );
    const fromEnv = capture({ ...loadConfig(logConfig, { LOG_LEVEL: 'DEBUG' }) });
    fromEnv.log.trace('t');
    fromEnv.log.debug('d');
    assert.deepEqual(
      fromEnv.parsed().map((l) => l['level']),
      ['debug'],
    );
    const byDefault = capture({ ...loadConfig(logConfig, { LOG_LEVEL: '' }) });
    byDefault.log.debug('d');
    byDefault.log.info('i');
    assert.equal(byDefault.lines.length, 1);
  });

  test('bad options and an unopenable file are LogErrors', () => {
    const sink = { write: () => {} };
    const isLogError = (re: RegExp) => (e: unknown) =>
      e instanceof LogError && e.code === 'CAP_ERR_RUNTIME_LOG_OPTIONS' && re.test(e.message);
    assert.throws(
      () => createLogger({ level: 'verbose' as LogLevel, destination: sink }),
      isLogError(/unknown log level "verbose"/),
    );
    assert.throws(
      () => createLogger({ format: 'xml' as LogFormat, destination: sink }),
      isLogError(/unknown log format "xml"/),
    );
    // A regular file where a directory should be. (Not a path under /proc: Node's recursive mkdir
    // spins forever there.)
    const dir = mkdtempSync(join(tmpdir(), 'capstan-log-bad-'));
    try {
      writeFileSync(join(dir, 'file'), '');
      assert.throws(
        () => createLogger({ destination: join(dir, 'file', 'app.log') }),
        isLogError(/cannot open log file/),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('an invalid LOG_LEVEL or LOG_FORMAT is a ConfigError naming both', () => {
    assert.throws(
      () =>
        createLogger({
          ...loadConfig(logConfig, { LOG_LEVEL: 'verbose', LOG_FORMAT: 'xml' }),
          destination: { write: () => {} },
        }),
      (e: unknown) =>
        e instanceof ConfigError &&
        e.issues.map((i) => i.env).join() === 'LOG_LEVEL,LOG_FORMAT' &&
        /LOG_LEVEL: expected one of trace, debug, info, warn, error, fatal, silent, found "verbose"/.test(
          e.message,
        ),
    );
  });

  test('createLogger reads no environment: a bad LOG_LEVEL or PORT there breaks nothing', () => {
    const saved = { LOG_LEVEL: process.env['LOG_LEVEL'], PORT: process.env['PORT'] };
    process.env['LOG_LEVEL'] = 'verbose';
    process.env['PORT'] = 'abc';
    try {
      const { log, parsed } = capture();
      log.debug('d');
      log.info('i');
      assert.deepEqual(
        parsed().map((l) => l['msg']),
        ['i'],
      );
    } finally {
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  });
});

describe('redaction', () => {
  test('secret-named fields at any depth, in arrays and in headers', () => {
    const { log, lines, parsed } = capture();
    const input = {
      user: {
        name: 'ann',
        password: 'pw1',
        profile: { apiKey: 'k1', api_key: 'k2', nested: [{ token: 't1' }] },
      },
      headers: {
        Authorization: 'Bearer abc',
        cookie: 'sid=1',
        'Set-Cookie': 'sid=2',
        'X-Api-Key': 'k3',
        accept: '*/*',
      },
      accessKeyId: 'AKIA',
      privateKey: '-----BEGIN',
      clientSecret: 's1',
      passwd: 'p2',
      refresh_token: 'r1',
      count: 3,
      auth: 'user:pw9',
      author: 'ann',
      passenger: 'bob',
      tokenizer: 'bpe',
    };
    log.info(input, 'req');
    const line = lines[0]!;
    for (const secret of [
      'pw1',
      'k1',
      'k2',
      't1',
      'Bearer abc',
      'sid=1',
      'sid=2',
      'k3',
      'AKIA',
      '-----BEGIN',
      's1',
      'p2',
      'r1',
      'pw9',
    ]) {
      assert.ok(!line.includes(secret), `${secret} leaked: ${line}`);
    }
    const o = parsed()[0]!;
    const user = o['user'] as Record<string, Record<string, unknown>>;
    assert.equal(user['name'] as unknown, 'ann');
    assert.equal(user['password'] as unknown, '[REDACTED]');
    assert.deepEqual(user['profile'], {
      apiKey: '[REDACTED]',
      api_key: '[REDACTED]',
      nested: [{ token: '[REDACTED]' }],
    });
    assert.deepEqual(o['headers'], {
      Authorization: '[REDACTED]',
      cookie: '[REDACTED]',
      'Set-Cookie': '[REDACTED]',
      'X-Api-Key': '[REDACTED]',
      accept: '*/*',
    });
    assert.equal(o['count'], 3);
    assert.equal(o['auth'], '[REDACTED]');
    // Short names match only whole; fragments match anywhere (so `tokenizer` is over-redacted, by choice).
    assert.deepEqual([o['author'], o['passenger'], o['tokenizer']], ['ann', 'bob', '[REDACTED]']);
    // The caller's object is untouched.
    assert.equal(input.user.password, 'pw1');
    assert.equal(input.headers.Authorization, 'Bearer abc');
  });

  test('URL credentials in field values, messages, errors and child bindings', () => {
    const { log, lines, parsed } = capture();
    log.info(
      { dsn: 'postgres://app:pa55@db:5432/x', list: ['redis://:rp@cache:6379'] },
      'connecting to amqp://guest:gp@mq/',
    );
    log.child({ upstream: 'https://bot:ghp_abc@git.example/x.git', sessionToken: 'st' }).warn('child');
    log.error(new Error('cannot reach mysql://root:rootpw@db'));
    log.info({ url: new URL('https://u:urlpw@h/') }, 'url object');
    for (const secret of ['pa55', ':rp@', 'gp@', 'ghp_abc', 'rootpw', 'urlpw', '"st"']) {
      assert.ok(!lines.join('').includes(secret), `${secret} leaked`);
    }
    const [a, b, c, d] = parsed();
    assert.equal(a!['dsn'], 'postgres://app:[REDACTED]@db:5432/x');
    assert.deepEqual(a!['list'], ['redis://:[REDACTED]@cache:6379']);
    assert.equal(a!['msg'], 'connecting to amqp://guest:[REDACTED]@mq/');
    assert.equal(b!['upstream'], 'https://bot:[REDACTED]@git.example/x.git');
    assert.equal(b!['sessionToken'], '[REDACTED]');
    assert.equal(c!['msg'], 'cannot reach mysql://root:[REDACTED]@db');
    assert.equal(d!['url'], 'https://u:[REDACTED]@h/');
  });

  test('extra keys, cycles, and values without secrets pass unchanged', () => {
    const { log, lines, parsed } = capture({ redactKeys: ['ssn'] });
    const cyclic: Record<string, unknown> = { name: 'loop', ssn: '123' };
    cyclic['self'] = cyclic;
    log.info({ cyclic }, 'c');
    const o = parsed()[0]!['cyclic'] as Record<string, unknown>;
    assert.equal(o['ssn'], '[REDACTED]');
    assert.equal(o['name'], 'loop');
    // The back-reference must not hand pino the original object (it would print `ssn` in full).
    assert.equal(o['self'], '[Circular]');
    assert.ok(!lines.join('').includes('123'), lines.join(''));
    const redact = createRedactor();
    const clean = { a: 1, b: ['x', { c: 'http://host/no-creds' }] };
    assert.equal(redact(clean), clean);
    assert.equal(maskUrlCredentials('plain text'), 'plain text');
    assert.equal(maskUrlCredentials('a@b and x://h'), 'a@b and x://h');
    assert.equal(maskUrlCredentials('ftp://user@host'), 'ftp://user@host');
  });
});

describe('pretty', () => {
  test('non-plain values: class instances, Map, Set, Headers (Node and undici), URLSearchParams, null-prototype', () => {
    const { log, lines, parsed } = capture();
    class DbClient {
      host = 'db';
      password = 'SEC-instance';
      options = { sslKey: 'k', privateKey: 'SEC-instance-nested' };
    }
    class WithToJson {
      toJSON() {
        return { user: 'ann', token: 'SEC-tojson' };
      }
    }
    const headers = new Headers({ authorization: 'Bearer SEC-headers', accept: 'text/plain' });
    const undiciHeaders = new UndiciHeaders({ Authorization: 'Bearer SEC-undici', 'x-trace': 't1' });
    const nullProto = Object.assign(Object.create(null) as Record<string, unknown>, {
      authorization: 'Bearer SEC-nullproto',
      host: 'h',
    });
    const map = new Map<unknown, unknown>([
      ['apiToken', 'SEC-map'],
      ['user', 'ann'],
      ['nested', new Map([['password', 'SEC-map-nested']])],
    ]);
    log.info(
      {
        client: new DbClient(),
        json: new WithToJson(),
        map,
        set: new Set(['postgres://app:SEC-set@db/x', { secret: 'SEC-set-obj' }]),
        headers,
        undiciHeaders,
        nullProto,
        query: new URLSearchParams('access_token=SEC-query&page=2'),
        rawHeaders: ['Host', 'h', 'Authorization', 'Bearer SEC-raw', 'Cookie', 'sid=SEC-raw-cookie'],
        when: new Date(0),
      },
      'non-plain',
    );
    // As the merging object itself, too.
    log.info(new DbClient(), 'instance');
    log.info(map, 'map');
    log.info(headers, 'headers');
    const out = lines.join('');
    for (const secret of [
      'SEC-instance',
      'SEC-tojson',
      'SEC-map',
      'SEC-set',
      'SEC-headers',
      'SEC-undici',
      'SEC-nullproto',
      'SEC-query',
      'SEC-raw',
    ]) {
      assert.ok(!out.includes(secret), `${secret} leaked: ${out}`);
    }
    const [a, b, c, d] = parsed();
    assert.deepEqual(a!['client'], {
      host: 'db',
      password: '[REDACTED]',
      options: { sslKey: 'k', privateKey: '[REDACTED]' },
    });
    assert.deepEqual(a!['json'], { user: 'ann', token: '[REDACTED]' });
    // A Map is logged as an object of its entries, a Set as an array, a Headers as an object.
    assert.deepEqual(a!['map'], { apiToken: '[REDACTED]', user: 'ann', nested: { password: '[REDACTED]' } });
    assert.deepEqual(a!['set'], ['postgres://app:[REDACTED]@db/x', { secret: '[REDACTED]' }]);
    assert.deepEqual(a!['headers'], { authorization: '[REDACTED]', accept: 'text/plain' });
    assert.deepEqual(a!['undiciHeaders'], { authorization: '[REDACTED]', 'x-trace': 't1' });
    assert.deepEqual(a!['nullProto'], { authorization: '[REDACTED]', host: 'h' });
    assert.deepEqual(a!['query'], { access_token: '[REDACTED]', page: '2' });
    assert.equal(a!['when'], '1970-01-01T00:00:00.000Z');
    assert.deepEqual(a!['rawHeaders'], ['Host', 'h', 'Authorization', '[REDACTED]', 'Cookie', '[REDACTED]']);
    assert.deepEqual([b!['host'], b!['password']], ['db', '[REDACTED]']);
    assert.deepEqual([c!['apiToken'], c!['user']], ['[REDACTED]', 'ann']);
    assert.deepEqual([d!['authorization'], d!['accept']], ['[REDACTED]', 'text/plain']);
  });

  test('errors: own fields, the cause chain (errors or not) and AggregateError.errors', () => {
    const { log, lines, parsed } = capture();
    const inner = Object.assign(new Error('inner'), {
      config: { headers: new Headers({ authorization: 'Bearer SEC-cause-headers' }) },
    });
    const middle = new Error('middle', { cause: inner });
    const outer = Object.assign(new Error('outer', { cause: middle }), { apiKey: 'SEC-own' });
    log.error(outer);
    log.error({ err: new Error('plain cause', { cause: { token: 'SEC-plain-cause', host: 'h' } }) }, 'x');
    const aggregate = new AggregateError(
      [
        Object.assign(new Error('one'), { password: 'SEC-agg' }),
        new Error('two', { cause: { secret: 'SEC-agg-cause' } }),
      ],
      'all failed',
    );
    log.error({ err: aggregate }, 'aggregate');
    // A cycle of causes ends.
    const loopA = new Error('a');
    const loopB = new Error('b', { cause: loopA });
    (loopA as { cause?: unknown }).cause = loopB;
    log.error({ err: loopA }, 'loop');
    const out = lines.join('');
    for (const secret of ['SEC-cause-headers', 'SEC-own', 'SEC-plain-cause', 'SEC-agg']) {
      assert.ok(!out.includes(secret), `${secret} leaked: ${out}`);
    }
    const [a, b, c, d] = parsed();
    const err = a!['err'] as Record<string, unknown>;
    assert.equal(err['type'], 'Error');
    assert.match(String(err['message']), /outer: middle: inner/);
    assert.equal(err['apiKey'], '[REDACTED]');
    const cause = err['cause'] as Record<string, unknown>;
    assert.match(String(cause['message']), /middle/);
    const innerOut = (cause['cause'] as Record<string, unknown>)['config'] as Record<string, unknown>;
    assert.deepEqual(innerOut['headers'], { authorization: '[REDACTED]' });
    assert.deepEqual((b!['err'] as Record<string, unknown>)['cause'], { token: '[REDACTED]', host: 'h' });
    const agg = (c!['err'] as Record<string, unknown>)['aggregateErrors'] as Array<Record<string, unknown>>;
    assert.deepEqual(
      agg.map((e) => [e['message'], e['password']]),
      [
        ['one', '[REDACTED]'],
        ['two', undefined],
      ],
    );
    assert.deepEqual(agg[1]!['cause'], { secret: '[REDACTED]' });
    assert.match(JSON.stringify(d!['err']), /\[Circular\]/);
  });

  test('depth is bounded: a deep value is cut, not walked (or printed) without end', () => {
    const { log, lines, parsed } = capture();
    let deep: Record<string, unknown> = { password: 'SEC-deep' };
    for (let i = 0; i < 10_000; i++) deep = { next: deep };
    log.info({ deep }, 'deep');
    assert.ok(!lines.join('').includes('SEC-deep'));
    assert.match(lines[0]!, /"\[Truncated\]"/);
    assert.equal(parsed()[0]!['msg'], 'deep');
  });

  test('format arguments (%j, %o, %O, %s) are redacted before they become message text; %d unaffected', () => {
    const { log, lines, parsed } = capture();
    const err = Object.assign(new Error('boom at postgres://app:SEC-err-url@db/x'), {
      token: 'SEC-err-field',
    });
    log.info('%j', { apiToken: 'SEC-j' });
    log.info('%o', { password: 'SEC-o' });
    log.info('%O', { secret: 'SEC-O' });
    log.info('%s', new Map([['authorization', 'SEC-s-map']]));
    log.info(
      '%j then %o',
      new Headers({ authorization: 'Bearer SEC-j-headers' }),
      new Map([['token', 'SEC-o-map']]),
    );
    log.info({ requestId: 'r1' }, 'with merging object %j', { cookie: 'SEC-after-object' });
    log.info(
      '%j',
      new (class Conn {
        url = 'redis://:SEC-conn-url@cache:6379';
        password = 'SEC-conn';
      })(),
    );
    log.info('failed: %s', err);
    log.info('failed: %j', err);
    log.info('%d items in %d ms', 42, 3.5);
    const out = lines.join('');
    for (const secret of [
      'SEC-j',
      'SEC-o',
      'SEC-O',
      'SEC-s-map',
      'SEC-j-headers',
      'SEC-o-map',
      'SEC-after-object',
      'SEC-conn',
      'SEC-err-url',
      'SEC-err-field',
    ]) {
      assert.ok(!out.includes(secret), `${secret} leaked: ${out}`);
    }
    const msgs = parsed().map((l) => l['msg']);
    assert.equal(msgs[0], '{"apiToken":"[REDACTED]"}');
    assert.equal(msgs[1], '{"password":"[REDACTED]"}');
    assert.equal(msgs[2], '{"secret":"[REDACTED]"}');
    assert.equal(msgs[4], '{"authorization":"[REDACTED]"} then {"token":"[REDACTED]"}');
    assert.equal(msgs[5], 'with merging object {"cookie":"[REDACTED]"}');
    assert.equal(parsed()[5]!['requestId'], 'r1');
    assert.equal(msgs[6], '{"url":"redis://:[REDACTED]@cache:6379","password":"[REDACTED]"}');
    // %s of an error still reads as the error, minus its secrets.
    assert.equal(msgs[7], 'failed: Error: boom at postgres://app:[REDACTED]@db/x');
    assert.match(String(msgs[8]), /"token":"\[REDACTED\]"/);
    assert.equal(msgs[9], '42 items in 3.5 ms');
  });

  test('LOG_FORMAT=pretty prints human lines through pino-pretty, still redacted', () => {
    const lines: string[] = [];
    const log = createLogger({
      component: 'web',
      ...loadConfig(logConfig, { LOG_FORMAT: 'pretty' }),
      destination: { write: (s: string) => lines.push(s) },
    });
    log.info({ password: 'pw', port: 8080 }, 'listening');
    log.debug('not shown');
    assert.equal(lines.length, 1);
    const text = lines[0]!;
    assert.throws(() => JSON.parse(text));
    assert.match(text, /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: listening\n/);
    assert.match(text, /component: "web"/);
    assert.match(text, /password: "\[REDACTED\]"/);
    assert.match(text, /port: 8080/);
    assert.ok(!text.includes('"pw"'));
  });

  test('on a terminal stdout the default is pretty and coloured; on a pipe it is JSON', () => {
    const child = fileURLToPath(new URL('./testdata/tty-child.ts', import.meta.url));
    const env = { PATH: process.env['PATH'] ?? '', TERM: 'xterm' };
    // util-linux `script` runs the child on a pseudo-terminal.
    const tty = spawnSync('script', ['-qec', `'${process.execPath}' '${child}'`, '/dev/null'], {
      env,
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.equal(tty.error, undefined, 'util-linux script(1) is needed for this test');
    assert.equal(tty.status, 0, tty.stderr);
    assert.match(tty.stdout, /\[\d\d:\d\d:\d\d\.\d{3}\] \u001b\[32mINFO\u001b\[39m: \u001b\[36mhello tty/);
    assert.match(tty.stdout, /password\u001b\[39m: "\[REDACTED\]"/);
    const piped = spawnSync(process.execPath, [child], { env, encoding: 'utf8', timeout: 60_000 });
    assert.equal(piped.status, 0, piped.stderr);
    const line = JSON.parse(piped.stdout) as Record<string, unknown>;
    assert.deepEqual([line['msg'], line['password'], line['component']], ['hello tty', '[REDACTED]', 'tty']);
    const forced = spawnSync('script', ['-qec', `'${process.execPath}' '${child}'`, '/dev/null'], {
      env: { ...env, LOG_FORMAT: 'json' },
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.equal(forced.status, 0, forced.stderr);
    assert.equal((JSON.parse(forced.stdout) as Record<string, unknown>)['msg'], 'hello tty');
  });

  test('JSON by default when the destination is not a terminal', () => {
    const lines: string[] = [];
    createLogger({ destination: { write: (s: string) => lines.push(s) } }).info('x');
    assert.equal((JSON.parse(lines[0]!) as Record<string, unknown>)['msg'], 'x');
  });
});

describe('destinations and flushing', () => {
  const dirs: string[] = [];
  after(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  test('file destination receives every line', () => {
    const dir = mkdtempSync(join(tmpdir(), 'capstan-log-'));
    dirs.push(dir);
    const file = join(dir, 'sub', 'app.log');
    const log = createLogger({ format: 'json', destination: file });
    for (let i = 0; i < 500; i++) log.info({ i }, 'l');
    flushLogs();
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    assert.equal(lines.length, 500);
    assert.equal((JSON.parse(lines[499]!) as Record<string, unknown>)['i'], 499);
  });

  const script = fileURLToPath(new URL('./testdata/log-burst.ts', import.meta.url));
  const N = 20_000;

  /** Run the burst child; resolve with its stdout, exit code and signal. */
  function burst(mode: 'exit' | 'sigterm' | 'sigkill' | 'epipe') {
    return new Promise<{ out: string; err: string; code: number | null; signal: NodeJS.Signals | null }>(
      (resolve, reject) => {
        const child = spawn(process.execPath, [script, String(N), mode], {
          env: { PATH: process.env['PATH'] ?? '' },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
        const chunks: Buffer[] = [];
        let err = '';
        child.stdout.on('data', (c: Buffer) => {
          chunks.push(c);
          if (mode === 'epipe') child.stdout.destroy();
        });
        child.stderr.on('data', (c: Buffer) => {
          err += c.toString();
          if ((mode === 'sigterm' || mode === 'sigkill') && err.includes('ready\n'))
            child.kill(mode === 'sigterm' ? 'SIGTERM' : 'SIGKILL');
        });
        child.on('error', reject);
        child.on('close', (code, signal) => {
          clearTimeout(timer);
          resolve({ out: Buffer.concat(chunks).toString('utf8'), err, code, signal });
        });
      },
    );
  }

  function assertAllLines(out: string) {
    const lines = out.split('\n');
    assert.equal(lines.pop(), '', 'output ends with a newline');
    assert.equal(lines.length, N);
    for (let i = 0; i < N; i++) {
      const o = JSON.parse(lines[i]!) as Record<string, unknown>;
      assert.equal(o['seq'], i);
      assert.equal(o['password'], '[REDACTED]');
    }
  }

  test(`process.exit right after ${N} lines loses none`, async () => {
    const r = await burst('exit');
    assert.equal(r.code, 0);
    assertAllLines(r.out);
  });

  test('a reader closing the pipe mid-burst (EPIPE) does not crash the program', async () => {
    const r = await burst('epipe');
    assert.equal(r.signal, null);
    assert.equal(r.code, 0, r.err);
    assert.equal(r.err, 'survived\n');
    assert.ok(r.out.startsWith('{"level":"info"'));
  });

  test(`SIGKILL right after ${N} lines loses none (nothing was left in a buffer)`, async () => {
    const r = await burst('sigkill');
    assert.equal(r.signal, 'SIGKILL');
    assertAllLines(r.out);
  });

  test(`SIGTERM then flushLogs after ${N} lines loses none`, async () => {
    const r = await burst('sigterm');
    assert.equal(r.signal, null);
    assert.equal(r.code, 0);
    assertAllLines(r.out);
  });
});
