/**
 * A terminal topology processor that writes rows to a ClickHouse table. Rows collect in memory as records
 * are processed and are written when the runtime commits (it awaits `flush()` before sending offsets): a
 * row is in ClickHouse before the input offset that produced it is committed, so a crash replays rows
 * rather than losing them, and the tables fold replays (ReplacingMergeTree on a deterministic id).
 */
import type { Processor, ProcessorSupplier, RecordMetadata, StreamRecord } from '../topology/streams/api.ts';

export interface RowWriter<Row> {
  /** Writes the rows, retrying through outages; rejects only when the job stops. */
  write(rows: readonly Row[], signal: AbortSignal): Promise<void>;
}

export function clickHouseSink<V, Row>(
  writer: RowWriter<Row>,
  toRow: (value: V, source: RecordMetadata) => Row,
  signal: AbortSignal,
): ProcessorSupplier<string, V, never, never> {
  return (): Processor<string, V, never, never> => {
    let rows: Row[] = [];
    let metadata: () => RecordMetadata | undefined;
    return {
      init(context) {
        metadata = () => context.recordMetadata();
      },
      process(record: StreamRecord<string, V>) {
        rows.push(toRow(record.value, metadata()!));
      },
      async flush() {
        if (rows.length === 0) return;
        const batch = rows;
        rows = [];
        await writer.write(batch, signal);
      },
    };
  };
}
