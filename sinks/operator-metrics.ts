/**
 * Samples the process's Prometheus metrics (records in and out per operator, lag, restore progress, sink
 * buffer, commit latency...) every `sinks.operatorMetricsIntervalMs` into the operator_metrics table, so
 * analysts can put the job's own behaviour next to the data it produced. Histograms are kept as their sum
 * and count (their buckets stay in Prometheus).
 *
 * Unlike the data tables this is a monitoring trail, not a ledger: samples wait in a bounded queue while
 * ClickHouse is down, and past MAX_QUEUED_ROWS the oldest are dropped (and counted).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Counter } from 'prom-client';
import { ClickHouse } from '../clients/clickhouse.ts';
import type { Config } from '../core/config.ts';
import { logger } from '../core/log.ts';
import { registry } from '../core/metrics.ts';
import { insertRetrying } from './insert.ts';
import type { Row } from './tables.ts';

const log = logger('sink.operator-metrics');

/** About an hour of samples of a busy job at the default interval. */
export const MAX_QUEUED_ROWS = 200_000;

const dropped = new Counter({
  name: 'encore_operator_metrics_dropped_total',
  help: 'Operator-metric samples dropped because ClickHouse was unavailable for too long',
  registers: [registry],
});

/** The current samples as operator_metrics rows. */
export async function sampleRows(config: Config, now: number): Promise<Row[]> {
  const rows: Row[] = [];
  for (const metric of await registry.getMetricsAsJSON()) {
    for (const sample of metric.values as { value: number; labels: object; metricName?: string }[]) {
      const name = sample.metricName ?? metric.name;
      if (name.endsWith('_bucket') || !Number.isFinite(sample.value)) continue;
      rows.push({
        collected_ms: now,
        collected_date: new Date(now).toISOString().slice(0, 10),
        application: config.appId,
        instance: config.streams.instanceId,
        metric: name,
        labels: JSON.stringify(sample.labels),
        value: sample.value,
      });
    }
  }
  return rows;
}

/** Runs until `signal` aborts, then writes what is queued (one attempt). */
export async function reportOperatorMetrics(config: Config, signal: AbortSignal): Promise<void> {
  const interval = config.sinks.operatorMetricsIntervalMs;
  if (interval === 0) return;
  const db = new ClickHouse(config);
  let queue: Row[] = [];
  try {
    while (!signal.aborted) {
      await sleep(interval, undefined, { signal }).catch(() => undefined);
      queue.push(...(await sampleRows(config, Date.now())));
      if (queue.length > MAX_QUEUED_ROWS) {
        dropped.inc(queue.length - MAX_QUEUED_ROWS);
        queue = queue.slice(-MAX_QUEUED_ROWS);
      }
      const batch = queue;
      queue = [];
      try {
        await insertRetrying(
          db,
          'operator_metrics',
          batch,
          AbortSignal.any([signal, AbortSignal.timeout(interval)]),
        );
      } catch {
        queue = [...batch, ...queue]; // ClickHouse is away: keep them for the next round
      }
    }
  } catch (error) {
    log.warn({ err: (error as Error).message }, 'operator metrics stopped');
  } finally {
    await db.close();
  }
}
