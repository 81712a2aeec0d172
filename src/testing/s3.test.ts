import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  ListBucketsCommand,
  PutObjectCommand,
  paginateListObjectsV2,
  S3Client,
} from '@aws-sdk/client-s3';
import { processesWithCommandLine } from '../runtime/index.ts';
import { type S3Peer, startS3 } from './s3.ts';

function clientFor(s3: S3Peer, secretAccessKey = s3.secretAccessKey): S3Client {
  return new S3Client({
    endpoint: s3.endpoint,
    region: s3.region,
    forcePathStyle: true,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey },
    // The SDK retries 5xx and throttling; a broken peer should fail the test at once.
    maxAttempts: 1,
  });
}

describe('s3 (real Versity Gateway built from the Go module proxy)', () => {
  let s3: S3Peer;
  let client: S3Client;

  before(async () => {
    s3 = await startS3({ bucket: 'preset' });
    client = clientFor(s3);
  });
  after(async () => {
    client?.destroy();
    await s3?.stop();
  });

  test('the bucket asked for at start exists', async () => {
    const buckets = await client.send(new ListBucketsCommand({}));
    assert.deepEqual(
      buckets.Buckets?.map((b) => b.Name),
      ['preset'],
    );
  });

  test('create a bucket, PUT and GET an object; it lands in the data folder', async () => {
    await client.send(new CreateBucketCommand({ Bucket: 'artifacts' }));
    await client.send(new HeadBucketCommand({ Bucket: 'artifacts' }));
    const body = 'hello from capstan\n'.repeat(100);
    await client.send(
      new PutObjectCommand({
        Bucket: 'artifacts',
        Key: 'builds/1/app.txt',
        Body: body,
        ContentType: 'text/plain',
        Metadata: { commit: 'abc123' },
      }),
    );
    const got = await client.send(new GetObjectCommand({ Bucket: 'artifacts', Key: 'builds/1/app.txt' }));
    assert.equal(await got.Body!.transformToString(), body);
    assert.equal(got.ContentType, 'text/plain');
    assert.equal(got.ContentLength, body.length);
    assert.equal(got.Metadata?.commit, 'abc123');
    assert.equal(readFileSync(join(s3.dataDir, 'artifacts', 'builds', '1', 'app.txt'), 'utf8'), body);

    const ranged = await client.send(
      new GetObjectCommand({ Bucket: 'artifacts', Key: 'builds/1/app.txt', Range: 'bytes=0-4' }),
    );
    assert.equal(await ranged.Body!.transformToString(), 'hello');
  });

  test('list with pagination returns every key once, in order, page by page', async () => {
    await client.send(new CreateBucketCommand({ Bucket: 'many' }));
    const keys = Array.from({ length: 7 }, (_, i) => `logs/part-${String(i).padStart(2, '0')}`);
    for (const key of keys) await client.send(new PutObjectCommand({ Bucket: 'many', Key: key, Body: key }));
    await client.send(new PutObjectCommand({ Bucket: 'many', Key: 'other/x', Body: 'x' }));

    const pages: string[][] = [];
    for await (const page of paginateListObjectsV2(
      { client, pageSize: 3 },
      { Bucket: 'many', Prefix: 'logs/' },
    )) {
      pages.push((page.Contents ?? []).map((o) => o.Key!));
    }
    assert.deepEqual(
      pages.map((p) => p.length),
      [3, 3, 1],
    );
    assert.deepEqual(pages.flat(), keys);
  });

  test('the root secret is on no command line (/proc/*/cmdline), and signing with it works', async () => {
    const own = readFileSync(`/proc/${s3.pid}/cmdline`, 'utf8');
    assert.match(own, /versitygw/);
    assert.ok(!own.includes(s3.secretAccessKey), own.replaceAll('\0', ' '));
    assert.deepEqual(processesWithCommandLine(s3.secretAccessKey), []);
    const buckets = await client.send(new ListBucketsCommand({}));
    assert.ok(buckets.Buckets?.some((b) => b.Name === 'preset'));
  });

  test('errors: missing key, missing bucket, wrong secret, bad bucket name', async () => {
    await assert.rejects(client.send(new GetObjectCommand({ Bucket: 'preset', Key: 'nope' })), {
      name: 'NoSuchKey',
    });
    await assert.rejects(client.send(new HeadBucketCommand({ Bucket: 'no-such-bucket' })), {
      name: 'NotFound',
    });
    const wrong = clientFor(s3, 'not-the-secret');
    try {
      await assert.rejects(wrong.send(new ListBucketsCommand({})), { name: 'SignatureDoesNotMatch' });
    } finally {
      wrong.destroy();
    }
    await assert.rejects(client.send(new CreateBucketCommand({ Bucket: 'Bad_Name' })), {
      name: 'InvalidBucketName',
    });
    await client.send(new PutObjectCommand({ Bucket: 'preset', Key: 'gone', Body: 'x' }));
    await client.send(new DeleteObjectCommand({ Bucket: 'preset', Key: 'gone' }));
    await assert.rejects(client.send(new GetObjectCommand({ Bucket: 'preset', Key: 'gone' })), {
      name: 'NoSuchKey',
    });
  });

  test('a second server is isolated and stop removes its data', async () => {
    const other = await startS3();
    const otherClient = clientFor(other);
    try {
      assert.notEqual(other.port, s3.port);
      const buckets = await otherClient.send(new ListBucketsCommand({}));
      assert.deepEqual(buckets.Buckets ?? [], []);
      // The first server's credentials mean nothing here.
      const foreign = new S3Client({
        endpoint: other.endpoint,
        region: other.region,
        forcePathStyle: true,
        credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
        maxAttempts: 1,
      });
      try {
        // AWS says InvalidAccessKeyId; Versity Gateway answers with its own XAdminUserNotFound code.
        await assert.rejects(foreign.send(new ListBucketsCommand({})), (err: Error) => {
          assert.match(err.name, /^(InvalidAccessKeyId|XAdminUserNotFound)$/);
          return true;
        });
      } finally {
        foreign.destroy();
      }
    } finally {
      otherClient.destroy();
      await other.stop();
    }
    assert.equal(existsSync(other.dataDir), false);
  });
});
