/**
 * The pipe's limit: node-rdkafka consume → produce of the raw bytes (no decoding, no state), offsets
 * committed after the batch is acknowledged. Nothing can be faster on this broker and client.
 */
import { Consumer, nextOffsets, Producer } from '../../../clients/kafka.ts';
import { benchConfig, benchEnv } from './env.ts';

const env = benchEnv();
const config = benchConfig(env);
const consumer = new Consumer(config, 'raw', { groupId: env.applicationId, topics: [env.eventsTopic] });
const producer = new Producer(config, 'raw');
await Promise.all([consumer.connect(), producer.connect()]);
const stop = new AbortController();
process.once('SIGTERM', () => stop.abort());
while (!stop.signal.aborted) {
  const records = await consumer.poll(config.streams.maxBatchRecords, 100);
  if (records.length === 0) continue;
  await producer.send(records.map((r) => ({ topic: env.outputTopic, key: r.key, value: r.value })));
  consumer.commit(nextOffsets(records));
}
await Promise.all([consumer.disconnect(), producer.disconnect()]);
