/**
 * Runs a Topology on Kafka, as Kafka Streams does: one consumer group per application, one task per
 * sub-topology and input partition, state stores restored from their changelogs before a task processes,
 * and two processing guarantees.
 *
 * After each poll, the outputs and store changes (changelog records) of the records just processed are
 * handed to the producer; every `streams.commitIntervalMs` (0: after every poll) a commit waits for their
 * acknowledgement and commits the consumed offsets with them:
 *
 * exactly-once: one Kafka transaction per commit interval (records + changelog + dead letters + offsets),
 *   begun with its first record. A crash leaves it open until the broker aborts it; the next owner replays
 *   from the committed offsets with stores restored from committed changelog records. The transactional
 *   id is `<appId>-<instanceId>`: a restarted instance fences its dead predecessor at once.
 * at-least-once: outputs are acknowledged, then offsets committed; a crash replays since the last commit.
 *
 * A rebalance that takes partitions while work is uncommitted discards that work everywhere: the open
 * transaction is aborted, every task is rebuilt from its changelog and the consumer rewinds to the committed
 * offsets (Kafka Streams' "task corrupted" path). This is rare (only on rebalance) and keeps stores equal to
 * what Kafka committed.
 *
 * When Kafka itself fails (a broker restarting: deliveries time out, the transaction cannot commit), the
 * runtime does in-process what a restart would: it drops everything uncommitted, leaves the group, waits
 * (with backoff) and starts over from the committed offsets with freshly restored tasks; the new producer
 * fences the old one's open transaction. Only a fenced instance (another one took its transactional id)
 * stops, as do errors that are not Kafka's.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { deserialize as v8Deserialize, serialize as v8Serialize } from 'node:v8';
import {
  Admin,
  type ConsumedRecord,
  Consumer,
  MAX_RECORD_BYTES,
  type OutgoingRecord,
  Producer,
  readPartition,
  recordBytes,
  type TopicOffset,
  type TopicPartition,
} from '../../clients/kafka.ts';
import type { Config } from '../../core/config.ts';
import { DeserializationError, EncoreError, ErrorCodes } from '../../core/errors.ts';
import { logger } from '../../core/log.ts';
import type { DeadLetters, Rejection } from '../dead-letter.ts';
import type { StateStore, StreamRecord } from './api.ts';
import {
  commitSeconds,
  type RuntimeState,
  recordsProcessed,
  registerRuntime,
  restoredRecords,
  restoreSeconds,
} from './metrics.ts';
import { flushTasks, type NodeStats, sumNodeStats, Task } from './task.ts';
import type { SubTopology, Topology, ValueSerde } from './topology.ts';

const log = logger('streams');
/** How long a poll waits for records when nothing is waiting to be committed. */
const IDLE_POLL_MS = 100;
/** Waits before starting over after a Kafka failure: doubling from the first, up to the last. */
const RESTART_BACKOFF_MS = { first: 1_000, max: 30_000 };

/**
 * Whether starting over can help: Kafka failed (unreachable, timed out, a transaction it could not
 * complete), and not because another instance took this one's transactional id (fenced: this is a zombie).
 */
function recoverable(error: unknown): boolean {
  return (
    error instanceof EncoreError &&
    error.code === ErrorCodes.KAFKA_FAILED &&
    !/fenced|old epoch/i.test(error.message)
  );
}

/** What a running application reports, e.g. to a supervisor, a progress display or a test. */
export interface CommitReport {
  /** Input records the commit covered. */
  records: number;
  /** Of those, the ones sent to the dead-letter topic. */
  deadLettered: number;
}

export interface StreamsListener {
  /** After every commit. */
  onCommit?(report: CommitReport): void;
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
  /** The input record being processed when this was emitted: what a production error dead-letters. */
  cause: ConsumedRecord | undefined;
}

/** What one commit completes: taken out of the buffers at once. */
interface PendingCommit {
  /** Outputs already handed to the producer, still being acknowledged. */
  sending: Promise<void>[];
  rejected: Rejection[];
  offsets: TopicOffset[];
}

const partitionKey = (topic: string, partition: number) => `${topic}\u0000${partition}`;

/** A fetched record, decoded (or not decodable), ready to be applied to its task. */
interface Decoded {
  record: ConsumedRecord;
  value: unknown;
  error?: DeserializationError;
  /** A table record its store already holds from restoration. */
  skip: boolean;
}

/** A decoded record waiting in a multi-input task's queue, with the event time it is ordered by. */
interface Queued {
  decoded: Decoded;
  time: number;
}

/** A partition's fetched, unprocessed records; `head` moves instead of shifting the array per record. */
interface InputQueue {
  items: Queued[];
  head: number;
}

export class KafkaStreams {
  private readonly topology: Topology;
  private readonly config: Config;
  private readonly options: StreamsOptions;
  private readonly tasks = new Map<string, Task>();
  private readonly gained: TopicPartition[] = [];
  private readonly lost: TopicPartition[] = [];
  private readonly outputs: PendingOutput[] = [];
  /** The changelog records among `outputs`, by changelog topic, partition and key. */
  private readonly changelogWrites = new Map<string, PendingOutput>();
  private readonly rejected: Rejection[] = [];
  /** Next offset to commit per source partition (cleared by each commit). */
  private readonly offsets = new Map<string, TopicOffset>();
  /** Next offset to process per source partition (for lag). */
  private readonly positions = new Map<string, TopicOffset>();
  /** Node stats of tasks already closed, so that the counters built on them never go back. */
  private retiredStats = new Map<string, NodeStats>();
  /** Changelog records still to restore, by store. */
  private readonly restoring = new Map<string, number>();
  private current: ConsumedRecord | undefined;
  /** Fetched records not yet processed, per source partition of tasks that read several topics. */
  private readonly queues = new Map<string, InputQueue>();
  /** Per source partition: the offset after the last record fetched, and the end last reported. */
  private readonly fetchedTo = new Map<string, number>();
  private readonly endOffsets = new Map<string, number>();
  /** When each multi-input task began waiting for an input with unfetched records. */
  private readonly idleSince = new Map<string, number>();
  private readonly serdes = new Map<string, ValueSerde<unknown>>();
  /** Outputs handed to the producer since the last commit (under exactly-once, in the open transaction). */
  private sending: Promise<void>[] = [];
  private transactionOpen = false;
  /** Per table source partition: the offset up to which restoration already applied it. */
  private readonly tableCaughtUp = new Map<string, number>();
  private lastCommit = Date.now();
  private consumer: Consumer | undefined;
  private producer: Producer | undefined;

  constructor(topology: Topology, config: Config, options: StreamsOptions) {
    this.topology = topology;
    this.config = config;
    this.options = options;
  }

  /**
   * Creates internal topics, checks co-partitioning, then processes until `signal` aborts; on the way out it
   * commits what it processed. A Kafka failure starts the processing over (see the top of this file).
   */
  async run(signal: AbortSignal, listener: StreamsListener = {}): Promise<void> {
    await this.prepareTopics();
    const unregister = registerRuntime(this.runtimeState());
    let failures = 0;
    try {
      while (!signal.aborted) {
        let committed = false;
        try {
          await this.session(signal, {
            ...listener,
            onCommit: (report) => {
              committed = true;
              listener.onCommit?.(report);
            },
          });
          return;
        } catch (error) {
          if (signal.aborted || !recoverable(error)) throw error;
          failures = committed ? 1 : failures + 1;
          const waitMs = Math.min(RESTART_BACKOFF_MS.max, RESTART_BACKOFF_MS.first * 2 ** (failures - 1));
          log.warn(
            { err: (error as Error).message, restartInMs: waitMs },
            'Kafka failed: uncommitted work dropped; starting over from the committed offsets',
          );
          await sleep(waitMs, undefined, { signal }).catch(() => undefined);
        }
      }
    } finally {
      unregister();
    }
  }

  /**
   * One membership of the group, from connecting to leaving: what a process's lifetime is, without a
   * failure. Leaves nothing uncommitted behind: what was not committed is dropped, to be redone.
   */
  private async session(signal: AbortSignal, listener: StreamsListener): Promise<void> {
    const { streams } = this.config;
    const sourceTopics = this.topology.subtopologies.flatMap((s) => s.sourceTopics);
    const exactlyOnce = streams.guarantee === 'exactly-once';
    this.producer = new Producer(this.config, `streams-${streams.instanceId}`, {
      ...(exactlyOnce ? { transactionalId: `${this.config.appId}-${streams.instanceId}` } : {}),
      // Outputs are handed over per poll, in bulk, and a commit waits for them: lingering would only delay
      // it (about 9 ms of a 25 ms commit to 60 partitions, measured).
      lingerMs: 0,
    });
    this.consumer = new Consumer(this.config, `streams-${streams.instanceId}`, {
      groupId: this.config.appId,
      topics: [...new Set(sourceTopics)],
      isolation: 'read_committed',
      onAssign: (partitions) => this.gained.push(...partitions),
      onRevoke: (partitions) => this.lost.push(...partitions),
      onPartitionEnd: ({ topic, partition, offset }) =>
        this.endOffsets.set(partitionKey(topic, partition), offset),
      // A task's input partitions (partition p of each of its co-partitioned topics) must all be on one
      // instance: range shares out the same partition numbers of every topic; cooperative-sticky shares
      // topics out one by one, and with a second instance gave it whole topics of every task.
      assignment: 'range',
      // A crashed instance's partitions move to the others within 10 s instead of librdkafka's 45 s.
      sessionTimeoutMs: 10_000,
      fetchWaitMaxMs: streams.fetchWaitMaxMs,
    });
    const { producer, consumer } = this;
    let processed = 0;
    try {
      await producer.connect();
      if (exactlyOnce) await producer.initTransactions();
      await consumer.connect();
      log.info({ guarantee: streams.guarantee, instance: streams.instanceId }, 'streams running');
      while (!signal.aborted) {
        // With work waiting for its commit, the poll waits no longer than until the commit is due: at low
        // rates, outputs would otherwise sit up to the full wait before their transaction commits.
        const wait = this.uncommitted()
          ? Math.min(IDLE_POLL_MS, Math.max(0, streams.commitIntervalMs - (Date.now() - this.lastCommit)))
          : IDLE_POLL_MS;
        const records = await this.consumer.poll(streams.maxBatchRecords, wait);
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
        // A due commit is started before the new records are processed and finished after: its network
        // round trips overlap with processing. It never spans a poll, so no rebalance happens under it
        // (an open transaction does span polls; a revocation aborts it, see discardUncommitted).
        let commit: { sent: Promise<number>; records: number } | undefined;
        if (this.uncommitted() && Date.now() - this.lastCommit >= streams.commitIntervalMs) {
          const started = await this.unlessStopped(signal, () => this.startCommit());
          if (!started) return;
          commit = { sent: started.sent, records: processed };
          processed = 0;
        }
        await this.processRecords(records);
        for (const task of this.tasks.values()) task.punctuateWallClock();
        // Asynchronous work (micro-batched inference) completes per poll, not per commit: its outputs then
        // leave with this poll's and wait for nothing but the next commit.
        await flushTasks(this.tasks.values());
        processed += records.length;
        if (commit) {
          const deadLettered = await this.unlessStopped(signal, () => commit.sent);
          if (deadLettered === undefined) return;
          listener.onCommit?.({ records: commit.records, deadLettered });
        }
        // Outputs go to the producer now, not at the commit: librdkafka batches and sends them while the
        // next records are polled and processed; the commit only waits for what is still unacknowledged.
        await this.sendBuffered();
        // Caught up (the poll did not fill a batch), a due commit runs now rather than after the next poll
        // and its processing: nothing would overlap with it, and the outputs become visible that much
        // sooner (latency). Behind, the commit waits for the next iteration to overlap with processing
        // (throughput).
        if (
          records.length < streams.maxBatchRecords &&
          this.uncommitted() &&
          Date.now() - this.lastCommit >= streams.commitIntervalMs
        ) {
          if (!(await this.commitNow(signal, listener, processed))) return;
          processed = 0;
        }
      }
      // Fetched records still waiting for another input are processed now: they are in memory already.
      for (const task of this.tasks.values()) {
        if (task.subtopology.sourceTopics.length > 1) this.drain(task, { waitForInputs: false });
      }
      if (this.uncommitted()) await this.commitNow(signal, listener, processed);
    } finally {
      for (const task of [...this.tasks.values()]) this.closeTask(task);
      this.dropUncommitted();
      this.gained.length = 0;
      this.lost.length = 0;
      this.tableCaughtUp.clear();
      this.restoring.clear();
      // An open transaction is left to the next producer with this transactional id (or the broker's
      // timeout) to abort: aborting it here would wait for a broker that may not answer.
      this.transactionOpen = false;
      await Promise.allSettled([consumer.disconnect(), producer.disconnect()]);
      log.info({ instance: streams.instanceId }, 'streams stopped');
    }
  }

  /** Entries held per state store over this instance's tasks (keys; a session store counts keys with sessions). */
  storeEntries(): Map<string, number> {
    const entries = new Map<string, number>();
    for (const task of this.tasks.values()) {
      for (const name of task.subtopology.stores)
        entries.set(name, (entries.get(name) ?? 0) + task.store<StateStore & { size: number }>(name).size);
    }
    return entries;
  }

  /**
   * Runs a step of a commit. One that fails because the job is stopping (e.g. a sink retrying through an
   * outage gives up on abort) leaves the work uncommitted, to be redone after a restart, and returns
   * undefined; any other failure is thrown.
   */
  private async unlessStopped<T>(signal: AbortSignal, step: () => Promise<T>): Promise<T | undefined> {
    try {
      return await step();
    } catch (error) {
      if (!signal.aborted) throw error;
      log.warn(
        { err: (error as Error).message },
        'stopping without committing the last records: they are processed again on restart',
      );
      return undefined;
    }
  }

  /**
   * Commits what is uncommitted and waits for it (no overlap with processing). False when the job is
   * stopping and the commit was given up (see unlessStopped).
   */
  private async commitNow(signal: AbortSignal, listener: StreamsListener, records: number): Promise<boolean> {
    const started = await this.unlessStopped(signal, () => this.startCommit());
    const deadLettered = started && (await this.unlessStopped(signal, () => started.sent));
    if (deadLettered === undefined) return false;
    listener.onCommit?.({ records, deadLettered });
    return true;
  }

  private uncommitted(): boolean {
    return (
      this.offsets.size > 0 || this.outputs.length > 0 || this.rejected.length > 0 || this.sending.length > 0
    );
  }

  /** Forgets the outputs, dead letters and offsets not committed yet, and the records fetched but not processed. */
  private dropUncommitted() {
    this.outputs.length = 0;
    this.changelogWrites.clear();
    this.rejected.length = 0;
    this.offsets.clear();
    this.forgetFetched();
    for (const sent of this.sending.splice(0)) sent.catch(() => undefined);
  }

  /** Drops uncommitted work: tasks rebuilt from their changelogs, positions back to the committed offsets. */
  private async discardUncommitted() {
    log.warn(
      { tasks: this.tasks.size },
      'partitions revoked with uncommitted work: rebuilding tasks from changelogs',
    );
    const sending = [...this.sending];
    this.dropUncommitted();
    await Promise.allSettled(sending);
    if (this.transactionOpen) {
      // Its records never become visible; under at-least-once they stay (duplicates are allowed there).
      await this.producer!.abortTransaction();
      this.transactionOpen = false;
    }
    const retained = [...this.tasks.values()];
    for (const task of retained) this.closeTask(task);
    // Every source partition of the retained tasks is re-created (and restored) as if newly assigned.
    const lost = new Set(this.lost.map((p) => partitionKey(p.topic, p.partition)));
    for (const task of retained) {
      for (const topic of task.subtopology.sourceTopics) {
        if (!lost.has(partitionKey(topic, task.partition)))
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

  private closeTask(task: Task) {
    task.close();
    this.tasks.delete(task.id);
    this.idleSince.delete(task.id);
    for (const topic of task.subtopology.sourceTopics) {
      const key = partitionKey(topic, task.partition);
      this.positions.delete(key);
      this.queues.delete(key);
      this.fetchedTo.delete(key);
      this.endOffsets.delete(key);
    }
    this.retiredStats = sumNodeStats([this.retiredStats, task.stats]);
  }

  private runtimeState(): RuntimeState {
    return {
      applicationId: this.config.appId,
      tasks: () => this.tasks.size,
      nodeStats: () => sumNodeStats([this.retiredStats, ...[...this.tasks.values()].map((t) => t.stats)]),
      lag: () =>
        [...this.positions.values()].flatMap(({ topic, partition, offset }) => {
          const end = this.consumer?.highWatermark(topic, partition);
          return end === undefined ? [] : [{ topic, partition, records: Math.max(0, end - offset) }];
        }),
      lateRecordsDropped: () =>
        new Map([...this.topology.dropped].map(([store, d]) => [store, d.lateRecordsDropped])),
      restoreRemaining: () => new Map(this.restoring),
    };
  }

  /** Creates and restores tasks for gained partitions, closes those of lost ones. */
  private async applyRebalance() {
    for (const { topic, partition } of this.lost.splice(0)) {
      const sub = this.topology.subtopologyOf(topic)!;
      const task = this.tasks.get(this.taskId(sub, partition));
      if (task) {
        this.closeTask(task);
        log.info({ task: task.id }, 'task revoked');
      }
    }
    const created = new Set<string>();
    for (const { topic, partition } of this.gained.splice(0)) {
      const sub = this.topology.subtopologyOf(topic)!;
      const id = this.taskId(sub, partition);
      const existing = this.tasks.get(id);
      if (existing && created.has(id)) continue; // the task's other source topic, gained together
      if (existing) {
        // Gained anew while still running here: a revocation went unseen, so its state may be stale.
        log.warn(
          { task: id },
          'partition assigned to a task already running: rebuilding it from its changelog',
        );
        this.closeTask(existing);
      }
      created.add(id);
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
              cause: this.current,
            }),
          changelog: (store, key, value) => {
            // A compacted changelog only needs a key's latest value: writes to a key since the outputs were
            // last handed to the producer replace each other (Kafka Streams' record cache, per poll).
            const id = `${store.changelog.topic}\u0000${partition}\u0000${key}`;
            const pending = this.changelogWrites.get(id);
            if (pending) {
              pending.record = { key, value, timestamp: Date.now(), headers: {} };
              pending.cause = this.current;
              return;
            }
            const output: PendingOutput = {
              topic: store.changelog.topic,
              partition,
              record: { key, value, timestamp: Date.now(), headers: {} },
              internal: true,
              cause: this.current,
            };
            this.changelogWrites.set(id, output);
            this.outputs.push(output);
          },
        },
      });
      await this.restore(task);
      this.tasks.set(id, task);
    }
  }

  private async restore(task: Task) {
    const timer = restoreSeconds.startTimer({ application: this.config.appId });
    let restored = 0;
    for (const name of task.subtopology.stores) {
      const store = this.topology.stores.get(name)!;
      const { topic, sourceTopic } = store.changelog;
      const serde = sourceTopic ? this.serdeOf('source', topic) : internalSerde;
      // A table is brought up to the end of its source topic before the task processes anything, so that
      // a join never misses a row that was already written when the task started. Records of the table
      // below that end are then skipped by processing (they are in the store already).
      let remaining = 0;
      const count = await readPartition(this.config, topic, task.partition, {
        onRecord: async (record) => {
          let value: unknown = null;
          try {
            value = record.value === null ? null : await serde.deserialize(record.value);
          } catch (error) {
            if (!(sourceTopic && error instanceof DeserializationError)) throw error;
            this.rejected.push({ record, reason: error.reason, message: error.message });
            return;
          }
          task.restore(name, record.key?.toString() ?? '', value);
        },
        onProgress: (position, end) => {
          this.restoring.set(name, (this.restoring.get(name) ?? 0) - remaining + (end - position));
          remaining = end - position;
          if (sourceTopic) this.tableCaughtUp.set(partitionKey(topic, task.partition), end);
        },
      });
      this.restoring.set(name, (this.restoring.get(name) ?? 0) - remaining);
      restoredRecords.inc({ application: this.config.appId, store: name }, count);
      restored += count;
    }
    const seconds = timer();
    log.info({ task: task.id, records: restored, ms: Math.round(seconds * 1000) }, 'task restored');
  }

  /** Looked up once per topic: this runs for every record. */
  private serdeOf(kind: 'source' | 'sink', topic: string): ValueSerde<unknown> {
    const key = `${kind}\u0000${topic}`;
    let serde = this.serdes.get(key);
    if (!serde) {
      const node = [...this.topology.nodes.values()].find((n) => n.kind === kind && n.topic === topic);
      serde =
        kind === 'source' && this.topology.repartitionTopics.includes(topic)
          ? internalSerde
          : (node as { serde?: ValueSerde<unknown> } | undefined)?.serde;
      if (!serde) {
        throw new EncoreError(ErrorCodes.CONFIG_INVALID, `${kind} topic ${topic} has no value serde`);
      }
      this.serdes.set(key, serde);
    }
    return serde;
  }

  /** Records already in memory that were fetched but not processed (the consumer is past them). */
  private forgetFetched() {
    this.queues.clear();
    this.fetchedTo.clear();
    this.endOffsets.clear();
    this.idleSince.clear();
  }

  /**
   * Processes a task's records as they were fetched when it reads one topic; when it reads several, merges
   * them by event time (see drain), so that e.g. a recommendation meets the events that followed it even
   * when one topic is read far ahead of the other (catching up after a restart).
   */
  private async processRecords(records: ConsumedRecord[]) {
    const perTopic = new Map<string, number>();
    for (const record of records) {
      const sub = this.topology.subtopologyOf(record.topic)!;
      const task = this.tasks.get(this.taskId(sub, record.partition));
      if (!task) continue; // revoked within this poll: its new owner processes it
      perTopic.set(record.topic, (perTopic.get(record.topic) ?? 0) + 1);
      const decoded = await this.decode(record);
      if (sub.sourceTopics.length === 1) {
        this.apply(task, decoded);
        continue;
      }
      const key = partitionKey(record.topic, record.partition);
      this.fetchedTo.set(key, record.offset + 1);
      // A record that will not be processed (undecodable, or a table record restoration applied) has no
      // event time, and its record timestamp (when it was produced) says nothing about the others': ordered
      // by it, one malformed event held every event behind it back while the other inputs ran ahead, and
      // their stream time made those events late. It goes as soon as it is at its queue's head.
      const time =
        decoded.skip || decoded.error
          ? Number.NEGATIVE_INFINITY
          : task.eventTime(record.topic, decoded.value, record.timestamp);
      const queue = this.queues.get(key);
      if (queue) queue.items.push({ decoded, time });
      else this.queues.set(key, { items: [{ decoded, time }], head: 0 });
    }
    for (const task of this.tasks.values()) {
      if (task.subtopology.sourceTopics.length > 1) this.drain(task);
    }
    for (const [topic, count] of perTopic)
      recordsProcessed.inc({ application: this.config.appId, topic }, count);
  }

  /**
   * Applies a multi-input task's queued records, the lowest event time first (within a partition, in offset
   * order). An input with nothing fetched that is not known to be at its end may still hold earlier
   * records: the task waits for it, up to `streams.maxTaskIdleMs`, then goes on without it (Kafka Streams'
   * max.task.idle.ms).
   */
  private drain(task: Task, { waitForInputs = true } = {}) {
    const inputs = task.subtopology.sourceTopics.map((topic) => partitionKey(topic, task.partition));
    for (;;) {
      let next: InputQueue | undefined;
      let waiting = false;
      for (const key of inputs) {
        const queue = this.queues.get(key);
        if (queue && queue.head < queue.items.length) {
          if (!next || queue.items[queue.head]!.time < next.items[next.head]!.time) next = queue;
        } else if (!this.atEnd(key)) waiting = true;
      }
      if (!next) return;
      if (waiting && waitForInputs) {
        const now = Date.now();
        const since = this.idleSince.get(task.id) ?? now;
        this.idleSince.set(task.id, since);
        if (now - since < this.config.streams.maxTaskIdleMs) return;
      } else this.idleSince.delete(task.id);
      const { decoded } = next.items[next.head]!;
      next.head += 1;
      if (next.head === next.items.length) {
        next.items = [];
        next.head = 0;
      }
      this.apply(task, decoded);
    }
  }

  /**
   * Whether the partition was last reported at its end with nothing fetched since. The end offset may lie
   * past the last record (a transaction's commit marker), so records fetched after the report are those
   * at or beyond it.
   */
  private atEnd(key: string): boolean {
    const end = this.endOffsets.get(key);
    if (end === undefined) return false;
    const fetched = this.fetchedTo.get(key);
    return fetched === undefined || fetched <= end;
  }

  private async decode(record: ConsumedRecord): Promise<Decoded> {
    if (record.offset < (this.tableCaughtUp.get(partitionKey(record.topic, record.partition)) ?? 0)) {
      return { record, value: undefined, skip: true };
    }
    try {
      return {
        record,
        value: await this.serdeOf('source', record.topic).deserialize(record.value),
        skip: false,
      };
    } catch (error) {
      if (!(error instanceof DeserializationError)) throw error;
      return { record, value: undefined, error, skip: false };
    }
  }

  /** Processes a decoded record (or dead-letters it) and marks its offset done. */
  private apply(task: Task, { record, value, error, skip }: Decoded) {
    const next = { topic: record.topic, partition: record.partition, offset: record.offset + 1 };
    const key = partitionKey(record.topic, record.partition);
    this.offsets.set(key, next);
    this.positions.set(key, next);
    if (skip) return;
    if (error) {
      this.rejected.push({ record, reason: error.reason, message: error.message });
      return;
    }
    this.current = record;
    try {
      task.process(
        record.topic,
        { key: record.key?.toString() ?? '', value, timestamp: record.timestamp, headers: record.headers },
        { topic: record.topic, partition: record.partition, offset: record.offset },
      );
    } catch (error) {
      if (this.config.streams.onProcessingError === 'stop') {
        throw new EncoreError(
          ErrorCodes.PROCESSING_FAILED,
          `processing ${record.topic}-${record.partition}@${record.offset} failed (streams.onProcessingError = stop): ${(error as Error).message}`,
          { cause: error },
        );
      }
      this.rejected.push({ record, reason: 'PROCESSING_FAILED', message: (error as Error).message });
    } finally {
      this.current = undefined;
    }
  }

  /**
   * Completes processors' asynchronous work and hands their outputs to the producer, then takes what the
   * commit must complete out of the buffers, synchronously, so that nothing processed afterwards can slip
   * into it. Returns the completion, still under way (wrapped: an async function would flatten the promise
   * and wait for it).
   */
  private async startCommit(): Promise<{ sent: Promise<number> }> {
    await flushTasks(this.tasks.values());
    await this.sendBuffered();
    const pending: PendingCommit = {
      sending: this.sending.splice(0),
      rejected: this.rejected.splice(0),
      offsets: [...this.offsets.values()],
    };
    this.offsets.clear();
    this.lastCommit = Date.now();
    const sent = this.completeCommit(pending);
    sent.catch(() => undefined); // awaited by the caller; this only keeps it from counting as unhandled
    return { sent };
  }

  /**
   * Waits for the commit's outputs to be acknowledged, sends its dead letters, then commits its offsets
   * with them (one transaction under exactly-once). Resolves to how many input records were dead-lettered.
   */
  private async completeCommit(pending: PendingCommit): Promise<number> {
    const { guarantee } = this.config.streams;
    const timer = commitSeconds.startTimer({ application: this.config.appId, guarantee });
    try {
      await Promise.all(pending.sending);
      if (pending.rejected.length > 0) {
        await this.openTransaction();
        await this.producer!.send(await this.options.deadLetters.encode(pending.rejected));
      }
      if (guarantee === 'exactly-once') {
        await this.openTransaction();
        if (pending.offsets.length > 0)
          await this.producer!.sendOffsetsToTransaction(pending.offsets, this.consumer!);
        await this.producer!.commitTransaction();
        this.transactionOpen = false;
      } else {
        this.consumer!.commit(pending.offsets);
      }
    } catch (error) {
      if (this.transactionOpen) {
        // Nothing became visible; stop, so that a restart replays from the committed offsets.
        await this.producer!.abortTransaction().catch(() => undefined);
        this.transactionOpen = false;
      }
      throw error;
    }
    timer();
    return pending.rejected.length;
  }

  private async openTransaction() {
    if (this.config.streams.guarantee !== 'exactly-once' || this.transactionOpen) return;
    await this.producer!.beginTransaction();
    this.transactionOpen = true;
  }

  /** Hands the outputs buffered so far to the producer, without waiting for their acknowledgement. */
  private async sendBuffered(): Promise<void> {
    if (this.outputs.length === 0) return;
    this.changelogWrites.clear();
    const records = await this.serializeOutputs(this.outputs.splice(0));
    if (records.length === 0) return;
    await this.openTransaction();
    const sent = this.producer!.send(records);
    sent.catch(() => undefined); // awaited by the commit
    this.sending.push(sent);
  }

  /**
   * The outputs as Kafka records. An output that cannot be produced (its serde fails, or it is larger than
   * a record may be) is a production error: by `streams.onProductionError`, the input record that caused it
   * goes to the dead-letter topic with the commit (its other outputs are still sent), or the job stops
   * (under exactly-once, nothing of the open transaction becomes visible).
   */
  private async serializeOutputs(outputs: PendingOutput[]): Promise<OutgoingRecord[]> {
    const records: OutgoingRecord[] = [];
    for (const o of outputs) {
      let record: OutgoingRecord | undefined;
      let problem: string;
      try {
        const serde = o.internal ? internalSerde : this.serdeOf('sink', o.topic);
        record = {
          topic: o.topic,
          key: o.record.key,
          partition: o.partition,
          timestamp: o.record.timestamp,
          headers: o.record.headers,
          value: o.record.value === null ? null : await serde.serialize(o.record.value),
        };
        const bytes = recordBytes(record);
        if (bytes <= MAX_RECORD_BYTES) {
          records.push(record);
          continue;
        }
        problem = `a record for ${o.topic} would be ${bytes} bytes, more than the ${MAX_RECORD_BYTES} allowed`;
      } catch (error) {
        if (error instanceof EncoreError && error.code === ErrorCodes.CONFIG_INVALID) throw error;
        problem = `could not serialize a record for ${o.topic}: ${(error as Error).message}`;
      }
      if (this.config.streams.onProductionError === 'stop' || !o.cause) {
        throw new EncoreError(ErrorCodes.PRODUCTION_FAILED, `${problem} (streams.onProductionError = stop)`);
      }
      if (!this.rejected.some((r) => r.record === o.cause)) {
        this.rejected.push({ record: o.cause, reason: 'PRODUCTION_FAILED', message: problem });
      }
    }
    return records;
  }

  /** Creates repartition and changelog topics, and refuses sub-topologies whose inputs are not co-partitioned. */
  private async prepareTopics() {
    const admin = new Admin(this.config);
    try {
      const cluster = await admin.describeCluster();
      const partitionsByTopic = new Map(cluster.topics.map((t) => [t.name, t.partitions]));
      const external = this.topology.subtopologies.flatMap((s) =>
        s.sourceTopics.filter((t) => !this.topology.repartitionTopics.includes(t)),
      );
      const missing = external.filter((t) => !partitionsByTopic.has(t));
      if (missing.length > 0) {
        throw new EncoreError(ErrorCodes.KAFKA_FAILED, `source topics do not exist: ${missing.join(', ')}`);
      }
      const partitions = Math.max(...external.map((t) => partitionsByTopic.get(t)!));
      const internal = [
        ...this.topology.repartitionTopics.map((name) => ({ name, config: {} })),
        ...[...this.topology.stores.values()]
          .filter((s) => !s.changelog.sourceTopic)
          .map((s) => ({ name: s.changelog.topic, config: { 'cleanup.policy': 'compact' } })),
      ];
      await admin.ensureTopics(
        internal.map((t) => ({ ...t, partitions, replicationFactor: this.config.kafka.replicationFactor })),
      );
      for (const t of internal) partitionsByTopic.set(t.name, partitions);
      for (const sub of this.topology.subtopologies) {
        const counts = new Map(sub.sourceTopics.map((t) => [t, partitionsByTopic.get(t)!]));
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
