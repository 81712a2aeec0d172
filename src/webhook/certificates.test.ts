import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { test } from 'node:test';
import { ManualClock } from '../kube/index.ts';
import { createCertAuthority } from '../runtime/index.ts';
import { eventually } from '../testing/index.ts';
import { type IssuedCertificates, memoryCertificateStore } from './certificate-store.ts';
import {
  issueWebhookCertificates,
  nextCertificates,
  pemCertificates,
  rotationPhase,
  serviceDnsNames,
  urlServingNames,
} from './certificates.ts';

const DAY = 86_400_000;
const names = { dnsNames: serviceDnsNames('pod-policy', 'webhooks') };

/** Whether `certPem` chains to one of the CAs of `bundle` (what the apiserver checks with a caBundle). */
function verifies(certPem: string, bundle: string): boolean {
  const cert = new X509Certificate(certPem);
  return pemCertificates(bundle).some((pem) => {
    const ca = new X509Certificate(pem);
    return cert.checkIssued(ca) && cert.verify(ca.publicKey);
  });
}

test('names: a Service has four, the apiserver checks <svc>.<ns>.svc; a URL host is a DNS name or an address', () => {
  assert.deepEqual(serviceDnsNames('hook', 'ns'), [
    'hook',
    'hook.ns',
    'hook.ns.svc',
    'hook.ns.svc.cluster.local',
  ]);
  assert.deepEqual(urlServingNames('https://127.0.0.1:9443/validate'), { ipAddresses: ['127.0.0.1'] });
  assert.deepEqual(urlServingNames('https://[::1]:9443/'), { ipAddresses: ['::1'] });
  assert.deepEqual(urlServingNames('https://hooks.example.com/x'), { dnsNames: ['hooks.example.com'] });
  assert.throws(() => urlServingNames('not a url'), { code: 'CAP_ERR_WEBHOOK_USAGE' });
});

test('bad timings and no names are refused with every problem listed', async () => {
  await assert.rejects(issueWebhookCertificates({ names: {} }), { code: 'CAP_ERR_WEBHOOK_USAGE' });
  await assert.rejects(
    issueWebhookCertificates({
      names,
      timings: { renewFraction: 1.5, servingValidityMs: 10 * DAY, caValidityMs: DAY, propagationMs: -1 },
    }),
    (err: Error & { problems?: string[] }) => {
      assert.equal((err as { code?: string }).code, 'CAP_ERR_WEBHOOK_USAGE');
      assert.equal(err.problems?.length, 4, err.problems?.join('\n'));
      return true;
    },
  );
});

test('first start: a CA and a serving certificate for the names, stored; a second start reuses them', async () => {
  const store = memoryCertificateStore();
  const clock = new ManualClock(Date.now());
  const certs = await issueWebhookCertificates({ names, store, clock });
  const served = new X509Certificate(certs.holder.current.certPem);
  for (const name of names.dnsNames) assert.equal(served.checkHost(name), name);
  assert.ok(verifies(certs.holder.current.certPem, certs.caBundle));
  assert.equal(pemCertificates(certs.caBundle).length, 1);
  assert.equal(certs.phase, 'stable');
  await certs.close();
  const again = await issueWebhookCertificates({ names, store, clock });
  assert.equal(
    again.holder.current.certPem,
    certs.holder.current.certPem,
    'the stored certificate is served',
  );
  assert.equal(again.caBundle, certs.caBundle);
  // New names (the Service was renamed): a new certificate from the same CA at once.
  const renamed = await issueWebhookCertificates({
    names: { dnsNames: ['other.webhooks.svc'] },
    store,
    clock,
  });
  assert.notEqual(renamed.holder.current.certPem, certs.holder.current.certPem);
  assert.equal(renamed.caBundle, certs.caBundle, 'same CA');
  assert.equal(
    new X509Certificate(renamed.holder.current.certPem).checkHost('other.webhooks.svc'),
    'other.webhooks.svc',
  );
  await Promise.all([again.close(), renamed.close()]);
});

test('the serving certificate is renewed at two thirds of its life, by the timer, without a new CA', async () => {
  const clock = new ManualClock(Date.now());
  const certs = await issueWebhookCertificates({
    names,
    clock,
    timings: { servingValidityMs: 30 * DAY, caValidityMs: 365 * DAY },
  });
  const bundles: string[] = [];
  certs.onCaBundle((b) => bundles.push(b));
  const first = certs.holder.current.certPem;
  await clock.advance(19 * DAY);
  await certs.settled();
  assert.equal(certs.holder.current.certPem, first, 'not yet at 19 of 30 days');
  await clock.advance(2 * DAY);
  await certs.settled();
  const second = certs.holder.current.certPem;
  assert.notEqual(second, first, 'renewed by day 21 (2/3 of 30 days plus the back-dating)');
  assert.ok(verifies(second, certs.caBundle));
  const cert = new X509Certificate(second);
  assert.ok(Date.parse(cert.validTo) > clock.now() + 28 * DAY, 'a full new life');
  assert.deepEqual(bundles, [], 'the CA bundle did not change');
  await certs.close();
  assert.equal(clock.pending, 0, 'close clears the timer');
});

test('CA rotation: trusted beside the old, then served, then the old leaves; every certificate served verifies against the bundle before and after each step', async () => {
  const clock = new ManualClock(Date.now());
  const propagationMs = 60_000;
  const certs = await issueWebhookCertificates({
    names,
    clock,
    timings: { caValidityMs: 90 * DAY, servingValidityMs: 30 * DAY, propagationMs },
  });
  const oldCa = certs.state.ca.certPem;
  const history: Array<{ phase: string; bundle: string; served: string }> = [];
  const record = () => {
    const last = history.at(-1);
    if (last?.bundle === certs.caBundle && last.served === certs.holder.current.certPem) return;
    history.push({ phase: certs.phase, bundle: certs.caBundle, served: certs.holder.current.certPem });
  };
  record();
  // Timer by timer: each pass schedules the next one (a serving renewal, the CA's renewal point, a step).
  const step = async () => {
    const due = clock.nextDue;
    assert.ok(due !== undefined, 'a timer is always pending');
    await clock.advance(due - clock.now());
    await certs.settled();
    record();
  };
  while (certs.phase === 'stable') await step();
  assert.ok(clock.now() >= Date.now() + 59 * DAY, 'the rotation starts at 2/3 of the CA’s 90 days');
  assert.equal(certs.phase, 'ca-introduced');
  assert.equal(pemCertificates(certs.caBundle).length, 2);
  assert.ok(certs.caBundle.includes(oldCa.trim()));
  assert.ok(verifies(certs.holder.current.certPem, oldCa), 'still serving the old CA’s certificate');
  const introducedAt = clock.now();
  await step();
  assert.equal(clock.now() - introducedAt, propagationMs);
  assert.equal(certs.phase, 'serving-switched');
  assert.ok(
    verifies(certs.holder.current.certPem, certs.state.ca.certPem),
    'serving the new CA’s certificate',
  );
  await step();
  assert.equal(certs.phase, 'stable');
  assert.equal(certs.caBundle, certs.state.ca.certPem);
  assert.ok(!certs.caBundle.includes(oldCa.trim()));
  // The invariant that keeps every admission call working: what is served verifies against the bundle the
  // apiserver had before the step and the one it gets after.
  for (let i = 1; i < history.length; i++) {
    const before = history[i - 1]!;
    const after = history[i]!;
    assert.ok(verifies(after.served, after.bundle), `step ${i} (${after.phase}): served vs new bundle`);
    assert.ok(verifies(after.served, before.bundle), `step ${i} (${after.phase}): served vs previous bundle`);
    assert.ok(
      verifies(before.served, after.bundle),
      `step ${i} (${after.phase}): previously served vs new bundle`,
    );
  }
  assert.deepEqual(
    history.map((h) => h.phase).filter((p, i, a) => p !== a[i - 1]),
    ['stable', 'ca-introduced', 'serving-switched', 'stable'],
  );
  await certs.close();
});

test('by hand: renewServing swaps the certificate now, rotateCa starts a rotation that completes by itself', async () => {
  const clock = new ManualClock(Date.now());
  const certs = await issueWebhookCertificates({ names, clock, timings: { propagationMs: 1_000 } });
  const first = certs.holder.current.certPem;
  await certs.renewServing();
  assert.notEqual(certs.holder.current.certPem, first);
  assert.equal(certs.phase, 'stable');
  const bundles: string[] = [];
  certs.onCaBundle((b) => bundles.push(b));
  await certs.rotateCa();
  assert.equal(certs.phase, 'ca-introduced');
  await clock.advance(1_000);
  await certs.settled();
  assert.equal(certs.phase, 'serving-switched');
  await clock.advance(1_000);
  await certs.settled();
  assert.equal(certs.phase, 'stable');
  assert.equal(bundles.length, 2, 'two bundles: both CAs, then the new one alone');
  assert.equal(pemCertificates(bundles[0]!).length, 2);
  assert.equal(bundles[1], certs.state.ca.certPem);
  await certs.close();
  await assert.rejects(certs.renewServing(), { code: 'CAP_ERR_WEBHOOK_USAGE' });
});

test('a restart in the middle of a CA rotation takes the step that fell due meanwhile', async () => {
  const clock = new ManualClock(Date.now());
  const store = memoryCertificateStore();
  const propagationMs = 60_000;
  const first = await issueWebhookCertificates({ names, store, clock, timings: { propagationMs } });
  await first.rotateCa();
  await first.close();
  const read = await store.read();
  assert.equal(read.state && rotationPhase(read.state), 'ca-introduced');
  await clock.advance(5 * propagationMs);
  const second = await issueWebhookCertificates({ names, store, clock, timings: { propagationMs } });
  // Serving switched at start; the old CA leaves a propagation delay later.
  assert.equal(second.phase, 'serving-switched');
  await clock.advance(propagationMs);
  await second.settled();
  assert.equal(second.phase, 'stable');
  await second.close();
});

test('unusable stored state: a garbage CA starts over, a broken serving pair is reissued from the same CA', async () => {
  const now = Date.now();
  const ctx = {
    names,
    timings: {
      caValidityMs: 365 * DAY,
      servingValidityMs: 30 * DAY,
      renewFraction: 2 / 3,
      propagationMs: 60_000,
    },
    now,
    commonName: 't',
  };
  const ca = await createCertAuthority('stored', 365);
  const serving = await ca.issue({ commonName: 'x', dnsNames: names.dnsNames, usage: 'server' });
  const good: IssuedCertificates = { ca, serving, caBundle: ca.certPem, changedAt: now };
  assert.equal((await nextCertificates(good, ctx)).kind, 'wait');
  const garbage = await nextCertificates({ ...good, ca: { certPem: 'x', keyPem: 'y' } }, ctx);
  assert.equal(garbage.kind, 'write');
  assert.notEqual(garbage.kind === 'write' && garbage.state.ca.certPem, ca.certPem, 'a new CA');
  const other = await ca.issue({ commonName: 'x', dnsNames: names.dnsNames, usage: 'server' });
  const mismatched = await nextCertificates(
    { ...good, serving: { certPem: serving.certPem, keyPem: other.keyPem } },
    ctx,
  );
  assert.ok(mismatched.kind === 'write' && mismatched.state.ca.certPem === ca.certPem, 'same CA');
  assert.ok(mismatched.kind === 'write' && verifies(mismatched.state.serving.certPem, ca.certPem));
  // A bundle someone emptied of the signing CA gets it back (then the rotation steps run their course).
  const foreign = await createCertAuthority('foreign', 365);
  const repaired = await nextCertificates({ ...good, caBundle: foreign.certPem }, ctx);
  assert.ok(repaired.kind === 'write' && pemCertificates(repaired.state.caBundle).length === 2);
  assert.ok(repaired.kind === 'write' && verifies(serving.certPem, repaired.state.caBundle));
});

test('in real time: a certificate of a few seconds is renewed by the timer before it expires, and served', async () => {
  const certs = await issueWebhookCertificates({
    names,
    timings: { servingValidityMs: 3_000, caValidityMs: 10 * 60_000, propagationMs: 1_000 },
  });
  try {
    const first = new X509Certificate(certs.holder.current.certPem);
    await eventually(
      'renewed',
      () => new X509Certificate(certs.holder.current.certPem).fingerprint256 !== first.fingerprint256,
      { timeoutMs: 10_000, intervalMs: 100 },
    );
    const second = new X509Certificate(certs.holder.current.certPem);
    assert.notEqual(second.fingerprint256, first.fingerprint256);
    assert.ok(
      Date.parse(second.validFrom) <= Date.now() && Date.now() < Date.parse(first.validTo) + 1_000,
      'renewed before the first one ran out',
    );
    assert.ok(verifies(certs.holder.current.certPem, certs.caBundle));
  } finally {
    await certs.close();
  }
});

test('a store that keeps refusing writes fails the start with CAP_ERR_WEBHOOK_CERTIFICATE; a failing read passes its error on', async () => {
  let writes = 0;
  const conflicting = {
    description: 'always conflicting',
    read: async () => ({ state: undefined, version: String(writes) }),
    write: async () => {
      writes += 1;
      return false;
    },
  };
  await assert.rejects(issueWebhookCertificates({ names, store: conflicting }), {
    code: 'CAP_ERR_WEBHOOK_CERTIFICATE',
  });
  assert.ok(writes > 5 && writes < 20, `gave up after ${writes} writes`);
  const broken = {
    description: 'broken',
    read: async () => {
      throw new Error('apiserver unreachable');
    },
    write: async () => true,
  };
  await assert.rejects(issueWebhookCertificates({ names, store: broken }), /apiserver unreachable/);
});
