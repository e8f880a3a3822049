/**
 * The stateful DSL operators as processors: table materialization, stream–table join, keyed aggregation and
 * session-window aggregation. The stateless ones are small enough to live in builder.ts.
 */
import type { Processor, ProcessorContext, StreamRecord } from './api.ts';
import type { KeyValueStore, Session, SessionStore } from './stores.ts';

/**
 * The change a session aggregation emits: `value: null` says the window is gone (merged into another);
 * `closed: true` says it can no longer change (only with `emitOnClose`).
 */
export interface SessionUpdate<V> {
  start: number;
  end: number;
  value: V | null;
  closed: boolean;
}

export interface SessionWindowsSpec {
  inactivityGapMs: number;
  graceMs: number;
  /** Also emit each session once more, final, when stream time passes its end + gap + grace. */
  emitOnClose?: boolean;
}

/** How often, in stream time, a session aggregation that emits closed sessions looks for them. */
const CLOSE_CHECK_INTERVAL_MS = 60_000;

export interface DroppedRecords {
  /** Counted per task; a metric in the runtime, readable in the test driver. */
  lateRecordsDropped: number;
}

/** Keeps the latest value per key of a table topic; a null value (tombstone) deletes the key. */
export function materializeTable<V>(storeName: string): () => Processor<string, V | null, string, V | null> {
  return () => {
    let store: KeyValueStore<V>;
    let context: ProcessorContext<string, V | null>;
    return {
      init(ctx) {
        context = ctx;
        store = ctx.getStateStore<KeyValueStore<V>>(storeName);
      },
      process(record) {
        if (record.value === null) store.delete(record.key);
        else store.put(record.key, record.value);
        context.forward(record);
      },
    };
  };
}

/** Stream–table join: each stream record meets the table's value for its key at that moment. */
export function streamTableJoin<V, T, R>(
  storeName: string,
  joiner: (value: V, tableValue: T | null, key: string) => R,
  left: boolean,
): () => Processor<string, V, string, R> {
  return () => {
    let table: KeyValueStore<T>;
    let context: ProcessorContext<string, R>;
    return {
      init(ctx) {
        context = ctx;
        table = ctx.getStateStore<KeyValueStore<T>>(storeName);
      },
      process(record) {
        const tableValue = table.get(record.key) ?? null;
        if (tableValue === null && !left) return;
        context.forward({ ...record, value: joiner(record.value, tableValue, record.key) });
      },
    };
  };
}

/** Running aggregate per key, emitted on every update. */
export function aggregateByKey<V, A>(
  storeName: string,
  initializer: () => A,
  aggregator: (key: string, value: V, aggregate: A) => A,
): () => Processor<string, V, string, A> {
  return () => {
    let store: KeyValueStore<A>;
    let context: ProcessorContext<string, A>;
    return {
      init(ctx) {
        context = ctx;
        store = ctx.getStateStore<KeyValueStore<A>>(storeName);
      },
      process(record) {
        const next = aggregator(record.key, record.value, store.get(record.key) ?? initializer());
        store.put(record.key, next);
        context.forward({ ...record, value: next });
      },
    };
  };
}

/**
 * Session windows with Kafka Streams' semantics: a record joins every session of its key within the
 * inactivity gap, merging them when it bridges two; a record whose merged session would end before
 * `stream time - gap - grace` is late and dropped (and counted). Sessions that can no longer change are
 * removed from the store by a stream-time sweep, which keeps state bounded to the active sessions; with
 * `emitOnClose` the sweep runs every minute of stream time and forwards each one, final, as it goes.
 */
export function sessionAggregate<V, A>(
  storeName: string,
  windows: SessionWindowsSpec,
  initializer: () => A,
  aggregator: (key: string, value: V, aggregate: A) => A,
  merger: (key: string, left: A, right: A) => A,
  dropped: DroppedRecords,
): () => Processor<string, V, string, SessionUpdate<A>> {
  const { inactivityGapMs: gap, graceMs: grace } = windows;
  return () => {
    let store: SessionStore<A>;
    let context: ProcessorContext<string, SessionUpdate<A>>;
    const closeTime = () => context.streamTime() - gap - grace;
    return {
      init(ctx) {
        context = ctx;
        store = ctx.getStateStore<SessionStore<A>>(storeName);
        const interval = windows.emitOnClose ? Math.min(gap, CLOSE_CHECK_INTERVAL_MS) : gap;
        ctx.schedule(interval, 'stream-time', () => {
          const closed = closeTime();
          for (const key of store.keys()) {
            const expired = store.sessions(key).filter((s) => s.end < closed);
            if (expired.length === 0) continue;
            store.replace(key, expired, []);
            if (!windows.emitOnClose) continue;
            for (const { start, end, value } of expired) {
              context.forward({
                key,
                value: { start, end, value, closed: true },
                timestamp: end,
                headers: {},
              });
            }
          }
        });
      },
      process(record: StreamRecord<string, V>) {
        const t = record.timestamp;
        const overlapping = store.findSessions(record.key, t - gap, t + gap);
        let start = t;
        let end = t;
        let aggregate = initializer();
        for (const session of overlapping) {
          start = Math.min(start, session.start);
          end = Math.max(end, session.end);
          aggregate = merger(record.key, aggregate, session.value);
        }
        if (end < closeTime()) {
          dropped.lateRecordsDropped += 1;
          return;
        }
        aggregate = aggregator(record.key, record.value, aggregate);
        const merged: Session<A> = { key: record.key, start, end, value: aggregate };
        store.replace(record.key, overlapping, [merged]);
        for (const gone of overlapping) {
          if (gone.start !== start || gone.end !== end) {
            context.forward({
              ...record,
              timestamp: gone.end,
              value: { start: gone.start, end: gone.end, value: null, closed: false },
            });
          }
        }
        context.forward({
          ...record,
          timestamp: end,
          value: { start, end, value: aggregate, closed: false },
        });
      },
    };
  };
}
