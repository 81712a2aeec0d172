// The HPA arithmetic, checked against the numbers kube-controller-manager gives (its replica calculator's
// and stabilization's rules), with time passed in as numbers: no clock, no waiting.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { clampReplicas, proposeReplicas, Stabilizer } from './formula.ts';

describe('proposeReplicas', () => {
  test('AverageValue: ceil(metric / target), i.e. ceil(current × per-replica / target)', () => {
    const p = (current: number, metric: number, target = 10) =>
      proposeReplicas({ current, metric, target, targetType: 'AverageValue' });
    assert.equal(p(1, 100), 10); // 100 messages, 10 per replica
    assert.equal(p(2, 101), 11); // ceil, never under-provisioned
    assert.equal(p(4, 30), 3);
    assert.equal(p(10, 0), 0); // an empty queue proposes 0; minReplicas decides the floor
    assert.equal(p(3, 30), 3); // exactly on target
  });

  test('the tolerance: within 10 % of the target per replica, the count stays', () => {
    const p = (current: number, metric: number, tolerance?: number) =>
      proposeReplicas({
        current,
        metric,
        target: 10,
        targetType: 'AverageValue',
        ...(tolerance !== undefined ? { tolerance } : {}),
      });
    assert.equal(p(4, 43), 4); // ratio 1.075: inside (≤ 0.1)
    assert.equal(p(4, 45), 5); // ratio 1.125: outside → ceil(4.5)
    assert.equal(p(4, 37), 4); // ratio 0.925: inside
    assert.equal(p(4, 35), 4); // ratio 0.875: outside → ceil(3.5) = 4, the same anyway
    assert.equal(p(4, 29), 3); // ratio 0.725 → ceil(2.9)
    assert.equal(p(4, 41, 0), 5); // no tolerance: any change moves it
    assert.equal(p(10, 120, 0.25), 10); // a wider band
  });

  test('AverageValue from zero replicas: the metric alone decides (activation)', () => {
    const p = (metric: number) =>
      proposeReplicas({ current: 0, metric, target: 5, targetType: 'AverageValue' });
    assert.equal(p(0), 0);
    assert.equal(p(1), 1);
    assert.equal(p(12), 3);
  });

  test('Value: ceil(current × metric / target)', () => {
    const p = (current: number, metric: number, target: number) =>
      proposeReplicas({ current, metric, target, targetType: 'Value' });
    assert.equal(p(3, 200, 100), 6); // a latency twice the target doubles the replicas
    assert.equal(p(4, 50, 100), 2);
    assert.equal(p(4, 105, 100), 4); // within tolerance
    assert.equal(p(4, 0, 100), 0);
    assert.equal(p(0, 300, 100), 3); // from zero, counted from one replica
  });
});

test('clampReplicas holds within [min, max]', () => {
  assert.equal(clampReplicas(0, 1, 10), 1);
  assert.equal(clampReplicas(50, 1, 10), 10);
  assert.equal(clampReplicas(5, 1, 10), 5);
  assert.equal(clampReplicas(0, 0, 10), 0);
});

describe('Stabilizer', () => {
  const s = 1000;

  test('scale-down window: the highest proposal of the last 300 s wins; then it lets go', () => {
    const st = new Stabilizer({ scaleUpMs: 0, scaleDownMs: 300 * s });
    // The first evaluation counts the current size as a proposal made now (as the HPA does).
    assert.deepEqual(st.stabilize(2, 8, 0), { replicas: 8, reason: 'ScaleDownStabilized' });
    assert.deepEqual(st.stabilize(2, 8, 100 * s), { replicas: 8, reason: 'ScaleDownStabilized' });
    assert.deepEqual(st.stabilize(5, 8, 200 * s), { replicas: 8, reason: 'ScaleDownStabilized' });
    // 300 s after the start the initial 8 has left the window: the highest left is 5 (made at 200 s).
    assert.deepEqual(st.stabilize(2, 8, 300 * s), { replicas: 5, reason: 'ScaleDownStabilized' });
    assert.deepEqual(st.stabilize(2, 5, 499 * s), { replicas: 5, reason: 'ScaleDownStabilized' });
    assert.deepEqual(st.stabilize(2, 5, 500 * s), { replicas: 2, reason: undefined });
  });

  test('scale-up is immediate by default, even inside the scale-down window', () => {
    const st = new Stabilizer({ scaleUpMs: 0, scaleDownMs: 300 * s });
    assert.deepEqual(st.stabilize(1, 1, 0), { replicas: 1, reason: undefined });
    assert.deepEqual(st.stabilize(9, 1, 15 * s), { replicas: 9, reason: undefined });
    // A dip right after is held by the window; a second peak goes through.
    assert.deepEqual(st.stabilize(3, 9, 30 * s), { replicas: 9, reason: 'ScaleDownStabilized' });
    assert.deepEqual(st.stabilize(12, 9, 45 * s), { replicas: 12, reason: undefined });
  });

  test('a scale-up window: the lowest proposal of the window caps the way up', () => {
    const st = new Stabilizer({ scaleUpMs: 60 * s, scaleDownMs: 0 });
    assert.deepEqual(st.stabilize(2, 2, 0), { replicas: 2, reason: undefined });
    assert.deepEqual(st.stabilize(10, 2, 20 * s), { replicas: 2, reason: 'ScaleUpStabilized' });
    assert.deepEqual(st.stabilize(10, 2, 40 * s), { replicas: 2, reason: 'ScaleUpStabilized' });
    // The 2 made at 0 s leaves the window at 60 s: every proposal left is 10.
    assert.deepEqual(st.stabilize(10, 2, 60 * s), { replicas: 10, reason: undefined });
    // With no down window, a drop is immediate.
    assert.deepEqual(st.stabilize(1, 10, 61 * s), { replicas: 1, reason: undefined });
  });

  test('no windows: the proposal passes as is, and nothing is remembered', () => {
    const st = new Stabilizer({ scaleUpMs: 0, scaleDownMs: 0 });
    for (const [p, c] of [
      [5, 1],
      [1, 5],
      [3, 3],
    ] as const) {
      assert.equal(st.stabilize(p, c, 1).replicas, p);
    }
    assert.equal(st.recommendations.length, 0);
  });

  test('old proposals are forgotten (memory stays bounded)', () => {
    const st = new Stabilizer({ scaleUpMs: 0, scaleDownMs: 10 * s });
    for (let i = 0; i < 1000; i++) st.stabilize(i % 7, 3, i * s);
    assert.ok(st.recommendations.length <= 10, String(st.recommendations.length));
  });

  test('negative windows are refused', () => {
    assert.throws(() => new Stabilizer({ scaleUpMs: -1, scaleDownMs: 0 }), RangeError);
    assert.throws(() => new Stabilizer({ scaleUpMs: 0, scaleDownMs: Number.NaN }), RangeError);
  });
});
