/**
 * The `events` table: one row per listening event, written in batches. Inserts that fail (ClickHouse down,
 * overloaded) are retried with backoff until they succeed or the job stops, and the caller commits Kafka
 * offsets only afterwards: an outage pauses consumption and loses nothing. Replays after a crash write
 * the same rows again, which ReplacingMergeTree folds into one (see migrations/0001_events.sql).
 */
import pRetry from 'p-retry';
import type { ClickHouse } from '../clients/clickhouse.ts';
import type { ConsumedRecord } from '../clients/kafka.ts';
import { logger } from '../core/log.ts';
import { rowsInserted, sinkRetries } from '../core/metrics.ts';
import type { ListeningEvent } from '../schemas/types.generated.ts';

const log = logger('sink.events');

export interface EventRow extends Record<string, unknown> {
  event_id: string;
  user_id: string;
  type: string;
  timestamp_ms: number;
  event_time: number;
  event_date: string;
  song_id: string | null;
  position_ms: number | null;
  seek_to_ms: number | null;
  search_query: string | null;
  device: string;
  app_version: string;
  os: string | null;
  country: string | null;
  source: string;
  source_id: string | null;
  recommendation_id: string | null;
  shuffle: 0 | 1;
  timezone_offset_minutes: number;
  kafka_partition: number;
  kafka_offset: number;
  ingested_at: number;
}

export function eventRow(
  event: ListeningEvent,
  source: Pick<ConsumedRecord, 'partition' | 'offset'>,
): EventRow {
  return {
    event_id: event.eventId,
    user_id: event.userId,
    type: event.type,
    timestamp_ms: event.timestamp,
    event_time: Math.floor(event.timestamp / 1000),
    event_date: new Date(event.timestamp).toISOString().slice(0, 10),
    song_id: event.songId,
    position_ms: event.positionMs,
    seek_to_ms: event.seekToMs,
    search_query: event.searchQuery,
    device: event.device,
    app_version: event.context.appVersion,
    os: event.context.os,
    country: event.context.country,
    source: event.context.source,
    source_id: event.context.sourceId,
    recommendation_id: event.context.recommendationId,
    shuffle: event.context.shuffle ? 1 : 0,
    timezone_offset_minutes: event.context.timezoneOffsetMinutes,
    kafka_partition: source.partition,
    kafka_offset: source.offset,
    ingested_at: Math.floor(Date.now() / 1000),
  };
}

export class EventsSink {
  private readonly db: ClickHouse;

  constructor(db: ClickHouse) {
    this.db = db;
  }

  /**
   * Inserts the rows, retrying until ClickHouse takes them; rejects only when `signal` aborts. The first
   * attempt is made even when the job is already stopping: that is the final flush of a graceful shutdown.
   */
  async write(rows: readonly EventRow[], signal: AbortSignal): Promise<void> {
    if (rows.length === 0) return;
    const insert = () => this.db.insert('events', rows);
    const failed = (error: Error, attempt: number) => {
      sinkRetries.inc({ table: 'events' });
      log.warn({ attempt, rows: rows.length, err: error.message }, 'insert failed; retrying');
    };
    try {
      await insert();
    } catch (error) {
      if (signal.aborted) throw error;
      failed(error as Error, 1);
      await pRetry(insert, {
        retries: Number.POSITIVE_INFINITY,
        minTimeout: 100,
        maxTimeout: 5_000,
        factor: 2,
        signal,
        onFailedAttempt: ({ error, attemptNumber }) => failed(error, attemptNumber + 1),
      });
    }
    rowsInserted.inc({ table: 'events' }, rows.length);
  }
}
