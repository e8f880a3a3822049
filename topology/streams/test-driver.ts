/**
 * Runs a topology in memory, deterministically, like Kafka Streams' TopologyTestDriver: pipe records with
 * timestamps into input topics, advance the wall clock, read output topics, state stores and changelogs.
 * Records written to a topic the topology itself reads (repartition topics) are processed at once, in order.
 * Processors with asynchronous work complete it on `await driver.flush()`, as the runtime does per batch.
 */
import type { StreamRecord } from './api.ts';
import type { KeyValueStore, SessionStore } from './stores.ts';
import { flushTasks, type NodeStats, sumNodeStats, Task } from './task.ts';
import type { Topology } from './topology.ts';

export interface TestRecord<V> {
  key: string;
  value: V;
  timestamp: number;
  partition: number;
  headers: Record<string, string>;
}

export interface ChangelogRecord {
  key: string;
  value: unknown;
}

/** Stable, not Kafka's murmur2: which partition a key lands on only matters within the driver. */
function partitionOf(key: string, partitions: number): number {
  let hash = 0;
  for (let i = 0; i < key.length; i++) hash = (Math.imul(hash, 31) + key.charCodeAt(i)) | 0;
  return Math.abs(hash) % partitions;
}

export class TopologyTestDriver {
  private readonly topology: Topology;
  private readonly partitions: number;
  private readonly applicationId: string;
  private readonly tasks = new Map<string, Task>();
  private readonly topics = new Map<string, TestRecord<unknown>[]>();
  private readonly changelogs = new Map<string, ChangelogRecord[]>();
  private readonly offsets = new Map<string, number>();
  private readonly pending: { topic: string; record: StreamRecord<string, unknown>; partition: number }[] =
    [];
  private wallClock: number;
  private draining = false;

  private readonly keepChangelogs: boolean;

  /** `changelogs: false` keeps no store history (long runs, e.g. building a dataset, would hold it all). */
  constructor(
    topology: Topology,
    options: { applicationId?: string; partitions?: number; wallClockMs?: number; changelogs?: boolean } = {},
  ) {
    this.keepChangelogs = options.changelogs ?? true;
    this.topology = topology;
    this.partitions = options.partitions ?? 1;
    this.applicationId = options.applicationId ?? 'test';
    this.wallClock = options.wallClockMs ?? 0;
  }

  createInputTopic<V>(topic: string) {
    if (!this.topology.subtopologyOf(topic)) throw new Error(`the topology does not read topic ${topic}`);
    return {
      pipe: (key: string, value: V, timestamp: number, headers: Record<string, string> = {}) =>
        this.send(topic, { key, value, timestamp, headers }),
    };
  }

  createOutputTopic<V>(topic: string) {
    return {
      /** Records written since the last read (read records are let go). */
      readRecords: (): TestRecord<V>[] => ((this.topics.get(topic) ?? []) as TestRecord<V>[]).splice(0),
      readValues: (): V[] =>
        this.createOutputTopic<V>(topic)
          .readRecords()
          .map((r) => r.value),
    };
  }

  /** The store of the task that owns `key` (or of partition 0). */
  getKeyValueStore<V>(name: string, key?: string): KeyValueStore<V> {
    return this.taskForStore(name, key).store<KeyValueStore<V>>(name);
  }

  getSessionStore<V>(name: string, key?: string): SessionStore<V> {
    return this.taskForStore(name, key).store<SessionStore<V>>(name);
  }

  /** Every change the store logged, in order, as the changelog topic would hold it. */
  changelog(store: string): ChangelogRecord[] {
    return this.changelogs.get(store) ?? [];
  }

  advanceWallClockTime(ms: number): void {
    this.wallClock += ms;
    for (const task of this.tasks.values()) task.punctuateWallClock(this.wallClock);
    this.drain();
  }

  async flush(): Promise<void> {
    await flushTasks(this.tasks.values());
    this.drain();
  }

  close(): void {
    for (const task of this.tasks.values()) task.close();
  }

  /** Late records a session aggregation dropped (outside its grace period), by its store's name. */
  lateRecordsDropped(store: string): number {
    return this.topology.dropped.get(store)?.lateRecordsDropped ?? 0;
  }

  /** Per topology node, over all tasks: records in and out and time spent (what the runtime exports). */
  nodeStats(): Map<string, NodeStats> {
    return sumNodeStats([...this.tasks.values()].map((task) => task.stats));
  }

  private taskForStore(name: string, key?: string): Task {
    const subtopology = this.topology.subtopologies.find((s) => s.stores.includes(name));
    if (!subtopology) throw new Error(`the topology has no state store named ${name}`);
    return this.task(subtopology.id, key === undefined ? 0 : partitionOf(key, this.partitions));
  }

  private task(subtopologyId: number, partition: number): Task {
    const id = `${subtopologyId}_${partition}`;
    let task = this.tasks.get(id);
    if (!task) {
      task = new Task({
        topology: this.topology,
        subtopology: this.topology.subtopologies[subtopologyId]!,
        partition,
        applicationId: this.applicationId,
        clock: () => this.wallClock,
        output: {
          emit: (topic, record) => this.send(topic, record),
          changelog: (store, key, value) => {
            if (!this.keepChangelogs) return;
            const log = this.changelogs.get(store.name);
            if (log) log.push({ key, value });
            else this.changelogs.set(store.name, [{ key, value }]);
          },
        },
      });
      this.tasks.set(id, task);
    }
    return task;
  }

  private send(topic: string, record: StreamRecord<string, unknown>) {
    const partition = partitionOf(record.key, this.partitions);
    const stored: TestRecord<unknown> = { ...record, headers: { ...record.headers }, partition };
    const records = this.topics.get(topic);
    if (records) records.push(stored);
    else this.topics.set(topic, [stored]);
    if (this.topology.subtopologyOf(topic)) this.pending.push({ topic, record, partition });
    this.drain();
  }

  /** Processes queued input one record at a time, so a record's downstream effects finish first. */
  private drain() {
    if (this.draining) return;
    this.draining = true;
    try {
      for (let next = this.pending.shift(); next; next = this.pending.shift()) {
        const subtopology = this.topology.subtopologyOf(next.topic)!;
        const offsetKey = `${next.topic}-${next.partition}`;
        const offset = this.offsets.get(offsetKey) ?? 0;
        this.offsets.set(offsetKey, offset + 1);
        this.task(subtopology.id, next.partition).process(next.topic, next.record, {
          topic: next.topic,
          partition: next.partition,
          offset,
        });
      }
    } finally {
      this.draining = false;
    }
  }
}
