import assert from 'node:assert/strict';
import { it } from 'node:test';
import { type ConsumedRecord, nextOffsets } from '../../clients/kafka.ts';

const record = (topic: string, partition: number, offset: number): ConsumedRecord => ({
  topic,
  partition,
  offset,
  key: null,
  value: null,
  timestamp: 0,
  headers: {},
});

it('commits, per partition, one past the highest offset processed', () => {
  const offsets = nextOffsets([
    record('a', 0, 5),
    record('a', 1, 9),
    record('a', 0, 7),
    record('b', 0, 1),
    record('a', 0, 6),
  ]);
  assert.deepEqual(
    offsets.sort((x, y) => x.topic.localeCompare(y.topic) || x.partition - y.partition),
    [
      { topic: 'a', partition: 0, offset: 8 },
      { topic: 'a', partition: 1, offset: 10 },
      { topic: 'b', partition: 0, offset: 2 },
    ],
  );
  assert.deepEqual(nextOffsets([]), []);
});
