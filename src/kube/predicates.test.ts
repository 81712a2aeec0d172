import assert from 'node:assert/strict';
import { test } from 'node:test';
import { predicates, type WatchChange } from './predicates.ts';

interface Obj {
  metadata: {
    generation?: number;
    resourceVersion?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    deletionTimestamp?: string;
    finalizers?: string[];
  };
}

const change = (object: Obj, old?: Obj, type: 'apply' | 'delete' = 'apply'): WatchChange<Obj> => ({
  type,
  object,
  old,
});

test('generationChanged: spec changes pass, status-only writes do not; creates and deletes pass', () => {
  const p = predicates.generationChanged<Obj>();
  const v1 = { metadata: { generation: 1, resourceVersion: '10' } };
  const status = { metadata: { generation: 1, resourceVersion: '11' } };
  const spec = { metadata: { generation: 2, resourceVersion: '12' } };
  assert.equal(p(change(v1)), true, 'create');
  assert.equal(p(change(status, v1)), false, 'status write');
  assert.equal(p(change(spec, status)), true, 'spec change');
  assert.equal(p(change(spec, spec, 'delete')), true, 'delete');
  const deleting = { metadata: { generation: 1, resourceVersion: '13', deletionTimestamp: 'now' } };
  assert.equal(p(change(deleting, status)), true, 'deletion started');
  const finalized = { metadata: { generation: 1, resourceVersion: '14', finalizers: ['x'] } };
  assert.equal(p(change(finalized, status)), true, 'finalizer added');
});

test('generationChanged: kinds without a generation pass on a new resourceVersion only', () => {
  const p = predicates.generationChanged<Obj>();
  const a = { metadata: { resourceVersion: '1' } };
  const b = { metadata: { resourceVersion: '2' } };
  assert.equal(p(change(b, a)), true);
  assert.equal(p(change(a, a)), false, 'a relist copy');
});

test('labelsChanged, annotationsChanged, resourceVersionChanged', () => {
  const a = { metadata: { resourceVersion: '1', labels: { app: 'web' }, annotations: { x: '1' } } };
  const b = { metadata: { resourceVersion: '2', labels: { app: 'web' }, annotations: { x: '2' } } };
  const c = { metadata: { resourceVersion: '3', labels: { app: 'db' }, annotations: { x: '2' } } };
  assert.equal(predicates.labelsChanged<Obj>()(change(b, a)), false);
  assert.equal(predicates.labelsChanged<Obj>()(change(c, b)), true);
  assert.equal(predicates.annotationsChanged<Obj>()(change(b, a)), true);
  assert.equal(predicates.annotationsChanged<Obj>()(change(c, b)), false);
  assert.equal(predicates.resourceVersionChanged<Obj>()(change(a, a)), false);
  assert.equal(predicates.resourceVersionChanged<Obj>()(change(b, a)), true);
});

test('labels: equality selectors on the new or the old state; and, or, not', () => {
  const web = { metadata: { labels: { app: 'web', tier: 'front' } } };
  const db = { metadata: { labels: { app: 'db' } } };
  const p = predicates.labels<Obj>('app=web,tier!=back');
  assert.equal(p(change(web)), true);
  assert.equal(p(change(db)), false);
  assert.equal(p(change(db, web)), true, 'moving out of the selection is a change too');
  assert.equal(predicates.labels<Obj>({ app: 'db' })(change(db)), true);
  assert.equal(predicates.labels<Obj>('tier')(change(db)), false);
  assert.equal(predicates.labels<Obj>('!tier')(change(db)), true);
  const yes = () => true;
  const no = () => false;
  assert.equal(predicates.and<Obj>(yes, no)(change(web)), false);
  assert.equal(predicates.or<Obj>(yes, no)(change(web)), true);
  assert.equal(predicates.not<Obj>(no)(change(web)), true);
});
