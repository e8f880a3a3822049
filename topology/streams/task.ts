/**
 * A task: one sub-topology instantiated for one partition, with its own processors, state stores, stream
 * time and punctuation schedule. The same class runs under the in-memory test driver and under the Kafka
 * runtime; only `TaskOutput` differs (a list in memory, a transaction on the broker).
 */
import type {
  Cancellable,
  Processor,
  ProcessorContext,
  PunctuationType,
  RecordMetadata,
  StateStore,
  StreamRecord,
} from './api.ts';
import { InMemoryKeyValueStore, ListStore, SessionStore } from './stores.ts';
import type { SourceNode, StoreDefinition, SubTopology, Topology, TopologyNode } from './topology.ts';

export interface TaskOutput {
  /** A record for a sink topic. */
  emit(topic: string, record: StreamRecord<string, unknown>): void;
  /** A store change for its changelog topic (not called for stores whose changelog is their source topic). */
  changelog(store: StoreDefinition, key: string, value: unknown): void;
}

/** Per processor node, since the task started: what came in, what went out, time spent in the node itself. */
export interface NodeStats {
  recordsIn: number;
  recordsOut: number;
  /** Time in the node's own code, excluding the children it forwarded to. */
  seconds: number;
}

/** Adds up node stats by node name (over tasks, or retired tasks and live ones). */
export function sumNodeStats(sources: Iterable<ReadonlyMap<string, NodeStats>>): Map<string, NodeStats> {
  const sum = new Map<string, NodeStats>();
  for (const stats of sources) {
    for (const [node, { recordsIn, recordsOut, seconds }] of stats) {
      const total = sum.get(node) ?? { recordsIn: 0, recordsOut: 0, seconds: 0 };
      total.recordsIn += recordsIn;
      total.recordsOut += recordsOut;
      total.seconds += seconds;
      sum.set(node, total);
    }
  }
  return sum;
}

interface Schedule {
  type: PunctuationType;
  intervalMs: number;
  next: number | undefined;
  punctuator: (timestamp: number) => void;
  cancelled: boolean;
  node: string;
}

/**
 * Completes every task's asynchronous work at once, so that their model calls share micro-batches; waits
 * for all of them before reporting the first failure.
 */
export async function flushTasks(tasks: Iterable<Task>): Promise<void> {
  const results = await Promise.allSettled([...tasks].map((task) => task.flush()));
  const failure = results.find((result) => result.status === 'rejected');
  if (failure) throw failure.reason;
}

export class Task {
  readonly id: string;
  readonly partition: number;
  readonly subtopology: SubTopology;
  private readonly topology: Topology;
  private readonly output: TaskOutput;
  private readonly applicationId: string;
  private readonly clock: () => number;
  private readonly processors = new Map<string, Processor<unknown, unknown, unknown, unknown>>();
  private readonly stores = new Map<
    string,
    InMemoryKeyValueStore<unknown> | SessionStore<unknown> | ListStore<unknown>
  >();
  private readonly schedules: Schedule[] = [];
  private currentStreamTime = Number.NEGATIVE_INFINITY;
  private metadata: RecordMetadata | undefined;
  private currentNode: string | undefined;
  /** Time spent in the children of the node now running, subtracted from its own time. */
  private childSeconds = 0;
  readonly stats = new Map<string, NodeStats>();
  private readonly sources = new Map<string, SourceNode>();

  constructor(options: {
    topology: Topology;
    subtopology: SubTopology;
    partition: number;
    applicationId: string;
    output: TaskOutput;
    clock: () => number;
  }) {
    this.topology = options.topology;
    this.subtopology = options.subtopology;
    this.partition = options.partition;
    this.applicationId = options.applicationId;
    this.output = options.output;
    this.clock = options.clock;
    this.id = `${this.subtopology.id}_${this.partition}`;
    for (const name of this.subtopology.stores) this.stores.set(name, this.createStore(name));
    for (const node of this.subtopology.nodes) {
      if (node.kind === 'processor') this.processors.set(node.name, node.supplier());
      if (node.kind === 'source') this.sources.set(node.topic, node);
      this.stats.set(node.name, { recordsIn: 0, recordsOut: 0, seconds: 0 });
    }
    for (const [name, processor] of this.processors) {
      this.currentNode = name;
      processor.init?.(this.contextFor(name));
    }
    this.currentNode = undefined;
  }

  private createStore(name: string) {
    const definition = this.topology.stores.get(name)!;
    const log = (key: string, value: unknown) => {
      if (!definition.changelog.sourceTopic) this.output.changelog(definition, key, value);
    };
    switch (definition.kind) {
      case 'session':
        return new SessionStore<unknown>(name, log);
      case 'list':
        return new ListStore<unknown>(name, log);
      case 'key-value':
        return new InMemoryKeyValueStore(name, log);
    }
  }

  store<S extends StateStore>(name: string): S {
    const store = this.stores.get(name);
    if (!store) throw new Error(`task ${this.id} has no state store "${name}"`);
    return store as unknown as S;
  }

  /** Applies a changelog record to a store before processing starts (restoration). */
  restore(storeName: string, key: string, value: unknown): void {
    const store = this.stores.get(storeName);
    store?.restore(key, (value ?? null) as never);
  }

  streamTime(): number {
    return this.currentStreamTime;
  }

  /** A record's event time, as its source's timestamp extractor gives it (the record's timestamp without one). */
  eventTime(topic: string, value: unknown, recordTimestamp: number): number {
    return this.sources.get(topic)?.timestampExtractor?.(value, recordTimestamp) ?? recordTimestamp;
  }

  /** Processes one input record through the sub-topology, then fires the stream-time punctuations due. */
  process(topic: string, record: StreamRecord<string, unknown>, metadata: RecordMetadata): void {
    const source = this.sources.get(topic);
    if (!source) throw new Error(`task ${this.id} does not read topic ${topic}`);
    this.metadata = metadata;
    const timestamp = source.timestampExtractor?.(record.value, record.timestamp) ?? record.timestamp;
    if (timestamp > this.currentStreamTime) this.currentStreamTime = timestamp;
    this.stats.get(source.name)!.recordsIn++;
    try {
      this.forwardFrom(source, timestamp === record.timestamp ? record : { ...record, timestamp });
    } finally {
      this.metadata = undefined;
    }
    this.punctuate('stream-time', this.currentStreamTime);
  }

  /** Fires the wall-clock punctuations due at `now`. */
  punctuateWallClock(now: number = this.clock()): void {
    this.punctuate('wall-clock', now);
  }

  /** Completes processors' asynchronous work, in topological order; awaited before a commit. */
  async flush(): Promise<void> {
    for (const node of this.subtopology.nodes) {
      const processor = this.processors.get(node.name);
      if (processor?.flush) {
        this.currentNode = node.name;
        await processor.flush();
      }
    }
    this.currentNode = undefined;
  }

  close(): void {
    for (const processor of this.processors.values()) processor.close?.();
  }

  private punctuate(type: PunctuationType, time: number) {
    for (const schedule of this.schedules) {
      if (schedule.cancelled || schedule.type !== type || !Number.isFinite(time)) continue;
      schedule.next ??= time + schedule.intervalMs;
      if (time < schedule.next) continue;
      // Once per call even when time jumped several intervals, as Kafka Streams does; then realign.
      const previous = this.currentNode;
      this.currentNode = schedule.node;
      try {
        schedule.punctuator(time);
      } finally {
        this.currentNode = previous;
      }
      schedule.next += Math.ceil((time - schedule.next + 1) / schedule.intervalMs) * schedule.intervalMs;
    }
  }

  private forwardFrom(node: TopologyNode, record: StreamRecord<string, unknown>, to?: string) {
    if (to !== undefined && !node.children.includes(to))
      throw new Error(`${node.name} has no child named ${to}`);
    this.stats.get(node.name)!.recordsOut++;
    for (const childName of node.children) {
      if (to !== undefined && childName !== to) continue;
      const child = this.topology.nodes.get(childName)!;
      const stats = this.stats.get(childName)!;
      stats.recordsIn++;
      if (child.kind === 'sink') {
        this.output.emit(child.topic, record);
      } else if (child.kind === 'processor') {
        const previous = this.currentNode;
        const outerChildSeconds = this.childSeconds;
        this.currentNode = child.name;
        this.childSeconds = 0;
        const began = performance.now();
        try {
          this.processors.get(child.name)!.process(record);
        } finally {
          const elapsed = (performance.now() - began) / 1000;
          stats.seconds += elapsed - this.childSeconds;
          this.childSeconds = outerChildSeconds + elapsed;
          this.currentNode = previous;
        }
      }
    }
  }

  private contextFor(name: string): ProcessorContext<unknown, unknown> {
    const node = this.topology.nodes.get(name) as TopologyNode & { stores: string[] };
    return {
      taskId: this.id,
      partition: this.partition,
      applicationId: this.applicationId,
      streamTime: () => this.currentStreamTime,
      wallClockTime: () => this.clock(),
      recordMetadata: () => this.metadata,
      forward: (record, to) => this.forwardFrom(node, record as StreamRecord<string, unknown>, to),
      getStateStore: <S extends StateStore>(store: string) => {
        if (!node.stores.includes(store)) {
          throw new Error(`processor ${name} is not connected to state store "${store}"`);
        }
        return this.store<S>(store);
      },
      schedule: (intervalMs, type, punctuator): Cancellable => {
        if (!(intervalMs > 0)) throw new Error(`punctuation interval must be positive, got ${intervalMs}`);
        // Wall-clock time is known now; stream time only once a record arrives (see punctuate).
        const next = type === 'wall-clock' ? this.clock() + intervalMs : undefined;
        const schedule: Schedule = { type, intervalMs, next, punctuator, cancelled: false, node: name };
        this.schedules.push(schedule);
        return { cancel: () => (schedule.cancelled = true) };
      },
    };
  }
}
