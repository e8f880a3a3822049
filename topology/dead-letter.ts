/**
 * The dead-letter topic: a record that cannot be processed is kept there whole (key, value and headers
 * untouched) with where it came from and why, and processing goes on. Nothing is dropped silently.
 */
import type { ConsumedRecord, OutgoingRecord, Producer } from '../clients/kafka.ts';
import { deadLetters } from '../core/metrics.ts';
import { Contracts } from '../schemas/contracts.ts';
import type { SchemaRegistry } from '../schemas/registry.ts';
import { AvroSerde } from '../schemas/serde.ts';
import { valueSubject } from '../schemas/topics.ts';
import type { DeadLetter } from '../schemas/types.generated.ts';

export interface Rejection {
  record: ConsumedRecord;
  /** A stable code, e.g. BAD_MAGIC_BYTE or PROCESSING_FAILED. */
  reason: string;
  message: string;
}

export class DeadLetterPublisher {
  private readonly producer: Producer;
  private readonly topic: string;
  private readonly stage: string;
  private readonly serde: AvroSerde<DeadLetter>;

  constructor(producer: Producer, registry: SchemaRegistry, topic: string, stage: string) {
    this.producer = producer;
    this.topic = topic;
    this.stage = stage;
    this.serde = new AvroSerde(registry, valueSubject(topic), Contracts.deadLetter);
  }

  /** Publishes the rejections and resolves once the broker has them all. */
  async publish(rejections: readonly Rejection[]): Promise<void> {
    if (rejections.length === 0) return;
    const records: OutgoingRecord[] = await Promise.all(
      rejections.map(async ({ record, reason, message }) => {
        deadLetters.inc({ stage: this.stage, reason });
        return {
          topic: this.topic,
          key: record.key,
          value: await this.serde.serialize({
            sourceTopic: record.topic,
            sourcePartition: record.partition,
            sourceOffset: record.offset,
            sourceTimestamp: record.timestamp,
            key: record.key,
            value: record.value,
            headers: record.headers,
            reason,
            errorMessage: message,
            stage: this.stage,
            failedAt: Date.now(),
          }),
        };
      }),
    );
    await this.producer.send(records);
  }
}
