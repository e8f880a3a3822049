/**
 * Prometheus metrics of the streams runtime, in the process's registry (core/metrics.ts). The hot path
 * only bumps plain numbers (a task's NodeStats, a source position); the counters and gauges here read them
 * when Prometheus scrapes, so a record costs no metric-library call per operator.
 *
 * Several runtimes may share a process (tests, benchmarks): each registers its state and the collectors
 * add them up by label.
 */
import { Counter, Gauge, Histogram } from 'prom-client';
import { registry } from '../../core/metrics.ts';
import type { NodeStats } from './task.ts';

/** What one running KafkaStreams instance exposes to the collectors. */
export interface RuntimeState {
  applicationId: string;
  /** Per node name: live tasks' stats plus those of tasks already closed (counters never go back). */
  nodeStats(): Map<string, NodeStats>;
  /** Per source partition: high watermark − next offset to process. */
  lag(): { topic: string; partition: number; records: number }[];
  /** Late records dropped by session aggregations, by store. */
  lateRecordsDropped(): Map<string, number>;
  /** Changelog records still to read by tasks being restored, by store. */
  restoreRemaining(): Map<string, number>;
  tasks(): number;
}

const runtimes = new Set<RuntimeState>();

export function registerRuntime(state: RuntimeState): () => void {
  runtimes.add(state);
  return () => runtimes.delete(state);
}

/**
 * A counter or gauge whose samples are read from the running runtimes at scrape time. Samples with the same
 * labels (several tasks of one node, say) add up, which is right for both kinds.
 */
function fromRuntimes<L extends string>(
  Kind: typeof Counter | typeof Gauge,
  name: string,
  help: string,
  labelNames: readonly L[],
  samples: (runtime: RuntimeState) => Iterable<[Record<L, string | number>, number]>,
) {
  return new Kind({
    name,
    help,
    labelNames: ['application', ...labelNames],
    registers: [registry],
    collect() {
      this.reset();
      for (const runtime of runtimes) {
        for (const [labels, value] of samples(runtime))
          this.inc({ application: runtime.applicationId, ...labels }, value);
      }
    },
  });
}

function nodeCounter(name: string, help: string, field: keyof NodeStats) {
  fromRuntimes(Counter, name, help, ['node'], (runtime) =>
    [...runtime.nodeStats()].map(([node, stats]) => [{ node }, stats[field]]),
  );
}

nodeCounter('encore_streams_node_records_in_total', 'Records that entered each topology node', 'recordsIn');
nodeCounter(
  'encore_streams_node_records_out_total',
  'Records each topology node forwarded downstream',
  'recordsOut',
);
nodeCounter(
  'encore_streams_node_process_seconds_total',
  "Time spent in each processor's own code (children excluded); divide by records in for the mean latency",
  'seconds',
);

fromRuntimes(
  Gauge,
  'encore_streams_consumer_lag_records',
  'Records between the last processed offset and the high watermark, by source partition',
  ['topic', 'partition'],
  (runtime) => runtime.lag().map(({ topic, partition, records }) => [{ topic, partition }, records]),
);

fromRuntimes(
  Counter,
  'encore_streams_late_records_dropped_total',
  'Records that arrived after their session window closed (past grace), by store',
  ['store'],
  (runtime) => [...runtime.lateRecordsDropped()].map(([store, dropped]) => [{ store }, dropped]),
);

fromRuntimes(
  Gauge,
  'encore_streams_restore_remaining_records',
  'Changelog records still to restore before the tasks that own them can process, by store',
  ['store'],
  (runtime) => [...runtime.restoreRemaining()].map(([store, remaining]) => [{ store }, remaining]),
);

fromRuntimes(Gauge, 'encore_streams_active_tasks', 'Tasks this instance runs', [], (runtime) => [
  [{}, runtime.tasks()],
]);

export const restoredRecords = new Counter({
  name: 'encore_streams_restored_records_total',
  help: 'Changelog records applied to state stores while restoring tasks, by store',
  labelNames: ['application', 'store'] as const,
  registers: [registry],
});

export const restoreSeconds = new Histogram({
  name: 'encore_streams_restore_seconds',
  help: 'Time to restore one task from its changelogs',
  labelNames: ['application'] as const,
  buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60],
  registers: [registry],
});

export const commitSeconds = new Histogram({
  name: 'encore_streams_commit_seconds',
  help: 'Time to commit (flush processors, send outputs and offsets; one transaction under exactly-once)',
  labelNames: ['application', 'guarantee'] as const,
  buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
  registers: [registry],
});

export const recordsProcessed = new Counter({
  name: 'encore_streams_records_processed_total',
  help: 'Input records processed (committed or not), by source topic',
  labelNames: ['application', 'topic'] as const,
  registers: [registry],
});
