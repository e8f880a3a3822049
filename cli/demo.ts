/**
 * `encore demo`: the pipeline end to end on the local stack, with a live summary. Synthetic listeners
 * produce Avro events (and, now and then, a corrupt record) into Kafka; the job writes them to ClickHouse
 * and dead-letters the corrupt ones. The data stays in ClickHouse for querying afterwards.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import cliProgress from 'cli-progress';
import { ClickHouse } from '../clients/clickhouse.ts';
import { type OutgoingRecord, Producer } from '../clients/kafka.ts';
import type { Config } from '../core/config.ts';
import { SyntheticListeners } from '../load/synthetic-listeners.ts';
import { SchemaRegistry } from '../schemas/registry.ts';
import { AvroSerde } from '../schemas/serde.ts';
import { topics, valueSubject } from '../schemas/topics.ts';
import { up } from '../stack/stack.ts';
import { provision, runJob } from '../topology/job.ts';

export interface DemoOptions {
  seconds: number;
  rate: number;
  users: number;
  seed: number;
  signal: AbortSignal;
}

/** One record in this many is corrupted on purpose, to show the dead-letter path. */
const CORRUPT_EVERY = 500;

export async function demo(config: Config, options: DemoOptions): Promise<void> {
  console.log('Starting the local stack (Kafka, schema registry, ClickHouse)…');
  for (const r of await up(config)) console.log(`  ${r.name.padEnd(16)} ${r.action} in ${r.ms} ms`);
  await provision(config);

  const t = topics(config);
  const registry = new SchemaRegistry(config);
  const serde = new AvroSerde(registry, valueSubject(t.listeningEvents.name), t.listeningEvents.contract);
  const producer = new Producer(config, 'demo-listeners');
  await producer.connect();
  const listeners = new SyntheticListeners({
    seed: options.seed,
    users: options.users,
    songs: 5_000,
    start: Date.now() - 2 * 60 * 60 * 1000,
  });

  const totals = { produced: 0, consumed: 0, inserted: 0, deadLettered: 0 };
  const stopJob = new AbortController();
  const job = runJob(config, stopJob.signal, {
    onCommit: (report) => {
      totals.consumed += report.records;
      totals.deadLettered += report.deadLettered;
    },
    onFlush: (report) => {
      totals.inserted += report.rows.get('events') ?? 0;
    },
  });

  const bar = new cliProgress.SingleBar(
    {
      format:
        '{bar} {percentage}% | {elapsed}s | produced {produced} ({rate}/s) | in ClickHouse {inserted} | dead-lettered {deadLettered} | lag {lag}',
      hideCursor: true,
    },
    cliProgress.Presets.shades_classic,
  );
  const total = options.seconds * options.rate;
  bar.start(total, 0, { produced: 0, rate: 0, inserted: 0, deadLettered: 0, lag: 0 });
  const began = Date.now();
  const tickMs = 100;
  while (totals.produced < total && !options.signal.aborted) {
    const due = Math.min(total, Math.floor(((Date.now() - began) / 1000) * options.rate));
    const batch: OutgoingRecord[] = [];
    for (; totals.produced < due; totals.produced++) {
      const event = listeners.next();
      const value = await serde.serialize(event);
      // A flipped magic byte: what a producer without the registry's wire format would send.
      if ((totals.produced + 1) % CORRUPT_EVERY === 0) value.writeUInt8(0x7b, 0);
      batch.push({ topic: t.listeningEvents.name, key: event.userId, value });
    }
    await producer.send(batch);
    const seconds = (Date.now() - began) / 1000;
    bar.update(totals.produced, {
      produced: totals.produced,
      rate: Math.round(totals.produced / Math.max(seconds, 0.001)),
      inserted: totals.inserted,
      deadLettered: totals.deadLettered,
      lag: totals.produced - totals.consumed,
    });
    await sleep(tickMs);
  }
  // Let the job drain what was produced before stopping it.
  const drainUntil = Date.now() + 30_000;
  while (totals.consumed < totals.produced && Date.now() < drainUntil && !options.signal.aborted)
    await sleep(100);
  bar.update(totals.produced, { inserted: totals.inserted, deadLettered: totals.deadLettered, lag: 0 });
  bar.stop();
  stopJob.abort();
  await job;
  await producer.disconnect();
  registry.close();
  await summarize(config, totals);
}

async function summarize(config: Config, totals: Record<string, number>) {
  const db = new ClickHouse(config);
  try {
    const byType = await db.query<{ type: string; events: string; users: string }>(
      'SELECT type, count() AS events, uniqExact(user_id) AS users FROM events FINAL GROUP BY type ORDER BY events DESC',
    );
    console.log(
      `\nProduced ${totals.produced}, written to ClickHouse ${totals.inserted}, dead-lettered ${totals.deadLettered}.`,
    );
    console.log(`\nClickHouse ${config.clickhouse.database}.events (all runs so far), by type:`);
    for (const row of byType)
      console.log(`  ${row.type.padEnd(8)} ${row.events.padStart(8)} events  ${row.users} users`);
    console.log(
      `\nQuery it yourself: clickhouse-client --port ${config.clickhouse.tcpPort} --database ${config.clickhouse.database}` +
        ` --query "SELECT user_id, countIf(type = 'SKIP') / count() AS skip_rate FROM events FINAL GROUP BY user_id ORDER BY skip_rate DESC LIMIT 10"`,
    );
  } finally {
    await db.close();
  }
}
