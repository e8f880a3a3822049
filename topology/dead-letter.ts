/**
 * The dead-letter topic: a record that cannot be processed is kept there whole (key, value and headers
 * untouched) with where it came from and why, and processing goes on. Nothing is dropped silently.
 */
import type { ConsumedRecord, OutgoingRecord } from '../clients/kafka.ts';
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

export class DeadLetters {
  private readonly topic: string;
  private readonly stage: string;
  private readonly serde: AvroSerde<DeadLetter>;

  constructor(registry: SchemaRegistry, topic: string, stage: string) {
    this.topic = topic;
    this.stage = stage;
    this.serde = new AvroSerde(registry, valueSubject(topic), Contracts.deadLetter);
  }

  /** The dead-letter records for the rejections; the caller produces them (in its transaction, if any). */
  encode(rejections: readonly Rejection[]): Promise<OutgoingRecord[]> {
    return Promise.all(
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
  }
}
