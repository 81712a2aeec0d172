import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import pg from 'pg';
import { PeerError, peerCacheDir } from '../peers/index.ts';
import { canConnect } from '../runtime/index.ts';
import { startPostgres } from './postgres.ts';

test('startPostgres serves a private database on loopback and cleans up on stop', async () => {
  const server = await startPostgres({ user: 'al"ice', password: "p@ss w'ord/1", database: 'shop' });
  try {
    assert.equal(server.host, '127.0.0.1');
    assert.equal(server.user, 'al"ice');
    assert.equal(server.database, 'shop');
    assert.equal(server.password, "p@ss w'ord/1");
    // The URL encodes the password so drivers parse it back intact.
    assert.equal(decodeURIComponent(new URL(server.url).password), "p@ss w'ord/1");
    assert.ok(
      readdirSync(server.dir).some((f) => f.startsWith('.s.PGSQL.')),
      'unix socket lives in the temp dir',
    );
    assert.ok(
      readdirSync(peerCacheDir('postgres')).some((f) => /^data-template-[\d.]+-f\d+$/.test(f)),
      'the initdb template is cached',
    );

    const client = new pg.Client({ connectionString: server.url });
    client.on('error', () => {});
    await client.connect();
    try {
      const { rows } = await client.query(
        "SELECT current_user AS u, current_database() AS d, current_setting('fsync') AS f, " +
          "current_setting('listen_addresses') AS l",
      );
      assert.deepEqual(rows, [{ u: 'al"ice', d: 'shop', f: 'off', l: '127.0.0.1' }]);
      await client.query('CREATE TABLE t (id int primary key)');
      await client.query('INSERT INTO t VALUES (1), (2)');
      assert.equal((await client.query('SELECT count(*)::int AS n FROM t')).rows[0].n, 2);
    } finally {
      await client.end();
    }

    const bad = new pg.Client({
      connectionString: server.url.replace(new URL(server.url).password, 'nope'),
    });
    bad.on('error', () => {});
    await assert.rejects(bad.connect(), /password authentication failed/);
  } finally {
    await server.stop();
  }
  assert.equal(await canConnect(server.port), false);
  assert.equal(existsSync(server.dir), false);
  await server.stop();
});

test('stop is fast even with a client still connected', async () => {
  const server = await startPostgres();
  const client = new pg.Client({ connectionString: server.url });
  client.on('error', () => {});
  await client.connect();
  // Smart shutdown (plain SIGTERM) would wait for this session; fast shutdown terminates it.
  const ended = new Promise((resolve) => client.once('end', resolve));
  await server.stop();
  await ended;
  assert.equal(existsSync(server.dir), false);
  assert.equal(server.password?.length, 24);
});

test('a server that cannot start fails with its log and leaves nothing behind', async () => {
  // A private TMPDIR, so other tests' peers starting meanwhile don't show up in the listing.
  const tmp = mkdtempSync(join(tmpdir(), 'capstan-pgtest-'));
  chmodSync(tmp, 0o755); // the postgres user must be able to traverse it
  const saved = process.env.TMPDIR;
  process.env.TMPDIR = tmp;
  try {
    await assert.rejects(startPostgres({ settings: { shared_buffers: 'lots' } }), (err: unknown) => {
      assert.ok(err instanceof PeerError);
      assert.equal(err.code, 'CAP_ERR_PEER_EXITED');
      assert.match(err.logTail, /shared_buffers/);
      return true;
    });
    assert.deepEqual(readdirSync(tmp), []);
  } finally {
    if (saved === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = saved;
    rmSync(tmp, { recursive: true, force: true });
  }
});

test('a temp dir the postgres user cannot reach gives an init error with a hint (as root)', async (t) => {
  const tmp = mkdtempSync(join(tmpdir(), 'capstan-pgtest-')); // 0700, owned by us
  const saved = process.env.TMPDIR;
  process.env.TMPDIR = tmp;
  try {
    if (process.getuid?.() === 0) {
      await assert.rejects(startPostgres(), (err: unknown) => {
        assert.ok(err instanceof PeerError);
        assert.equal(err.code, 'CAP_ERR_PEER_INIT');
        assert.match(err.message, /traversable by the postgres user/);
        return true;
      });
    } else {
      t.diagnostic('not root: postgres runs as us, so the private dir works');
      const server = await startPostgres();
      await server.stop();
    }
    assert.deepEqual(readdirSync(tmp), []);
  } finally {
    if (saved === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = saved;
    rmSync(tmp, { recursive: true, force: true });
  }
});
