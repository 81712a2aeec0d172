// The control plane under `capstan up`: started from CAPSTAN_XDS_CONFIG on up's host and lifecycle; nothing
// without the variable; a bad file fails the start with every problem.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { createLogger, Lifecycle } from '../../runtime/index.ts';
import { TrafficError, TrafficErrorCode } from '../errors.ts';
import { TYPE_URLS } from './resources.ts';
import { RawAdsStream, sotwNames } from './testdata/raw-ads.ts';
import { controlPlaneUpService, XDS_CONFIG_ENV } from './up.ts';

const dir = mkdtempSync(join(tmpdir(), 'capstan-xds-up-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const logger = createLogger({ name: 'xds-up-test', level: 'silent' });

test('starts from CAPSTAN_XDS_CONFIG on the shared lifecycle; nothing without it', async () => {
  const lifecycle = new Lifecycle({ drainDelayMs: 0, idleGraceMs: 0 });
  const signal = new AbortController().signal;
  const none = await controlPlaneUpService.start({ host: '127.0.0.1', lifecycle, logger, signal, env: {} });
  assert.deepEqual(none.urls, {});

  const file = join(dir, 'mesh.yaml');
  writeFileSync(
    file,
    'listen: 127.0.0.1:0\nservices:\n  api:\n    versions:\n      v1: { endpoints: ["10.0.0.1:80"] }\n',
  );
  const started = await controlPlaneUpService.start({
    host: '127.0.0.1',
    lifecycle,
    logger,
    signal,
    env: { [XDS_CONFIG_ENV]: file },
  });
  assert.match(started.urls['xds']!, /^grpc:\/\/127\.0\.0\.1:\d+$/);
  assert.equal((await fetch(started.urls['metrics']!)).status, 200);
  const stream = new RawAdsStream(started.urls['xds']!.slice('grpc://'.length), 'sotw');
  stream.send({ node: { id: 'up' }, type_url: TYPE_URLS.listener });
  assert.deepEqual(sotwNames(await stream.next()), ['api']);
  const report = await lifecycle.shutdown('test');
  assert.equal((await stream.status).code, 0);
  stream.close();
  assert.equal(report.exitCode, 0, JSON.stringify(report.errors));

  writeFileSync(file, 'services: { api: { versions: { v1: { endpoints: [] } }, weights: { v2: 1 } } }');
  await assert.rejects(
    controlPlaneUpService.start({
      host: '127.0.0.1',
      lifecycle: new Lifecycle(),
      logger,
      signal,
      env: { [XDS_CONFIG_ENV]: file },
    }),
    (err: unknown) =>
      err instanceof TrafficError &&
      err.code === TrafficErrorCode.config &&
      /weights\.v2: no such version/.test(err.message),
  );
});
