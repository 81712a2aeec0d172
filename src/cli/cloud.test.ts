// `capstan cloud aws s3` against a real S3-compatible server (Versity Gateway) with more than 1,000 objects,
// so the SDK's paginator runs several real pages; plus a deadline that fires and refused credentials.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, utimesSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { type S3Peer, startS3 } from '../testing/index.ts';

const main = join(import.meta.dirname, 'main.ts');
const OLD = 1005; // with NEW: 1,205 objects, two pages of the listing; a plan of two DeleteObjects batches
const NEW = 200;
let s3: S3Peer;

function cli(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['--conditions=capstan-source', main, 'cloud', 'aws', 's3', ...args],
      {
        env: {
          PATH: process.env.PATH ?? '',
          HOME: '/nonexistent',
          AWS_ACCESS_KEY_ID: s3.accessKeyId,
          AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
          AWS_REGION: s3.region,
          ...env,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

before(async () => {
  s3 = await startS3({ bucket: 'cloud' });
  // Objects written straight into the posix backend: quick, and their mtime is their LastModified.
  const bucketDir = join(s3.dataDir, 'cloud');
  const old = new Date(Date.now() - 10 * 86_400_000);
  mkdirSync(join(bucketDir, 'tmp'), { recursive: true });
  mkdirSync(join(bucketDir, 'keep'), { recursive: true });
  for (let i = 0; i < OLD; i++) {
    const file = join(bucketDir, 'tmp', `old-${String(i).padStart(4, '0')}`);
    writeFileSync(file, 'x'.repeat(i % 7));
    utimesSync(file, old, old);
  }
  for (let i = 0; i < NEW; i++) writeFileSync(join(bucketDir, 'keep', `new-${i}`), 'yy');
});
after(() => s3?.stop());

const endpoint = () => ['--endpoint-url', s3.endpoint];
const expectedBytes = () => {
  let bytes = NEW * 2;
  for (let i = 0; i < OLD; i++) bytes += i % 7;
  return bytes;
};

test('ls lists every object across pages and du sums their sizes', async () => {
  const ls = await cli(['ls', 'cloud', ...endpoint(), '-o', 'json']);
  assert.equal(ls.code, 0, ls.stderr);
  const listed = JSON.parse(ls.stdout) as { key: string; size: number }[];
  assert.equal(listed.length, OLD + NEW);
  assert.equal(new Set(listed.map((o) => o.key)).size, OLD + NEW);

  const du = await cli(['du', 'cloud', ...endpoint(), '-o', 'yaml']);
  assert.equal(du.code, 0, du.stderr);
  assert.match(du.stdout, new RegExp(`objects: ${OLD + NEW}\\n`));
  assert.match(du.stdout, new RegExp(`bytes: ${expectedBytes()}\\n`));

  const table = await cli(['du', 'cloud', ...endpoint(), '--prefix', 'keep/']);
  assert.equal(table.code, 0, table.stderr);
  assert.match(table.stdout, /^BUCKET\s+PREFIX\s+OBJECTS\s+BYTES\ncloud\s+keep\/\s+200\s+400\n$/);
});

test('gc plans without deleting, then deletes exactly the plan with --yes', async () => {
  const dry = await cli(['gc', 'cloud', ...endpoint(), '--older-than', '7d', '-o', 'json']);
  assert.equal(dry.code, 0, dry.stderr);
  const plan = JSON.parse(dry.stdout) as { dryRun: boolean; objects: { key: string }[] };
  assert.equal(plan.dryRun, true);
  assert.equal(plan.objects.length, OLD);
  assert.ok(plan.objects.every((o) => o.key.startsWith('tmp/old-')));
  assert.match(dry.stderr, /dry run: 1005 objects would be deleted; pass --yes/);
  const still = JSON.parse((await cli(['ls', 'cloud', ...endpoint(), '-o', 'json'])).stdout) as unknown[];
  assert.equal(still.length, OLD + NEW, 'a dry run deletes nothing');

  const wet = await cli(['gc', 'cloud', ...endpoint(), '--older-than', '7d', '--yes', '-o', 'json']);
  assert.equal(wet.code, 0, wet.stderr);
  assert.match(wet.stderr, /deleted 1005 objects/);
  const left = JSON.parse((await cli(['ls', 'cloud', ...endpoint(), '-o', 'json'])).stdout) as {
    key: string;
  }[];
  assert.equal(left.length, NEW);
  assert.ok(left.every((o) => o.key.startsWith('keep/new-')));
});

test('gc without a criterion is a usage error before any call', async () => {
  const run = await cli(['gc', 'cloud', '--endpoint-url', 'http://127.0.0.1:9', '--yes']);
  assert.notEqual(run.code, 0);
  assert.match(run.stderr, /CAP_ERR_CLOUD_INVALID|gc needs a criterion/);
});

test('a server that never answers hits the deadline: a clear error, non-zero exit, no hang', async () => {
  const sockets = new Set<Socket>();
  const silent: Server = createServer((socket) => sockets.add(socket));
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  const port = (silent.address() as { port: number }).port;
  try {
    const run = await cli(['ls', 'cloud', '--endpoint-url', `http://127.0.0.1:${port}`, '--timeout', '1s']);
    assert.notEqual(run.code, 0);
    assert.match(run.stderr, /CAP_ERR_CLOUD_DEADLINE|no answer within 1000 ms/);
  } finally {
    for (const socket of sockets) socket.destroy();
    silent.close();
  }
});

test('refused credentials give a clear auth error', async () => {
  const run = await cli(['ls', 'cloud', ...endpoint()], { AWS_SECRET_ACCESS_KEY: 'wrong-secret' });
  assert.notEqual(run.code, 0);
  assert.match(run.stderr, /credentials refused/);
});
