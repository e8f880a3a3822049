/**
 * The processor API: what every operator of a topology is built on, and what `process()` exposes to custom
 * processors. It mirrors Kafka Streams' `org.apache.kafka.streams.processor.api`.
 *
 * Processing is synchronous per record, as in Kafka Streams: `process` forwards downstream before it
 * returns, so a record's effects are complete when the task moves on. Work that is asynchronous (ONNX
 * inference, micro-batched across users) belongs in `flush`: the task calls every processor's `flush` once
 * per input batch, in topological order, and awaits it before committing; a processor may buffer records in
 * `process` and forward their results from `flush`. The runtime flushes all its tasks at once, so the
 * flushes of different tasks interleave at their awaits (and their model calls share batches).
 */

export type Headers = Record<string, string>;

export interface StreamRecord<K, V> {
  key: K;
  value: V;
  /** Event time, ms since the epoch: the source record's timestamp unless an operator sets another. */
  timestamp: number;
  headers: Headers;
}

/** Where the record being processed came from (undefined inside punctuators). */
export interface RecordMetadata {
  topic: string;
  partition: number;
  offset: number;
}

export type PunctuationType = 'stream-time' | 'wall-clock';

export interface Cancellable {
  cancel(): void;
}

export interface StateStore {
  readonly name: string;
}

export interface ProcessorContext<KOut, VOut> {
  /** `<subtopology>_<partition>`, as in Kafka Streams. */
  readonly taskId: string;
  readonly partition: number;
  readonly applicationId: string;
  /** The highest record timestamp this task has seen: time only moves forward. */
  streamTime(): number;
  wallClockTime(): number;
  recordMetadata(): RecordMetadata | undefined;
  /** Sends a record to every child, or only to the child named `to`. */
  forward<K extends KOut, V extends VOut>(record: StreamRecord<K, V>, to?: string): void;
  getStateStore<S extends StateStore>(name: string): S;
  /**
   * Calls `punctuator` every `intervalMs` of stream time (driven by record timestamps) or of wall-clock
   * time (driven by the clock, even when no record arrives).
   */
  schedule(intervalMs: number, type: PunctuationType, punctuator: (timestamp: number) => void): Cancellable;
}

export interface Processor<KIn, VIn, KOut = KIn, VOut = VIn> {
  init?(context: ProcessorContext<KOut, VOut>): void;
  process(record: StreamRecord<KIn, VIn>): void;
  /** Completes buffered asynchronous work and forwards its results; awaited before each commit. */
  flush?(): Promise<void>;
  close?(): void;
}

export type ProcessorSupplier<KIn, VIn, KOut = KIn, VOut = VIn> = () => Processor<KIn, VIn, KOut, VOut>;
