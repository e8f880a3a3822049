import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type ListElement, ListStore } from '../../../topology/streams/stores.ts';

type Change = { key: string; value: ListElement<string> | null };

/** A list store and the changelog it writes, as a compacted topic would keep it (the last record per key). */
function logged() {
  const log: Change[] = [];
  const store = new ListStore<string>('events', (key, value) => log.push({ key, value }));
  const compacted = () => [...new Map(log.map((change) => [change.key, change])).values()];
  return { store, log, compacted };
}

describe('the list store', () => {
  it('keeps the order elements were first added in; a replaced element keeps its place', () => {
    const { store } = logged();
    store.put('u1', 'a', 'A');
    store.put('u1', 'b', 'B');
    store.put('u1', 'c', 'C');
    store.put('u1', 'a', 'A2');
    store.put('u2', 'x', 'X');
    assert.deepEqual(store.get('u1'), ['A2', 'B', 'C']);
    assert.deepEqual(store.get('u2'), ['X']);
    assert.deepEqual(store.get('nobody'), []);
    assert.equal(store.count('u1'), 3);
    assert.ok(store.has('u1', 'b'));
    assert.deepEqual(store.keys().sort(), ['u1', 'u2']);
  });

  it('logs one record per element written, and a tombstone per element removed', () => {
    const { store, log } = logged();
    store.put('u1', 'a', 'A');
    store.put('u1', 'b', 'B');
    store.removeWhere('u1', (value) => value === 'A');
    store.remove('u1', 'missing');
    assert.deepEqual(log, [
      { key: '2:u1:a', value: { seq: 0, value: 'A' } },
      { key: '2:u1:b', value: { seq: 1, value: 'B' } },
      { key: '2:u1:a', value: null },
    ]);
    store.delete('u1');
    assert.deepEqual(log.at(-1), { key: '2:u1:b', value: null });
    assert.equal(store.size, 0);
  });

  it('restores from its compacted changelog the same lists in the same order, and adds after them', () => {
    const { store, compacted } = logged();
    store.put('u1', 'a', 'A');
    store.put('u1', 'b', 'B');
    store.put('u1', 'c', 'C');
    store.put('u1', 'a', 'A2'); // its last record comes after b's and c's
    store.remove('u1', 'b');
    store.put('u2', 'x', 'X');
    store.delete('u2');

    const restored = new ListStore<string>('events', () => assert.fail('a restore must not log'));
    for (const change of compacted()) restored.restore(change.key, change.value);
    assert.deepEqual(restored.get('u1'), ['A2', 'C']);
    assert.deepEqual(restored.keys(), ['u1']);

    const { store: after, log } = logged();
    for (const change of compacted()) after.restore(change.key, change.value);
    after.put('u1', 'd', 'D');
    store.put('u1', 'd', 'D');
    assert.deepEqual(after.get('u1'), store.get('u1'));
    assert.deepEqual(log, [{ key: '2:u1:d', value: { seq: 3, value: 'D' } }]);
  });

  it("takes keys and ids with any character, and refuses a changelog key that is not an element's", () => {
    const { store, compacted } = logged();
    store.put('a:b\u0000c', 'x:1', 'X');
    assert.deepEqual(
      compacted().map((change) => change.key),
      ['5:a:b\u0000c:x:1'],
    );
    const restored = new ListStore<string>('events', () => undefined);
    for (const change of compacted()) restored.restore(change.key, change.value);
    assert.deepEqual(restored.get('a:b\u0000c'), ['X']);
    assert.ok(restored.has('a:b\u0000c', 'x:1'));
    for (const key of ['user-1', '9:u1:a', '2:u1a', ':u1:a'])
      assert.throws(
        () => restored.restore(key, { seq: 0, value: 'A' }),
        /not a list element's changelog key/,
      );
  });
});
