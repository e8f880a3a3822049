/**
 * Inserting into ClickHouse through outages: a failed insert is retried with backoff until ClickHouse
 * takes it or the job stops. The callers commit the Kafka offsets behind the rows only afterwards, so an
 * outage pauses the pipeline and loses nothing.
 */
import pRetry from 'p-retry';
import type { ClickHouse } from '../clients/clickhouse.ts';
import { logger } from '../core/log.ts';
import { rowsInserted, sinkRetries } from '../core/metrics.ts';

const log = logger('sink');

/**
 * Rejects only when `signal` aborts. The first attempt is made even when the job is already stopping:
 * that is the final flush of a graceful shutdown (p-retry would refuse to start with an aborted signal).
 */
export async function insertRetrying(
  db: ClickHouse,
  table: string,
  rows: readonly Record<string, unknown>[],
  signal: AbortSignal,
): Promise<void> {
  if (rows.length === 0) return;
  const insert = () => db.insert(table, rows);
  const failed = (error: Error, attempt: number) => {
    sinkRetries.inc({ table });
    log.warn({ table, attempt, rows: rows.length, err: error.message }, 'insert failed; retrying');
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
  rowsInserted.inc({ table }, rows.length);
}
