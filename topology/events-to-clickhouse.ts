/**
 * The first vertical slice: listening events from Kafka into ClickHouse's `events` table.
 *
 *   <app>-listening-events ──decode + validate──► events (ClickHouse)
 *                          └──rejected─────────► <app>-dead-letter (with reason and source offset)
 *
 * Per polled batch: decode every record, insert the good rows (retrying through ClickHouse outages),
 * publish the rejects to the dead-letter topic, and only then commit the offsets. A crash anywhere
 * replays the batch; the events table folds replayed rows by event id, so no valid event is lost or
 * counted twice.
 */
import { ClickHouse } from '../clients/clickhouse.ts';
import { Admin, Consumer, nextOffsets, Producer } from '../clients/kafka.ts';
import type { Config } from '../core/config.ts';
import { DeserializationError } from '../core/errors.ts';
import { logger } from '../core/log.ts';
import { batchSeconds, recordsConsumed } from '../core/metrics.ts';
import { SchemaRegistry } from '../schemas/registry.ts';
import { AvroSerde } from '../schemas/serde.ts';
import { topics, valueSubject } from '../schemas/topics.ts';
import type { ListeningEvent } from '../schemas/types.generated.ts';
import { validateListeningEvent } from '../schemas/validation.ts';
import { type EventRow, EventsSink, eventRow } from '../sinks/events.ts';
import { migrate } from '../sinks/migrate.ts';
import { DeadLetters, type Rejection } from './dead-letter.ts';

const log = logger('events-to-clickhouse');
const STAGE = 'events-to-clickhouse';

export interface BatchReport {
  consumed: number;
  inserted: number;
  deadLettered: number;
}

export interface JobOptions {
  signal: AbortSignal;
  /** Called after each committed batch (the demo's live summary, tests). */
  onBatch?: (report: BatchReport) => void;
}

/** Creates Encore's topics (idempotent) and applies the ClickHouse migrations. */
export async function provision(config: Config): Promise<void> {
  const admin = new Admin(config);
  try {
    await admin.ensureTopics(Object.values(topics(config)));
  } finally {
    await admin.close();
  }
  await migrate(config);
}

/** Runs until `signal` aborts, then commits what it finished and disconnects. */
export async function runEventsToClickHouse(config: Config, options: JobOptions): Promise<void> {
  const t = topics(config);
  await provision(config);
  const registry = new SchemaRegistry(config);
  const events = new AvroSerde(registry, valueSubject(t.listeningEvents.name), t.listeningEvents.contract);
  const producer = new Producer(config, 'dead-letter');
  const consumer = new Consumer(config, 'events-sink', {
    groupId: `${config.appId}-events-to-clickhouse`,
    topics: [t.listeningEvents.name],
  });
  const db = new ClickHouse(config);
  const sink = new EventsSink(db);
  const deadLetters = new DeadLetters(registry, t.deadLetter.name, STAGE);
  await Promise.all([producer.connect(), consumer.connect()]);
  log.info({ topic: t.listeningEvents.name, table: `${db.database}.events` }, 'running');
  try {
    while (!options.signal.aborted) {
      const records = await consumer.poll(1000, 100);
      if (records.length === 0) continue;
      const timer = batchSeconds.startTimer({ job: STAGE });
      recordsConsumed.inc({ topic: t.listeningEvents.name }, records.length);
      const rows: EventRow[] = [];
      const rejections: Rejection[] = [];
      for (const record of records) {
        try {
          const event: ListeningEvent = validateListeningEvent(await events.deserialize(record.value));
          rows.push(eventRow(event, record));
        } catch (error) {
          if (!(error instanceof DeserializationError)) throw error;
          rejections.push({ record, reason: error.reason, message: error.message });
        }
      }
      try {
        await sink.write(rows, options.signal);
      } catch (error) {
        if (options.signal.aborted) break; // stopped mid-retry: leave the batch uncommitted for the next run
        throw error;
      }
      if (rejections.length > 0) await producer.send(await deadLetters.encode(rejections));
      consumer.commit(nextOffsets(records));
      timer();
      options.onBatch?.({ consumed: records.length, inserted: rows.length, deadLettered: rejections.length });
    }
  } finally {
    await Promise.allSettled([consumer.disconnect(), producer.disconnect(), db.close()]);
    registry.close();
    log.info('stopped');
  }
}
