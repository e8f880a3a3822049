/** Reading and writing topics directly, as an outside client would. */
import { randomUUID } from 'node:crypto';
import { type ConsumedRecord, Consumer, type OutgoingRecord, Producer } from '../../clients/kafka.ts';
import type { Config } from '../../core/config.ts';

export async function produce(config: Config, records: readonly OutgoingRecord[]): Promise<void> {
  const producer = new Producer(config, 'test-producer');
  await producer.connect();
  try {
    await producer.send(records);
  } finally {
    await producer.disconnect();
  }
}

/**
 * Reads `topic` from the beginning with read_committed until `expected` records arrived, then keeps
 * reading for `settleMs` more so that surplus records (duplicates) are seen too. Rejects on timeout.
 */
export async function readTopic(
  config: Config,
  topic: string,
  expected: number,
  { timeoutMs = 60_000, settleMs = 1_000 } = {},
): Promise<ConsumedRecord[]> {
  const consumer = new Consumer(config, 'test-reader', {
    groupId: `test-reader-${randomUUID()}`,
    topics: [topic],
    isolation: 'read_committed',
  });
  await consumer.connect();
  const records: ConsumedRecord[] = [];
  try {
    const deadline = Date.now() + timeoutMs;
    while (records.length < expected) {
      if (Date.now() > deadline) {
        throw new Error(`read ${records.length} of ${expected} records from ${topic} in ${timeoutMs} ms`);
      }
      records.push(...(await consumer.poll(500, 200)));
    }
    const settleUntil = Date.now() + settleMs;
    while (Date.now() < settleUntil) records.push(...(await consumer.poll(500, 100)));
    return records;
  } finally {
    await consumer.disconnect();
  }
}
