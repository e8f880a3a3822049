/**
 * The first vertical slice: listening events from Kafka into ClickHouse's `events` table, as a topology
 * on Encore's streams runtime.
 *
 *   <app>-listening-events ──decode + validate──► events (ClickHouse)
 *                          └──rejected─────────► <app>-dead-letter (with reason and source offset)
 *
 * Rows reach ClickHouse before the offsets that produced them are committed (the sink processor is
 * flushed at each commit), so a crash replays rows; the events table folds replays by event id, so no
 * valid event is lost or counted twice.
 */
import { ClickHouse } from '../clients/clickhouse.ts';
import { Admin } from '../clients/kafka.ts';
import type { Config } from '../core/config.ts';
import { SchemaRegistry } from '../schemas/registry.ts';
import { AvroSerde } from '../schemas/serde.ts';
import { topics, valueSubject } from '../schemas/topics.ts';
import type { ListeningEvent } from '../schemas/types.generated.ts';
import { validateListeningEvent } from '../schemas/validation.ts';
import { type EventRow, EventsSink, eventRow } from '../sinks/events.ts';
import { migrate } from '../sinks/migrate.ts';
import { clickHouseSink, type RowWriter } from '../sinks/sink-processor.ts';
import { DeadLetters } from './dead-letter.ts';
import { StreamsBuilder } from './streams/builder.ts';
import { KafkaStreams } from './streams/kafka-streams.ts';
import type { Topology } from './streams/topology.ts';

const STAGE = 'events-to-clickhouse';

export interface BatchReport {
  consumed: number;
  inserted: number;
  deadLettered: number;
}

export interface JobOptions {
  signal: AbortSignal;
  /** Called after each commit (the demo's live summary, tests). */
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

export function eventsToClickHouse(
  config: Config,
  registry: SchemaRegistry,
  events: RowWriter<EventRow>,
  signal: AbortSignal,
): Topology {
  const topic = topics(config).listeningEvents;
  const builder = new StreamsBuilder(config.appId);
  builder
    .stream<ListeningEvent>(topic.name, {
      serde: new AvroSerde(registry, valueSubject(topic.name), topic.contract, {
        validate: (event) => validateListeningEvent(event),
      }),
      timestampExtractor: (event) => event.timestamp,
    })
    .process(clickHouseSink(events, eventRow, signal), { name: 'events-table' });
  return builder.build();
}

/** Runs until `signal` aborts, then commits what it finished and disconnects. */
export async function runEventsToClickHouse(config: Config, options: JobOptions): Promise<void> {
  await provision(config);
  const registry = new SchemaRegistry(config);
  const db = new ClickHouse(config);
  const sink = new EventsSink(db);
  let inserted = 0;
  const counted: RowWriter<EventRow> = {
    async write(rows, signal) {
      await sink.write(rows, signal);
      inserted += rows.length;
    },
  };
  try {
    await new KafkaStreams(eventsToClickHouse(config, registry, counted, options.signal), config, {
      deadLetters: new DeadLetters(registry, topics(config).deadLetter.name, STAGE),
    }).run(options.signal, {
      onCommit: ({ records, deadLettered }) => {
        options.onBatch?.({ consumed: records, inserted, deadLettered });
        inserted = 0;
      },
    });
  } finally {
    await db.close();
    registry.close();
  }
}
