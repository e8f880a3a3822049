/**
 * Runs a Topology on Kafka, as Kafka Streams does: one consumer group per application, one task per
 * sub-topology and input partition, state stores restored from their changelogs before a task processes,
 * and two processing guarantees.
 *
 * Work is committed every `streams.commitIntervalMs` (0: after every polled batch). Until then output records,
 * store changes (changelog records) and consumed offsets wait in memory; a commit sends them together:
 *
 * exactly-once: as one Kafka transaction (records + changelog + offsets, begun and committed at the commit),
 *   so no transaction is ever open while the consumer polls. A crash loses only uncommitted memory: the next
 *   owner replays from the committed offsets with stores restored from committed changelog records.
 *   The transactional id is `<appId>-<instanceId>`: a restarted instance fences its dead predecessor at once.
 * at-least-once: outputs are acknowledged, then offsets committed; a crash replays since the last commit.
 *
 * A rebalance that takes partitions while work is uncommitted discards that work everywhere: every task is
 * rebuilt from its changelog and the consumer rewinds to the committed offsets (Kafka Streams' "task
 * corrupted" path). This is rare (only on rebalance) and keeps stores equal to what Kafka committed.
 */
import { deserialize as v8Deserialize, serialize as v8Serialize } from 'node:v8';
import {
  Admin,
  type ConsumedRecord,
  Consumer,
  type OutgoingRecord,
  Producer,
  readPartition,
  type TopicOffset,
  type TopicPartition,
} from '../../clients/kafka.ts';
import type { Config } from '../../core/config.ts';
import { DeserializationError, EncoreError, ErrorCodes } from '../../core/errors.ts';
import { logger } from '../../core/log.ts';
import type { DeadLetters, Rejection } from '../dead-letter.ts';
import type { StreamRecord } from './api.ts';
import { Task } from './task.ts';
import type { SubTopology, Topology, ValueSerde } from './topology.ts';

const log = logger('streams');

/** What a running application reports, e.g. to a supervisor, a progress display or a test. */
export interface StreamsListener {
  /** After every commit: how many input records it covered. */
  onCommit?(records: number): void;
  /** After every rebalance, once the tasks are restored: the ids of the tasks this instance now runs. */
  onTasks?(taskIds: string[]): void;
}

export interface StreamsOptions {
  /** Encodes rejected records; they are produced in the same transaction as the work around them. */
  deadLetters: Pick<DeadLetters, 'encode'>;
}

/** Internal topics (repartition, changelogs) carry values in V8's structured-clone format. */
const internalSerde: ValueSerde<unknown> = {
  serialize: (value) => v8Serialize(value),
  deserialize: (bytes) => (bytes === null ? null : v8Deserialize(bytes)),
};

interface PendingOutput {
  topic: string;
  partition?: number;
  record: StreamRecord<string, unknown>;
  internal: boolean;
}

export class KafkaStreams {
  private readonly topology: Topology;
  private readonly config: Config;
  private readonly options: StreamsOptions;
  private readonly tasks = new Map<string, Task>();
  private readonly gained: TopicPartition[] = [];
  private readonly lost: TopicPartition[] = [];
  private readonly outputs: PendingOutput[] = [];
  private readonly rejected: Rejection[] = [];
  /** Next offset to commit per `topic\u0000partition`. */
  private readonly offsets = new Map<string, TopicOffset>();
  private lastCommit = Date.now();
  private consumer: Consumer | undefined;
  private producer: Producer | undefined;
  private partitionsByTopic = new Map<string, number>();

  constructor(topology: Topology, config: Config, options: StreamsOptions) {
    this.topology = topology;
    this.config = config;
    this.options = options;
  }

  /**
   * Creates internal topics, checks co-partitioning, then processes until `signal` aborts; on the way out it
   * commits what it processed.
   */
  async run(signal: AbortSignal, listener: StreamsListener = {}): Promise<void> {
    await this.prepareTopics();
    const { streams } = this.config;
    const sourceTopics = this.topology.subtopologies.flatMap((s) => s.sourceTopics);
    const exactlyOnce = streams.guarantee === 'exactly-once';
    this.producer = new Producer(this.config, `streams-${streams.instanceId}`, {
      ...(exactlyOnce ? { transactionalId: `${this.config.appId}-${streams.instanceId}` } : {}),
    });
    this.consumer = new Consumer(this.config, `streams-${streams.instanceId}`, {
      groupId: this.config.appId,
      topics: [...new Set(sourceTopics)],
      isolation: 'read_committed',
      onAssign: (partitions) => this.gained.push(...partitions),
      onRevoke: (partitions) => this.lost.push(...partitions),
      // A crashed instance's partitions move to the others within 10 s instead of librdkafka's 45 s.
      sessionTimeoutMs: 10_000,
    });
    await this.producer.connect();
    if (exactlyOnce) await this.producer.initTransactions();
    await this.consumer.connect();
    log.info({ guarantee: streams.guarantee, instance: streams.instanceId }, 'streams running');
    let processed = 0;
    try {
      while (!signal.aborted) {
        const records = await this.consumer.poll(streams.maxBatchRecords, 100);
        if (this.lost.length > 0 && this.uncommitted()) {
          await this.discardUncommitted();
          listener.onTasks?.([...this.tasks.keys()]);
          processed = 0;
          continue;
        }
        if (this.gained.length > 0 || this.lost.length > 0) {
          await this.applyRebalance();
          listener.onTasks?.([...this.tasks.keys()]);
        }
        if (records.length > 0) await this.processRecords(records);
        else for (const task of this.tasks.values()) task.punctuateWallClock();
        processed += records.length;
        if (this.uncommitted() && Date.now() - this.lastCommit >= streams.commitIntervalMs) {
          await this.commit();
          listener.onCommit?.(processed);
          processed = 0;
        }
      }
      if (this.uncommitted()) {
        await this.commit();
        listener.onCommit?.(processed);
      }
    } finally {
      for (const task of this.tasks.values()) task.close();
      this.tasks.clear();
      await Promise.allSettled([this.consumer.disconnect(), this.producer.disconnect()]);
      log.info({ instance: streams.instanceId }, 'streams stopped');
    }
  }

  private uncommitted(): boolean {
    return this.offsets.size > 0 || this.outputs.length > 0 || this.rejected.length > 0;
  }

  /** Drops uncommitted work: tasks rebuilt from their changelogs, positions back to the committed offsets. */
  private async discardUncommitted() {
    log.warn(
      { tasks: this.tasks.size },
      'partitions revoked with uncommitted work: rebuilding tasks from changelogs',
    );
    this.outputs.length = 0;
    this.rejected.length = 0;
    this.offsets.clear();
    const retained = [...this.tasks.values()];
    for (const task of retained) task.close();
    this.tasks.clear();
    // Every source partition of the retained tasks is re-created (and restored) as if newly assigned.
    const lost = new Set(this.lost.map((p) => `${p.topic}\u0000${p.partition}`));
    for (const task of retained) {
      for (const topic of task.subtopology.sourceTopics) {
        if (!lost.has(`${topic}\u0000${task.partition}`))
          this.gained.push({ topic, partition: task.partition });
      }
    }
    this.lost.length = 0;
    const rewind = [...this.gained];
    await this.applyRebalance();
    const committed = await this.consumer!.committed(rewind);
    for (const position of committed) {
      // -2 is librdkafka's "beginning": nothing was committed for the partition yet.
      await this.consumer!.seek({ ...position, offset: position.offset >= 0 ? position.offset : -2 });
    }
  }

  private taskId(subtopology: SubTopology, partition: number) {
    return `${subtopology.id}_${partition}`;
  }

  /** Creates and restores tasks for gained partitions, closes those of lost ones. */
  private async applyRebalance() {
    for (const { topic, partition } of this.lost.splice(0)) {
      const sub = this.topology.subtopologyOf(topic)!;
      const task = this.tasks.get(this.taskId(sub, partition));
      if (task) {
        task.close();
        this.tasks.delete(task.id);
        log.info({ task: task.id }, 'task revoked');
      }
    }
    for (const { topic, partition } of this.gained.splice(0)) {
      const sub = this.topology.subtopologyOf(topic)!;
      const id = this.taskId(sub, partition);
      if (this.tasks.has(id)) continue;
      const task = new Task({
        topology: this.topology,
        subtopology: sub,
        partition,
        applicationId: this.config.appId,
        clock: Date.now,
        output: {
          emit: (outTopic, record) =>
            this.outputs.push({
              topic: outTopic,
              record,
              internal: this.topology.repartitionTopics.includes(outTopic),
            }),
          changelog: (store, key, value) =>
            this.outputs.push({
              topic: store.changelog.topic,
              partition,
              record: { key, value, timestamp: Date.now(), headers: {} },
              internal: true,
            }),
        },
      });
      await this.restore(task);
      this.tasks.set(id, task);
    }
  }

  private async restore(task: Task) {
    const began = Date.now();
    let restored = 0;
    for (const name of task.subtopology.stores) {
      const store = this.topology.stores.get(name)!;
      const { topic, sourceTopic } = store.changelog;
      const serde = sourceTopic ? this.sourceSerde(topic) : internalSerde;
      // A table restores from its source topic up to the group's position there; the rest it processes.
      const until = sourceTopic
        ? Math.max(
            0,
            (await this.consumer!.committed([{ topic, partition: task.partition }]))[0]?.offset ?? 0,
          )
        : undefined;
      restored += await readPartition(this.config, topic, task.partition, {
        until,
        onRecord: async (record) =>
          task.restore(
            name,
            record.key?.toString() ?? '',
            record.value === null ? null : await serde.deserialize(record.value),
          ),
      });
    }
    log.info({ task: task.id, records: restored, ms: Date.now() - began }, 'task restored');
  }

  private sourceSerde(topic: string): ValueSerde<unknown> {
    if (this.topology.repartitionTopics.includes(topic)) return internalSerde;
    const source = [...this.topology.nodes.values()].find((n) => n.kind === 'source' && n.topic === topic);
    if (source?.kind !== 'source' || !source.serde) {
      throw new EncoreError(ErrorCodes.CONFIG_INVALID, `source topic ${topic} has no value serde`);
    }
    return source.serde;
  }

  private sinkSerde(topic: string): ValueSerde<unknown> {
    const sink = [...this.topology.nodes.values()].find((n) => n.kind === 'sink' && n.topic === topic);
    if (sink?.kind !== 'sink' || !sink.serde) {
      throw new EncoreError(ErrorCodes.CONFIG_INVALID, `sink topic ${topic} has no value serde`);
    }
    return sink.serde;
  }

  private async processRecords(records: ConsumedRecord[]) {
    for (const record of records) {
      const sub = this.topology.subtopologyOf(record.topic)!;
      const task = this.tasks.get(this.taskId(sub, record.partition));
      if (!task) continue; // revoked within this poll: its new owner processes it
      this.offsets.set(`${record.topic}\u0000${record.partition}`, {
        topic: record.topic,
        partition: record.partition,
        offset: record.offset + 1,
      });
      let value: unknown;
      try {
        value = await this.sourceSerde(record.topic).deserialize(record.value);
      } catch (error) {
        if (!(error instanceof DeserializationError)) throw error;
        this.rejected.push({ record, reason: error.reason, message: error.message });
        continue;
      }
      try {
        task.process(
          record.topic,
          { key: record.key?.toString() ?? '', value, timestamp: record.timestamp, headers: record.headers },
          { topic: record.topic, partition: record.partition, offset: record.offset },
        );
      } catch (error) {
        if (this.config.streams.onProcessingError === 'stop') throw error;
        this.rejected.push({ record, reason: 'PROCESSING_FAILED', message: (error as Error).message });
      }
    }
  }

  /** Sends everything since the last commit, with the offsets, as one unit (a transaction under exactly-once). */
  private async commit() {
    for (const task of this.tasks.values()) await task.flush();
    const outgoing = await this.serializeOutputs(this.rejected.splice(0));
    const offsets = [...this.offsets.values()];
    this.offsets.clear();
    if (this.config.streams.guarantee === 'exactly-once') {
      await this.producer!.beginTransaction();
      try {
        await this.producer!.send(outgoing);
        if (offsets.length > 0) await this.producer!.sendOffsetsToTransaction(offsets, this.consumer!);
        await this.producer!.commitTransaction();
      } catch (error) {
        // Nothing became visible; stop, so that a restart replays from the committed offsets.
        await this.producer!.abortTransaction().catch(() => undefined);
        throw error;
      }
    } else {
      await this.producer!.send(outgoing);
      this.consumer!.commit(offsets);
    }
    this.lastCommit = Date.now();
  }

  private async serializeOutputs(rejected: readonly Rejection[]): Promise<OutgoingRecord[]> {
    const pending = this.outputs.splice(0);
    const out: OutgoingRecord[] = await Promise.all(
      pending.map(async (o) => ({
        topic: o.topic,
        key: o.record.key,
        partition: o.partition,
        timestamp: o.record.timestamp,
        headers: o.record.headers,
        value:
          o.record.value === null
            ? null
            : await (o.internal ? internalSerde : this.sinkSerde(o.topic)).serialize(o.record.value),
      })),
    );
    if (rejected.length > 0) out.push(...(await this.options.deadLetters.encode(rejected)));
    return out;
  }

  /** Creates repartition and changelog topics, and refuses sub-topologies whose inputs are not co-partitioned. */
  private async prepareTopics() {
    const admin = new Admin(this.config);
    try {
      const cluster = await admin.describeCluster();
      this.partitionsByTopic = new Map(cluster.topics.map((t) => [t.name, t.partitions]));
      const external = this.topology.subtopologies.flatMap((s) =>
        s.sourceTopics.filter((t) => !this.topology.repartitionTopics.includes(t)),
      );
      const missing = external.filter((t) => !this.partitionsByTopic.has(t));
      if (missing.length > 0) {
        throw new EncoreError(ErrorCodes.KAFKA_FAILED, `source topics do not exist: ${missing.join(', ')}`);
      }
      const partitions = Math.max(...external.map((t) => this.partitionsByTopic.get(t)!));
      const internal = [
        ...this.topology.repartitionTopics.map((name) => ({ name, config: {} })),
        ...[...this.topology.stores.values()]
          .filter((s) => !s.changelog.sourceTopic)
          .map((s) => ({ name: s.changelog.topic, config: { 'cleanup.policy': 'compact' } })),
      ];
      await admin.ensureTopics(
        internal.map((t) => ({ ...t, partitions, replicationFactor: this.config.kafka.replicationFactor })),
      );
      for (const t of internal) this.partitionsByTopic.set(t.name, partitions);
      for (const sub of this.topology.subtopologies) {
        const counts = new Map(sub.sourceTopics.map((t) => [t, this.partitionsByTopic.get(t)!]));
        if (new Set(counts.values()).size > 1) {
          throw new EncoreError(
            ErrorCodes.CONFIG_INVALID,
            `topics read by sub-topology ${sub.id} are not co-partitioned (${[...counts]
              .map(([t, n]) => `${t}: ${n}`)
              .join(
                ', ',
              )}); a task must own the same partition of each, so give them the same partition count`,
          );
        }
      }
    } finally {
      await admin.close();
    }
  }
}
