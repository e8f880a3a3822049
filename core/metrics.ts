/**
 * Prometheus metrics (prom-client). One registry for the process; `serveMetrics` exposes it on
 * http://<host>:<port>/metrics. Metric names start with encore_.
 */
import { createServer, type Server } from 'node:http';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

export const registry = new Registry();
collectDefaultMetrics({ register: registry, prefix: 'encore_process_' });

export const recordsConsumed = new Counter({
  name: 'encore_sink_records_consumed_total',
  help: 'Records the ClickHouse connector read from Kafka, by topic',
  labelNames: ['topic'] as const,
  registers: [registry],
});

export const deadLetters = new Counter({
  name: 'encore_dead_letters_total',
  help: 'Records sent to the dead-letter topic, by stage and reason',
  labelNames: ['stage', 'reason'] as const,
  registers: [registry],
});

export const rowsInserted = new Counter({
  name: 'encore_clickhouse_rows_inserted_total',
  help: 'Rows written to ClickHouse, by table',
  labelNames: ['table'] as const,
  registers: [registry],
});

export const sinkRetries = new Counter({
  name: 'encore_clickhouse_insert_retries_total',
  help: 'ClickHouse inserts retried after a failure, by table',
  labelNames: ['table'] as const,
  registers: [registry],
});

export const sinkBufferedRows = new Gauge({
  name: 'encore_sink_buffered_rows',
  help: 'Rows read from Kafka and waiting to be inserted into ClickHouse',
  registers: [registry],
});

export const sinkPaused = new Gauge({
  name: 'encore_sink_paused',
  help: '1 while the ClickHouse connector has paused consumption (its buffer is full: ClickHouse is slow or down)',
  registers: [registry],
});

export const sinkSkipped = new Counter({
  name: 'encore_sink_records_skipped_total',
  help: 'Records the ClickHouse connector could not read (the topology dead-letters them), by table and reason',
  labelNames: ['table', 'reason'] as const,
  registers: [registry],
});

export const sinkFlushSeconds = new Histogram({
  name: 'encore_sink_flush_duration_seconds',
  help: 'Time to insert one flush of buffered rows (all tables) and commit their offsets, retries included',
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
  registers: [registry],
});

export function serveMetrics(host: string, port: number): Promise<Server> {
  const server = createServer(async (request, response) => {
    if (request.url !== '/metrics') {
      response.writeHead(404).end();
      return;
    }
    response.writeHead(200, { 'content-type': registry.contentType }).end(await registry.metrics());
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}
