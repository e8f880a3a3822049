/**
 * The ClickHouse connector: reads Encore's topics (events, session features, labels, sessions,
 * recommendations, feedback, model scores, songs) and writes each into its table, like a Kafka Connect
 * sink. It runs beside the topology in its own consumer group (`<appId>-clickhouse-sink`), so a slow or
 * stopped ClickHouse never holds up recommendations.
 *
 * - Batches: rows collect per table and are inserted every `sinks.flushIntervalMs`, or sooner once a table
 *   has `sinks.batchRows`. One flush at a time; reading goes on while it runs.
 * - Nothing is lost: offsets are committed only after every row read before them is in ClickHouse. Inserts
 *   that fail are retried with backoff for as long as it takes.
 * - Bounded memory, backpressure: past `sinks.maxBufferedRows` waiting rows the connector pauses its
 *   partitions (and keeps polling, so it stays in the group) until inserts catch up to half of that.
 * - Replays are harmless: after a crash or a rebalance, rows since the last commit are inserted again, and
 *   every table is a ReplacingMergeTree keyed by the row's deterministic id, so they fold into one.
 * - Records it cannot read are skipped and counted: the topology sends the same records to the
 *   dead-letter topic with their reason.
 */
import { ClickHouse } from '../clients/clickhouse.ts';
import { type ConsumedRecord, Consumer, type TopicOffset, type TopicPartition } from '../clients/kafka.ts';
import type { Config } from '../core/config.ts';
import { DeserializationError } from '../core/errors.ts';
import { logger } from '../core/log.ts';
import {
  recordsConsumed,
  sinkBufferedRows,
  sinkFlushSeconds,
  sinkPaused,
  sinkSkipped,
} from '../core/metrics.ts';
import type { SchemaRegistry } from '../schemas/registry.ts';
import type { AvroSerde } from '../schemas/serde.ts';
import { topicSerde } from '../schemas/topics.ts';
import { insertRetrying } from './insert.ts';
import { migrateWhenAvailable } from './migrate.ts';
import { type Row, type TableSink, tableSinks } from './tables.ts';

const log = logger('sink.connector');

export interface FlushReport {
  /** Rows inserted, by table. */
  rows: Map<string, number>;
}

export interface ConnectorListener {
  /** After each flush, once its offsets are committed. */
  onFlush?(report: FlushReport): void;
}

interface TopicReader {
  sink: TableSink<unknown>;
  serde: AvroSerde<unknown>;
}

const partitionKey = (p: TopicPartition) => `${p.topic}\u0000${p.partition}`;

export class ClickHouseConnector {
  private readonly config: Config;
  private readonly readers = new Map<string, TopicReader>();
  private readonly db: ClickHouse;
  private readonly buffers = new Map<string, Row[]>();
  private buffered = 0;
  /** Next offset to commit per partition, for the rows buffered so far. */
  private readonly offsets = new Map<string, TopicOffset>();
  private readonly assigned = new Map<string, TopicPartition>();
  private paused = false;
  private lastFlush = Date.now();

  constructor(
    config: Config,
    registry: SchemaRegistry,
    sinks: readonly TableSink<unknown>[] = tableSinks(config),
  ) {
    this.config = config;
    this.db = new ClickHouse(config);
    for (const sink of sinks) {
      this.readers.set(sink.topic.name, { sink, serde: topicSerde(registry, sink.topic, sink.validate) });
      this.buffers.set(sink.table, []);
    }
  }

  /**
   * Applies the ClickHouse migrations (waiting for ClickHouse if it is down: the topology does not need
   * it), then runs until `signal` aborts, and inserts and commits what it read.
   */
  async run(signal: AbortSignal, listener: ConnectorListener = {}): Promise<void> {
    const { sinks } = this.config;
    try {
      await migrateWhenAvailable(this.config, signal);
    } catch (error) {
      if (signal.aborted) return;
      throw error;
    }
    const consumer = new Consumer(this.config, `clickhouse-sink-${this.config.streams.instanceId}`, {
      groupId: `${this.config.appId}-clickhouse-sink`,
      topics: [...this.readers.keys()],
      isolation: 'read_committed',
      onAssign: (partitions) => {
        for (const p of partitions) this.assigned.set(partitionKey(p), p);
        if (this.paused) consumer.pause(partitions);
      },
      onRevoke: (partitions) => {
        // Their new owner re-reads from the committed offset; rows already buffered are still written
        // (harmless: they fold), but their offsets must not be committed from here any more.
        for (const p of partitions) {
          this.assigned.delete(partitionKey(p));
          this.offsets.delete(partitionKey(p));
        }
      },
      sessionTimeoutMs: 10_000,
    });
    await consumer.connect();
    log.info({ tables: [...this.buffers.keys()] }, 'ClickHouse connector running');
    let flushing: Promise<void> | undefined;
    const startFlush = () => {
      flushing = this.flush(consumer, signal, listener).finally(() => {
        flushing = undefined;
      });
      // It fails only when the job stops (retries give up on abort); the end of run() reports that.
      flushing.catch(() => undefined);
    };
    try {
      while (!signal.aborted) {
        const records = await consumer.poll(sinks.batchRows, 100);
        for (const record of records) await this.add(record);
        const due =
          this.offsets.size > 0 &&
          (Date.now() - this.lastFlush >= sinks.flushIntervalMs ||
            [...this.buffers.values()].some((rows) => rows.length >= sinks.batchRows));
        if (due && !flushing) startFlush();
        this.applyBackpressure(consumer);
      }
      // The final flush: what is still in flight, then the rest (its first attempt even though stopping).
      await (flushing as Promise<void> | undefined)?.catch(() => undefined);
      if (this.offsets.size > 0) await this.flush(consumer, signal, listener);
    } catch (error) {
      if (!signal.aborted) throw error;
      log.warn(
        { err: (error as Error).message },
        'stopping with rows not yet in ClickHouse: they are read again on restart',
      );
    } finally {
      await consumer.disconnect();
      await this.db.close();
      sinkBufferedRows.set(0);
      sinkPaused.set(0);
      log.info('ClickHouse connector stopped');
    }
  }

  private async add(record: ConsumedRecord): Promise<void> {
    const key = partitionKey(record);
    if (!this.assigned.has(key)) return; // revoked within this poll
    this.offsets.set(key, { topic: record.topic, partition: record.partition, offset: record.offset + 1 });
    recordsConsumed.inc({ topic: record.topic });
    const { sink, serde } = this.readers.get(record.topic)!;
    if (record.value === null) return; // a tombstone (songs): the table keeps the song's last version
    let value: unknown;
    try {
      value = await serde.deserialize(record.value);
    } catch (error) {
      if (!(error instanceof DeserializationError)) throw error;
      sinkSkipped.inc({ table: sink.table, reason: error.reason });
      log.debug({ topic: record.topic, offset: record.offset, reason: error.reason }, 'record skipped');
      return;
    }
    this.buffers.get(sink.table)!.push(sink.toRow(value, record));
    this.buffered += 1;
    sinkBufferedRows.set(this.buffered);
  }

  private applyBackpressure(consumer: Consumer) {
    const limit = this.config.sinks.maxBufferedRows;
    const partitions = [...this.assigned.values()];
    if (!this.paused && this.buffered >= limit) {
      consumer.pause(partitions);
      this.paused = true;
      sinkPaused.set(1);
      log.info({ buffered: this.buffered }, 'buffer full: consumption paused until ClickHouse catches up');
    } else if (this.paused && this.buffered < limit / 2) {
      consumer.resume(partitions);
      this.paused = false;
      sinkPaused.set(0);
      log.info({ buffered: this.buffered }, 'consumption resumed');
    }
  }

  /** Takes everything buffered (synchronously), inserts it table by table, then commits its offsets. */
  private async flush(consumer: Consumer, signal: AbortSignal, listener: ConnectorListener) {
    const batches = [...this.buffers].map(([table, rows]) => [table, rows.splice(0)] as const);
    const offsets = [...this.offsets.values()];
    const taken = batches.reduce((sum, [, rows]) => sum + rows.length, 0);
    this.offsets.clear();
    this.lastFlush = Date.now();
    const timer = sinkFlushSeconds.startTimer();
    for (const [table, rows] of batches) await insertRetrying(this.db, table, rows, signal);
    this.buffered -= taken;
    sinkBufferedRows.set(this.buffered);
    try {
      consumer.commit(offsets.filter((o) => this.assigned.has(partitionKey(o))));
    } catch (error) {
      // Only on a rebalance under way: the rows are in ClickHouse, and the next owner replays them (they fold).
      log.warn({ err: (error as Error).message }, 'offset commit failed; rows will be replayed');
    }
    timer();
    listener.onFlush?.({ rows: new Map(batches.map(([table, rows]) => [table, rows.length])) });
  }
}
