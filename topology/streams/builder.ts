/**
 * The DSL, after Kafka Streams' StreamsBuilder / KStream / KTable:
 *
 *   const builder = new StreamsBuilder('encore');
 *   const profiles = builder.table<Profile>('user-profiles', { store: 'profiles' });
 *   builder.stream<Event>('listening-events')
 *     .leftJoin(profiles, (event, profile) => ({ event, profile }))
 *     .groupByKey()
 *     .windowedBy(SessionWindows.ofInactivityGap(30 * MINUTE).grace(5 * MINUTE))
 *     .aggregate(() => 0, (_key, _value, count) => count + 1, (_key, a, b) => a + b, { store: 'sessions' })
 *     .toStream()
 *     .to('session-counts');
 *   const topology = builder.build();
 *
 * Keys are strings. An operator that may change the key (selectKey, map, flatMap) marks the stream; a later
 * groupByKey or join then routes it through a repartition topic, `<appId>-<name>-repartition`, so records
 * with the same new key meet in the same task.
 */
import type { Processor, ProcessorContext, ProcessorSupplier, StreamRecord } from './api.ts';
import {
  aggregateByKey,
  type DroppedRecords,
  materializeTable,
  type SessionUpdate,
  type SessionWindowsSpec,
  sessionAggregate,
  streamTableJoin,
} from './operators.ts';
import {
  type StoreDefinition,
  type TimestampExtractor,
  Topology,
  type TopologyNode,
  type ValueSerde,
} from './topology.ts';

export class SessionWindows {
  readonly spec: SessionWindowsSpec;

  private constructor(spec: SessionWindowsSpec) {
    this.spec = spec;
  }

  static ofInactivityGap(gapMs: number): SessionWindows {
    if (!(gapMs > 0)) throw new Error(`session inactivity gap must be positive, got ${gapMs}`);
    return new SessionWindows({ inactivityGapMs: gapMs, graceMs: 0 });
  }

  /** How long after a session could have closed a late record is still accepted into it. */
  grace(graceMs: number): SessionWindows {
    if (!(graceMs >= 0)) throw new Error(`grace period must be zero or more, got ${graceMs}`);
    return new SessionWindows({ ...this.spec, graceMs });
  }

  /**
   * Besides an update per record, emit each session once more, with `closed: true`, when it can no longer
   * change (stream time past its end + gap + grace): Kafka Streams' emit-on-window-close, alongside updates.
   */
  emitOnClose(): SessionWindows {
    return new SessionWindows({ ...this.spec, emitOnClose: true });
  }
}

interface Named {
  name?: string;
}

export class StreamsBuilder {
  readonly applicationId: string;
  private readonly nodes = new Map<string, TopologyNode>();
  private readonly stores = new Map<string, StoreDefinition>();
  private readonly repartitionTopics: string[] = [];
  private counter = 0;
  /** Late records dropped by each session aggregation, by store name. */
  readonly dropped = new Map<string, DroppedRecords>();

  constructor(applicationId: string) {
    this.applicationId = applicationId;
  }

  stream<V>(
    topic: string,
    options: { serde?: ValueSerde<V>; timestampExtractor?: TimestampExtractor<V> } & Named = {},
  ): KStream<V> {
    const name = this.name('SOURCE', options.name);
    this.addNode({
      kind: 'source',
      name,
      topic,
      serde: options.serde as ValueSerde<unknown>,
      timestampExtractor: options.timestampExtractor as TimestampExtractor<unknown> | undefined,
      children: [],
    });
    return new KStream<V>(this, name, false);
  }

  /** A table read from a compacted topic; its store restores from that topic (no extra changelog). */
  table<V>(topic: string, options: { store: string; serde?: ValueSerde<V | null> } & Named): KTable<V> {
    const source = this.name('SOURCE', options.name && `${options.name}-source`);
    this.addNode({
      kind: 'source',
      name: source,
      topic,
      serde: options.serde as ValueSerde<unknown>,
      children: [],
    });
    this.addStore({ name: options.store, kind: 'key-value', changelog: { topic, sourceTopic: true } });
    const name = this.addProcessor(
      source,
      'TABLE-SOURCE',
      materializeTable<V>(options.store),
      [options.store],
      options.name,
    );
    return new KTable<V>(this, name, options.store);
  }

  build(): Topology {
    return new Topology(new Map(this.nodes), new Map(this.stores), [...this.repartitionTopics], this.dropped);
  }

  // ---- used by KStream / KTable ----

  name(kind: string, given?: string): string {
    const name = given ?? `KSTREAM-${kind}-${String(this.counter++).padStart(10, '0')}`;
    if (this.nodes.has(name)) throw new Error(`the topology already has a node named ${name}`);
    return name;
  }

  addNode(node: TopologyNode): void {
    this.nodes.set(node.name, node);
  }

  connect(parent: string, child: string): void {
    this.nodes.get(parent)!.children.push(child);
  }

  addStore(store: StoreDefinition): void {
    if (this.stores.has(store.name))
      throw new Error(`the topology already has a state store named ${store.name}`);
    this.stores.set(store.name, store);
  }

  hasStore(name: string): boolean {
    return this.stores.has(name);
  }

  existingStore(name: string): string {
    if (!this.stores.has(name)) throw new Error(`the topology has no state store named ${name} (yet)`);
    return name;
  }

  /** A changelogged store: `<appId>-<store>-changelog`. */
  addChangeloggedStore(name: string, kind: StoreDefinition['kind']): void {
    this.addStore({
      name,
      kind,
      changelog: { topic: `${this.applicationId}-${name}-changelog`, sourceTopic: false },
    });
  }

  addProcessor(
    parent: string,
    kind: string,
    supplier: ProcessorSupplier<never, never, unknown, unknown>,
    stores: string[] = [],
    given?: string,
  ): string {
    const name = this.name(kind, given);
    this.addNode({
      kind: 'processor',
      name,
      supplier: supplier as ProcessorSupplier<unknown, unknown, unknown, unknown>,
      stores,
      children: [],
    });
    this.connect(parent, name);
    return name;
  }

  /** Sends the stream through `<appId>-<name>-repartition` and continues from the topic's source. */
  repartition(parent: string, given?: string): string {
    const base = given ?? this.name('REPARTITION');
    const topic = `${this.applicationId}-${base}-repartition`;
    this.repartitionTopics.push(topic);
    const sink = this.name('SINK', `${base}-sink`);
    this.addNode({ kind: 'sink', name: sink, topic, children: [] });
    this.connect(parent, sink);
    const source = this.name('SOURCE', `${base}-source`);
    this.addNode({ kind: 'source', name: source, topic, children: [] });
    return source;
  }
}

/** A processor from a per-record function: `emit` forwards zero or more records. */
function stateless<VIn, VOut>(
  fn: (record: StreamRecord<string, VIn>, emit: (record: StreamRecord<string, VOut>) => void) => void,
): () => Processor<string, VIn, string, VOut> {
  return () => {
    let context: ProcessorContext<string, VOut>;
    const emit = (record: StreamRecord<string, VOut>) => context.forward(record);
    return {
      init(ctx) {
        context = ctx;
      },
      process(record) {
        fn(record, emit);
      },
    };
  };
}

export class KStream<V> {
  private readonly builder: StreamsBuilder;
  readonly node: string;
  /** True after an operator that may have changed the key: grouping or joining must repartition first. */
  private readonly keyChanged: boolean;

  constructor(builder: StreamsBuilder, node: string, keyChanged: boolean) {
    this.builder = builder;
    this.node = node;
    this.keyChanged = keyChanged;
  }

  private append<R>(
    kind: string,
    supplier: () => Processor<string, V, string, R>,
    options: Named & { keyChanged?: boolean } = {},
  ) {
    const name = this.builder.addProcessor(this.node, kind, supplier as never, [], options.name);
    return new KStream<R>(this.builder, name, options.keyChanged ?? this.keyChanged);
  }

  filter(predicate: (value: V, key: string) => boolean, options?: Named): KStream<V> {
    return this.append(
      'FILTER',
      stateless<V, V>((r, emit) => predicate(r.value, r.key) && emit(r)),
      options,
    );
  }

  filterNot(predicate: (value: V, key: string) => boolean, options?: Named): KStream<V> {
    return this.filter((value, key) => !predicate(value, key), options);
  }

  mapValues<R>(mapper: (value: V, key: string) => R, options?: Named): KStream<R> {
    return this.append(
      'MAPVALUES',
      stateless<V, R>((r, emit) => emit({ ...r, value: mapper(r.value, r.key) })),
      options,
    );
  }

  map<R>(mapper: (key: string, value: V) => { key: string; value: R }, options?: Named): KStream<R> {
    return this.append(
      'MAP',
      stateless<V, R>((r, emit) => emit({ ...r, ...mapper(r.key, r.value) })),
      { ...options, keyChanged: true },
    );
  }

  selectKey(selector: (value: V, key: string) => string, options?: Named): KStream<V> {
    return this.append(
      'KEY-SELECT',
      stateless<V, V>((r, emit) => emit({ ...r, key: selector(r.value, r.key) })),
      {
        ...options,
        keyChanged: true,
      },
    );
  }

  flatMap<R>(
    mapper: (key: string, value: V) => Iterable<{ key: string; value: R }>,
    options?: Named,
  ): KStream<R> {
    return this.append(
      'FLATMAP',
      stateless<V, R>((r, emit) => {
        for (const out of mapper(r.key, r.value)) emit({ ...r, ...out });
      }),
      { ...options, keyChanged: true },
    );
  }

  flatMapValues<R>(mapper: (value: V, key: string) => Iterable<R>, options?: Named): KStream<R> {
    return this.append(
      'FLATMAPVALUES',
      stateless<V, R>((r, emit) => {
        for (const value of mapper(r.value, r.key)) emit({ ...r, value });
      }),
      options,
    );
  }

  peek(action: (value: V, key: string) => void, options?: Named): KStream<V> {
    return this.append(
      'PEEK',
      stateless<V, V>((r, emit) => {
        action(r.value, r.key);
        emit(r);
      }),
      options,
    );
  }

  /** Both streams' records, as they come, in one stream (they must be co-partitioned). */
  merge(other: KStream<V>, options?: Named): KStream<V> {
    const name = this.builder.addProcessor(
      this.node,
      'MERGE',
      stateless<V, V>((r, emit) => emit(r)) as never,
      [],
      options?.name,
    );
    this.builder.connect(other.node, name);
    return new KStream<V>(this.builder, name, this.keyChanged || other.keyChanged);
  }

  /** One stream per predicate; a record goes to the first branch whose predicate holds (or none). */
  branch<P extends ((value: V, key: string) => boolean)[]>(...predicates: P): { [I in keyof P]: KStream<V> } {
    const router = this.builder.addProcessor(
      this.node,
      'BRANCH',
      () => {
        let context: ProcessorContext<string, V>;
        let children: string[] = [];
        return {
          init(ctx: ProcessorContext<string, V>) {
            context = ctx;
            children = branches.map((b) => b.node);
          },
          process(record: StreamRecord<string, V>) {
            const index = predicates.findIndex((p) => p(record.value, record.key));
            if (index >= 0) context.forward(record, children[index]);
          },
        };
      },
      [],
    );
    const branches = predicates.map(
      () =>
        new KStream<V>(
          this.builder,
          this.builder.addProcessor(
            router,
            'BRANCHCHILD',
            stateless<V, V>((r, emit) => emit(r)),
          ),
          this.keyChanged,
        ),
    );
    return branches as { [I in keyof P]: KStream<V> };
  }

  /**
   * A custom processor with access to state stores and to punctuation. A store given as `{ name, kind }` is
   * created (changelogged) on first mention; one given by name, or as a table, must exist already (a
   * table's store, or one another processor created): processors sharing a store run in the same task.
   */
  process<KR extends string, R>(
    supplier: ProcessorSupplier<string, V, KR, R>,
    options: Named & {
      stores?: ({ name: string; kind: StoreDefinition['kind'] } | string | KTable<unknown>)[];
    } = {},
  ): KStream<R> {
    const names = (options.stores ?? []).map((store) => {
      if (store instanceof KTable) return store.store;
      if (typeof store === 'string') return this.builder.existingStore(store);
      if (!this.builder.hasStore(store.name)) this.builder.addChangeloggedStore(store.name, store.kind);
      return store.name;
    });
    const name = this.builder.addProcessor(this.node, 'PROCESSOR', supplier as never, names, options.name);
    return new KStream<R>(this.builder, name, true);
  }

  join<T, R>(
    table: KTable<T>,
    joiner: (value: V, tableValue: T, key: string) => R,
    options?: Named,
  ): KStream<R> {
    return this.joinTable(table, (v, t, k) => joiner(v, t as T, k), false, options);
  }

  leftJoin<T, R>(
    table: KTable<T>,
    joiner: (value: V, tableValue: T | null, key: string) => R,
    options?: Named,
  ): KStream<R> {
    return this.joinTable(table, joiner, true, options);
  }

  private joinTable<T, R>(
    table: KTable<T>,
    joiner: (value: V, tableValue: T | null, key: string) => R,
    left: boolean,
    options: Named = {},
  ): KStream<R> {
    const parent = this.keyChanged
      ? this.builder.repartition(this.node, options.name && `${options.name}-repartition`)
      : this.node;
    const name = this.builder.addProcessor(
      parent,
      left ? 'LEFTJOIN' : 'JOIN',
      streamTableJoin<V, T, R>(table.store, joiner, left) as never,
      [table.store],
      options.name,
    );
    return new KStream<R>(this.builder, name, false);
  }

  groupByKey(options: Named = {}): KGroupedStream<V> {
    const node = this.keyChanged ? this.builder.repartition(this.node, options.name) : this.node;
    return new KGroupedStream<V>(this.builder, node);
  }

  to(topic: string, options: { serde?: ValueSerde<V> } & Named = {}): void {
    const name = this.builder.name('SINK', options.name);
    this.builder.addNode({
      kind: 'sink',
      name,
      topic,
      serde: options.serde as ValueSerde<unknown>,
      children: [],
    });
    this.builder.connect(this.node, name);
  }
}

export class KTable<V> {
  private readonly builder: StreamsBuilder;
  readonly node: string;
  readonly store: string;

  constructor(builder: StreamsBuilder, node: string, store: string) {
    this.builder = builder;
    this.node = node;
    this.store = store;
  }

  /** The table's changes as a stream. */
  toStream(): KStream<V> {
    return new KStream<V>(this.builder, this.node, false);
  }
}

export class KGroupedStream<V> {
  private readonly builder: StreamsBuilder;
  private readonly node: string;

  constructor(builder: StreamsBuilder, node: string) {
    this.builder = builder;
    this.node = node;
  }

  aggregate<A>(
    initializer: () => A,
    aggregator: (key: string, value: V, aggregate: A) => A,
    options: { store: string } & Named,
  ): KTable<A> {
    this.builder.addChangeloggedStore(options.store, 'key-value');
    const name = this.builder.addProcessor(
      this.node,
      'AGGREGATE',
      aggregateByKey(options.store, initializer, aggregator) as never,
      [options.store],
      options.name,
    );
    return new KTable<A>(this.builder, name, options.store);
  }

  reduce(reducer: (aggregate: V, value: V) => V, options: { store: string } & Named): KTable<V> {
    return this.aggregate<V | undefined>(
      () => undefined,
      (_key, value, aggregate) => (aggregate === undefined ? value : reducer(aggregate, value)),
      options,
    ) as KTable<V>;
  }

  count(options: { store: string } & Named): KTable<number> {
    return this.aggregate(
      () => 0,
      (_key, _value, count) => count + 1,
      options,
    );
  }

  windowedBy(windows: SessionWindows): SessionWindowedKStream<V> {
    return new SessionWindowedKStream<V>(this.builder, this.node, windows.spec);
  }
}

export class SessionWindowedKStream<V> {
  private readonly builder: StreamsBuilder;
  private readonly node: string;
  private readonly windows: SessionWindowsSpec;

  constructor(builder: StreamsBuilder, node: string, windows: SessionWindowsSpec) {
    this.builder = builder;
    this.node = node;
    this.windows = windows;
  }

  /**
   * Aggregates per key and session. Emits a SessionUpdate on every change, keyed by the original key, and
   * a `value: null` update for each session a late record merged away.
   */
  aggregate<A>(
    initializer: () => A,
    aggregator: (key: string, value: V, aggregate: A) => A,
    merger: (key: string, left: A, right: A) => A,
    options: { store: string } & Named,
  ): KTable<SessionUpdate<A>> {
    this.builder.addChangeloggedStore(options.store, 'session');
    const dropped: DroppedRecords = { lateRecordsDropped: 0 };
    this.builder.dropped.set(options.store, dropped);
    const name = this.builder.addProcessor(
      this.node,
      'SESSION-AGGREGATE',
      sessionAggregate(options.store, this.windows, initializer, aggregator, merger, dropped) as never,
      [options.store],
      options.name,
    );
    return new KTable<SessionUpdate<A>>(this.builder, name, options.store);
  }

  count(options: { store: string } & Named): KTable<SessionUpdate<number>> {
    return this.aggregate(
      () => 0,
      (_key, _value, count) => count + 1,
      (_key, a, b) => a + b,
      options,
    );
  }
}
