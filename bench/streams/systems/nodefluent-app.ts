/**
 * The benchmark job (bench/streams/README.md) on the npm `kafka-streams` package (nodefluent, 5.0.0), started by
 * the harness as a process of its own.
 *
 * How the library talks to Kafka: its default client (sinek's deprecated `Kafka`/`Drainer`/`Publisher`) is
 * kafka-node 5, which sends requests in versions Kafka 4 removed (Produce v0-v2, for one); the broker closes
 * the connection (tried: metadata works, the first produce fails), so that client cannot run here at all. Setting `noptions` makes the library's KafkaFactory pick
 * its NativeKafkaClient instead: sinek's NConsumer/NProducer on node-rdkafka (the repo's own node-rdkafka 3.x,
 * librdkafka 2.x; the library leaves it to the app to install). Everything below is that native path.
 *
 * Job: KStream on the events topic -> Avro decode -> lookup in a KTable of profiles -> per-user sessions
 * (30 min gap, no grace) -> `.to(output)` through the library's producer, one record per input event.
 * The library has no stream-table join (its `innerJoin` zips two streams by position), no session windows
 * and no state stores beyond a plain object, so the lookup reads the KTable's storage and the sessions live
 * in a Map.
 *
 * Offsets: the library's batch mode commits right after a batch was handed to the stream, before its output
 * was even produced (most.js delivers the batch in a later microtask, the producer acknowledges later still).
 * That would count events as done before their output exists, and lose output on a crash. So batch commits
 * are off (`noBatchCommits`) and an offset is committed once the output of every record up to it has been
 * acknowledged (the library's produce handler reports each delivery): at-least-once, as the other systems.
 */
import type { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import avro from 'avsc';
import kafkaStreamsPackage from 'kafka-streams';
import type Kafka from 'node-rdkafka';
import type { ListeningEvent, UserProfile } from '../../../schemas/types.generated.ts';

// ---------------------------------------------------------------------------------------------------------
// The part of kafka-streams 5.0.0 (and of sinek 9, which it wraps) that this app uses. The package's own
// index.d.ts types nearly everything as `any`, lacks the fields used here (`kafka`, `manualBatching`, the
// produce handler's events) and is wrong in places (getKTable's storage is optional), so a narrow typed
// view of the runtime objects is declared here instead.
// ---------------------------------------------------------------------------------------------------------

type ClientOptions = Record<string, string | number | boolean | ((...args: never[]) => void)>;

interface SinekLogger {
  debug(...args: unknown[]): void;
  info(...args: unknown[]): void;
  warn(...args: unknown[]): void;
  error(...args: unknown[]): void;
}

/** sinek NConsumer's 1:n mode, handed through by kafka-streams unchanged. */
interface BatchOptions {
  /** Messages per `consume(n)` call. */
  batchSize: number;
  /** No commit after each batch: this app commits delivered offsets itself. */
  noBatchCommits: boolean;
  /** The whole batch goes to the stream in one call instead of message by message through async.eachLimit. */
  manualBatching: boolean;
}

interface NativeConfig {
  /** librdkafka global config; its presence selects the native client. */
  noptions: ClientOptions;
  /** librdkafka topic config. */
  tconf: ClientOptions;
  batchOptions?: BatchOptions;
  options: {
    /** Base of the back-off after an empty `consume(n)`: base * 1.5 * (empty fetches in a row, at most 26). */
    consumeGraceMs?: number;
    /** '2' is the Java client's murmur2 partitioner; the default '3' places keys differently. */
    murmurHashVersion?: '2' | '3';
  };
  logger: SinekLogger;
}

/** A record as node-rdkafka hands it over (values stay Buffers: the library's asString/asJSON are off). */
interface ConsumedMessage {
  topic: string;
  partition: number;
  offset: number;
  key: Buffer | string | null | undefined;
  value: Buffer | null;
}

/** What `.to()` produces: key and value, plus an opaque tag the produce handler reports back. */
interface OutgoingMessage {
  key: string;
  value: string;
  opaqueKey: InputPosition;
}

interface NConsumer {
  /** The underlying node-rdkafka consumer; null until connected. */
  consumer: Kafka.KafkaConsumer | null;
  getTopicMetadata(topic: string, timeoutMs?: number): Promise<SinekMetadata>;
  getOffsetForTopicPartition(
    topic: string,
    partition: number,
    timeoutMs?: number,
  ): Promise<{ lowOffset: number; highOffset: number }>;
  getAssignedPartitions(): Kafka.Assignment[];
  /** Commits `offset` as the next offset to read (it fakes a message at offset - 1 for commitMessage). */
  commitOffsetHard(topic: string, partition: number, offset: number, async?: boolean): boolean;
  pause(topicPartitions: Kafka.TopicPartition[]): void;
}

interface SinekMetadata {
  getPartitionsForTopic(topic: string): number[];
  getPartitionCountOfTopic(topic: string): number;
}

interface NativeKafkaClient {
  /** sinek's consumer; created by the stream's start(). */
  consumer: NConsumer | null;
  /** sinek's producer, around node-rdkafka's HighLevelProducer; created by start() after `.to()`. */
  producer: { producer: Kafka.Producer | null } | null;
}

/** A node-rdkafka client, as far as closing it goes. */
interface RdKafkaClient {
  isConnected(): boolean;
  once(event: 'disconnected', listener: () => void): unknown;
}

interface ProduceHandler extends EventEmitter {
  on(event: 'delivered', listener: (message: { opaqueKey: InputPosition }) => void): this;
}

type ErrorCallback = (error: Error) => void;

/** KStream and KTable: each DSL call replaces the internal most.js stream and returns the same instance. */
interface Stream<T> {
  kafka: NativeKafkaClient;
  map<U>(etl: (value: T) => U): Stream<U>;
  filter<U extends T>(predicate: (value: T) => value is U): Stream<U>;
  to(topic: string, outputPartitionsCount: number, produceType: 'send'): Promise<boolean>;
  createAndSetProduceHandler(): ProduceHandler;
  /**
   * The four-argument form: errors after start (failed produce requests included) reach `onError`. The
   * promise form turns `onError` into the already settled promise's reject, which swallows them.
   */
  start(
    onReady: () => void,
    onError: ErrorCallback,
    withBackPressure: boolean,
    outputKafkaConfig: NativeConfig | null,
  ): void;
}

interface KTable<V> extends Stream<{ key: string; value: V }> {
  /** The table's KStorage state: a plain object, key -> last value. The same object on every call. */
  getTable(): Promise<Record<string, V>>;
}

interface KafkaStreams {
  getKStream(topic: string): Stream<ConsumedMessage>;
  getKTable<V>(topic: string, keyMapETL: (message: ConsumedMessage) => { key: string; value: V }): KTable<V>;
  closeAll(): Promise<unknown>;
}

const { KafkaStreams } = kafkaStreamsPackage as unknown as {
  KafkaStreams: new (config: NativeConfig) => KafkaStreams;
};

// ---------------------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------------------

function requiredEnv(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set (see bench/streams/README.md)`);
  return value;
}

const bootstrap = requiredEnv('BENCH_BOOTSTRAP');
const eventsTopic = requiredEnv('BENCH_EVENTS_TOPIC');
const profilesTopic = requiredEnv('BENCH_PROFILES_TOPIC');
const outputTopic = requiredEnv('BENCH_OUTPUT_TOPIC');
const applicationId = requiredEnv('BENCH_APPLICATION_ID');
if ((process.env.BENCH_GUARANTEE ?? 'at-least-once') !== 'at-least-once') {
  // No transactions anywhere in the library (sinek's NProducer is node-rdkafka's HighLevelProducer).
  throw new Error(`kafka-streams supports at-least-once only, not ${process.env.BENCH_GUARANTEE}`);
}

const SESSION_GAP_MS = 30 * 60 * 1000;
/** How often acknowledged offsets are committed (Encore's streams.commitIntervalMs default). */
const COMMIT_INTERVAL_MS = 100;
/**
 * Records per `consume(n)`. sinek's default is 1 (a native call and an event-loop turn per record). Past 100
 * there is a trap: node-rdkafka hands at most 100 delivery reports to JavaScript per event-loop turn, and
 * every turn also runs one consume callback, so with bigger batches consumption outruns the acknowledgements
 * without bound (measured with 150: 53,000 records in flight and 677 MiB after 200,000 events; with 2,000:
 * 163,000 and 950 MiB), and only the end of the backlog lets them catch up. At 100 the two stay in step
 * (under 1,000 in flight) at the same throughput.
 */
const EVENTS_BATCH_SIZE = 100;
const PROFILES_BATCH_SIZE = 10_000;
/** Set on SIGTERM (or a fatal error): from then on the app only drains, commits and closes. */
let stopping = false;

const log = (message: string) => process.stderr.write(`[nodefluent] ${message}\n`);

/** sinek logs through this: debug/info are per message or chatty; warnings and errors go to stderr. */
const sinekLogger: SinekLogger = {
  debug: () => {},
  info: () => {},
  warn: (...args) => {
    if (stopping) return; // "Disconnected." from each client while closing
    // sinek warns about enable.auto.commit in 1:n mode whenever it is set at all, which its own defaults do.
    if (String(args[0]).startsWith('enable.auto.commit has no effect')) return;
    log(`sinek: ${args.map(String).join(' ')}`);
  },
  error: (...args) => log(`sinek error: ${args.map(String).join(' ')}`),
};

const common = {
  'metadata.broker.list': bootstrap,
  'socket.keepalive.enable': true,
};

/** The events consumer (group = application id). */
const eventsConfig: NativeConfig = {
  noptions: {
    ...common,
    'client.id': `${applicationId}-events`,
    'group.id': applicationId,
    // This app commits, with explicit offsets, only what has been delivered.
    'enable.auto.commit': false,
    'enable.auto.offset.store': false,
    // node-rdkafka's consume(n) returns when n records arrived or a read times out (1 s, which sinek does not
    // change); with end-of-partition events it returns at the end of the backlog, so the last partial batch
    // does not wait a second.
    'enable.partition.eof': true,
    offset_commit_cb: (error: Kafka.LibrdKafkaError | null) => {
      if (error) log(`offset commit failed: ${error.message}`);
    },
  },
  tconf: { 'auto.offset.reset': 'earliest' },
  batchOptions: { batchSize: EVENTS_BATCH_SIZE, noBatchCommits: true, manualBatching: true },
  options: { consumeGraceMs: 10 },
  logger: sinekLogger,
};

/**
 * The producer behind `.to()`, configured apart from the consumer (the library would otherwise build it from
 * the consumer's noptions). librdkafka's defaults already batch well (linger 5 ms, 10,000 records or 1 MB per
 * batch); acks=all with idempotence is what Encore's producer uses.
 */
const producerConfig: NativeConfig = {
  noptions: {
    ...common,
    'client.id': `${applicationId}-output`,
    'enable.idempotence': true,
    'linger.ms': 5,
    // Nothing holds consumption back while output is unacknowledged (see EVENTS_BATCH_SIZE), so the
    // producer queue must absorb whatever is in flight: at librdkafka's default of 100,000 messages a
    // backlog would end in QUEUE_FULL, i.e. output records not written.
    'queue.buffering.max.messages': 2_000_000,
    'queue.buffering.max.kbytes': 1_048_576,
  },
  tconf: { 'request.required.acks': -1 },
  options: { murmurHashVersion: '2' },
  logger: sinekLogger,
};

/**
 * The profiles table's consumer, in a group of its own that never commits: the table lives in memory only,
 * so every start reads the topic from the beginning (sharing the application's group would also put the
 * table's consumer into the events consumer's rebalances).
 */
const profilesConfig: NativeConfig = {
  noptions: {
    ...common,
    'client.id': `${applicationId}-profiles`,
    'group.id': `${applicationId}-profiles`,
    'enable.auto.commit': false,
    // Tells when the table has caught up with the topic (see loadProfiles).
    'enable.partition.eof': true,
  },
  tconf: { 'auto.offset.reset': 'earliest' },
  batchOptions: { batchSize: PROFILES_BATCH_SIZE, noBatchCommits: true, manualBatching: true },
  options: { consumeGraceMs: 10 },
  logger: sinekLogger,
};

// ---------------------------------------------------------------------------------------------------------
// Avro in the Confluent wire format: magic byte 0, a 4-byte schema id, the Avro body. The writer schema is
// taken to be the one in schemas/avro (true for the benchmark's data); a registry lookup per schema id would
// be needed to read data written with another version.
// ---------------------------------------------------------------------------------------------------------

function avroType(file: string): avro.Type {
  const schema = JSON.parse(
    readFileSync(new URL(`../../../schemas/avro/${file}`, import.meta.url), 'utf8'),
  ) as avro.Schema;
  return avro.Type.forSchema(schema);
}

const listeningEventType = avroType('listening-event.avsc');
const userProfileType = avroType('user-profile.avsc');
const WIRE_HEADER_BYTES = 5;

/** The decoded value, or undefined when the bytes are not a wire-format record of the type. */
function decodeWire<T>(type: avro.Type, bytes: Buffer | null): T | undefined {
  if (!bytes || bytes.length <= WIRE_HEADER_BYTES || bytes[0] !== 0) return undefined;
  try {
    const { value, offset } = type.decode(bytes, WIRE_HEADER_BYTES);
    return offset === bytes.length ? (value as T) : undefined;
  } catch {
    return undefined;
  }
}

function keyString(key: ConsumedMessage['key']): string | undefined {
  if (key === null || key === undefined) return undefined;
  return typeof key === 'string' ? key : key.toString('utf8');
}

// ---------------------------------------------------------------------------------------------------------
// Offsets that may be committed: per partition, every record up to them has its output acknowledged (or has
// none). Records enter in offset order; deliveries come back in any order across output partitions.
// ---------------------------------------------------------------------------------------------------------

interface InputPosition {
  partition: number;
  offset: number;
}

class PartitionProgress {
  /** Offsets begun and not yet passed by `committable`, oldest first, from index `head`. */
  private pending: number[] = [];
  private head = 0;
  private readonly done = new Set<number>();
  /** Next offset to read once everything before it is done; -1 until something is. */
  committable = -1;
  committed = -1;

  begin(offset: number): void {
    this.pending.push(offset);
  }

  finish(offset: number): void {
    this.done.add(offset);
    let next = this.pending[this.head];
    while (next !== undefined && this.done.delete(next)) {
      this.committable = next + 1;
      next = this.pending[++this.head];
    }
    if (this.head > 65_536) {
      this.pending = this.pending.slice(this.head);
      this.head = 0;
    }
  }

  get inFlight(): number {
    return this.pending.length - this.head;
  }
}

const progress = new Map<number, PartitionProgress>();

function partitionProgress(partition: number): PartitionProgress {
  let p = progress.get(partition);
  if (!p) {
    p = new PartitionProgress();
    progress.set(partition, p);
  }
  return p;
}

function inFlight(): number {
  let total = 0;
  for (const p of progress.values()) total += p.inFlight;
  return total;
}

// ---------------------------------------------------------------------------------------------------------
// Sessions: the library has no session windows and no state stores, so the current session of each user is
// kept in a Map (in memory only, like the library's own KStorage). Only the latest session per user is kept:
// for in-order input an event can only extend it or start a new one. An out-of-order event that bridges the
// previous session and the current one would, in Kafka Streams, merge both; here it joins the current one
// only. Lateness follows Kafka Streams with grace 0: per input partition, stream time is the highest event
// time seen, and an event whose (merged) session ends before stream time - gap is dropped.
// ---------------------------------------------------------------------------------------------------------

interface Session {
  start: number;
  end: number;
  count: number;
}

const sessions = new Map<string, Session>();
const streamTime = new Map<number, number>();

interface DecodedEvent {
  position: InputPosition;
  user: string;
  event: ListeningEvent;
}

const counters = { consumed: 0, undecodable: 0, late: 0, produced: 0, delivered: 0 };

function decodeEvent(message: ConsumedMessage): DecodedEvent | null {
  counters.consumed++;
  const position = { partition: message.partition, offset: message.offset };
  partitionProgress(position.partition).begin(position.offset);
  const event = decodeWire<ListeningEvent>(listeningEventType, message.value);
  if (!event) {
    if (counters.undecodable++ < 10)
      log(`skipping undecodable event at ${message.partition}/${message.offset}`);
    partitionProgress(position.partition).finish(position.offset);
    return null;
  }
  return { position, user: keyString(message.key) ?? event.userId, event };
}

function sessionise(
  { position, user, event }: DecodedEvent,
  profiles: Record<string, UserProfile | null>,
): OutgoingMessage | null {
  const ts = event.timestamp;
  const time = Math.max(streamTime.get(position.partition) ?? ts, ts);
  streamTime.set(position.partition, time);
  const closeTime = time - SESSION_GAP_MS;

  const current = sessions.get(user);
  let next: Session | undefined;
  if (current && ts >= current.start - SESSION_GAP_MS && ts <= current.end + SESSION_GAP_MS) {
    next = { start: Math.min(current.start, ts), end: Math.max(current.end, ts), count: current.count + 1 };
  } else if (!current || ts > current.end + SESSION_GAP_MS) {
    next = { start: ts, end: ts, count: 1 };
  }
  // No session (more than a gap older than the current one, so it ended before stream time - gap), or one
  // that is already closed: late.
  if (!next || next.end < closeTime) {
    counters.late++;
    partitionProgress(position.partition).finish(position.offset);
    return null;
  }
  sessions.set(user, next);

  const country = profiles[user]?.country ?? null;
  counters.produced++;
  return {
    key: user,
    value: JSON.stringify({ user, start: next.start, end: next.end, count: next.count, country }),
    opaqueKey: position,
  };
}

// ---------------------------------------------------------------------------------------------------------
// Wiring
// ---------------------------------------------------------------------------------------------------------

const isPresent = <T>(value: T | null): value is T => value !== null;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function startStream<T>(stream: Stream<T>, outputConfig: NativeConfig | null): Promise<void> {
  return new Promise((resolve, reject) => {
    let ready = false;
    stream.start(
      () => {
        // The library may call this twice (once per client that becomes ready last).
        if (!ready) resolve();
        ready = true;
      },
      (error) => {
        if (!ready) return reject(error);
        onClientError(error);
      },
      true,
      outputConfig,
    );
  });
}

let fatal: Error | undefined;

function onClientError(error: Error): void {
  // Closing makes sinek's consume loop report the disconnected consumer once more: not news.
  if (stopping) return;
  // A failed produce (after librdkafka's retries) never reports a delivery, so commits would stall behind
  // it; stopping without committing it is the at-least-once answer. Other errors (a broker connection
  // dropping, say) are reported and left to librdkafka to recover from.
  if (error.message.startsWith('During message produce')) {
    fatal ??= error;
    void shutdown(1);
  }
  log(`client error: ${error.message}`);
}

const profileStreams = new KafkaStreams(profilesConfig);
const eventStreams = new KafkaStreams(eventsConfig);
let eventConsumer: NConsumer | undefined;
/** Every librdkafka client, to wait for their disconnects before exiting. */
const rdkafkaClients: RdKafkaClient[] = [];

/** Loads the profiles KTable up to the topic's end offsets as of now, then keeps it updated. */
async function loadProfiles(): Promise<{
  profiles: Record<string, UserProfile | null>;
  consumer: NConsumer;
}> {
  const seen = new Map<number, number>();
  const table = profileStreams.getKTable<UserProfile | null>(profilesTopic, (message) => {
    seen.set(message.partition, message.offset + 1);
    // A null value is a tombstone: the user is gone, the lookup finds null.
    return {
      key: keyString(message.key) ?? '',
      value: message.value ? (decodeWire<UserProfile>(userProfileType, message.value) ?? null) : null,
    };
  });
  await startStream(table, null);
  const consumer = table.kafka.consumer;
  if (!consumer?.consumer) throw new Error('the profiles KTable has no consumer');
  rdkafkaClients.push(consumer.consumer);
  const eof = new Map<number, number>();
  consumer.consumer.on('partition.eof', ({ partition, offset }) => eof.set(partition, offset));

  const metadata = await consumer.getTopicMetadata(profilesTopic, 10_000);
  const ends = await Promise.all(
    metadata.getPartitionsForTopic(profilesTopic).map(async (partition) => ({
      partition,
      ...(await consumer.getOffsetForTopicPartition(profilesTopic, partition, 10_000)),
    })),
  );
  const started = Date.now();
  for (;;) {
    // `seen` is what went through keyMapETL. A transaction marker takes the last offset of a partition written
    // transactionally, so there the last record ends one short of the end; the end-of-partition event
    // (emitted just before its batch is handed to the stream, so settled by the next timer) covers that.
    const behind = ends.filter(
      ({ partition, lowOffset, highOffset }) =>
        Math.max(seen.get(partition) ?? lowOffset, eof.get(partition) ?? -1) < highOffset,
    );
    if (behind.length === 0) break;
    if (Date.now() - started > 120_000) throw new Error('profiles not loaded within 120 s');
    await sleep(20);
  }
  // Records seen by keyMapETL reach the storage in the same synchronous pass; one turn settles the rest.
  await sleep(0);
  const profiles = await table.getTable();
  log(`profiles table loaded: ${Object.keys(profiles).length} keys in ${Date.now() - started} ms`);
  return { profiles, consumer };
}

let commitTimer: NodeJS.Timeout | undefined;

function commitProgress(async: boolean): void {
  if (!eventConsumer) return;
  for (const [partition, p] of progress) {
    if (p.committable > p.committed) {
      eventConsumer.commitOffsetHard(eventsTopic, partition, p.committable, async);
      p.committed = p.committable;
    }
  }
}

async function main(): Promise<void> {
  const { profiles, consumer: profilesConsumer } = await loadProfiles();
  const outputPartitions = (
    await profilesConsumer.getTopicMetadata(outputTopic, 10_000)
  ).getPartitionCountOfTopic(outputTopic);

  const events = eventStreams.getKStream(eventsTopic);
  const produceHandler = events.createAndSetProduceHandler();
  produceHandler.on('delivered', ({ opaqueKey }) => {
    counters.delivered++;
    partitionProgress(opaqueKey.partition).finish(opaqueKey.offset);
  });
  const output = events
    .map(decodeEvent)
    .filter(isPresent)
    .map((event) => sessionise(event, profiles))
    .filter(isPresent);
  // 'send': the value as is (a JSON string); the partition from the key with murmur2, as Java clients do.
  await output.to(outputTopic, outputPartitions, 'send');
  await startStream(events, producerConfig);

  eventConsumer = events.kafka.consumer ?? undefined;
  for (const client of [eventConsumer?.consumer, events.kafka.producer?.producer])
    if (client) rdkafkaClients.push(client);
  commitTimer = setInterval(() => commitProgress(true), COMMIT_INTERVAL_MS);
  log(`running: ${eventsTopic} -> ${outputTopic} (${outputPartitions} partitions), group ${applicationId}`);
}

async function shutdown(code: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  const forced = setTimeout(() => {
    log('shutdown took too long, exiting');
    process.exit(1);
  }, 30_000);
  forced.unref();
  try {
    if (code === 0 && eventConsumer) {
      // Stop reading, let what was read reach the output, commit it, then close. (The library's closeAll
      // would disconnect the consumer without a final commit.)
      eventConsumer.pause(eventConsumer.getAssignedPartitions());
      const deadline = Date.now() + 10_000;
      let quiet = 0;
      let last = counters.consumed;
      while (Date.now() < deadline && quiet < 3) {
        await sleep(50);
        quiet = inFlight() === 0 && counters.consumed === last ? quiet + 1 : 0;
        last = counters.consumed;
      }
    }
    clearInterval(commitTimer);
    // Safe after a failure too: the committable offsets never pass an unacknowledged output.
    commitProgress(false);
    // closeAll gives each client a fixed 750 ms and resolves whether or not it has disconnected; exiting
    // while librdkafka is still closing a handle can hang the process, so wait for the disconnects too.
    const disconnected = rdkafkaClients
      .filter((client) => client.isConnected())
      .map((client) => new Promise((resolve) => client.once('disconnected', () => resolve(undefined))));
    await Promise.all([eventStreams.closeAll(), profileStreams.closeAll()]);
    await Promise.race([Promise.all(disconnected), sleep(10_000)]);
  } catch (error) {
    log(`shutdown: ${(error as Error).message}`);
    code = 1;
  }
  log(
    `stopped: consumed ${counters.consumed}, produced ${counters.produced}, delivered ${counters.delivered}, ` +
      `late ${counters.late}, undecodable ${counters.undecodable}, in flight ${inFlight()}`,
  );
  process.exit(fatal ? 1 : code);
}

process.once('SIGTERM', () => void shutdown(0));
process.once('SIGINT', () => void shutdown(0));

main().catch((error: unknown) => {
  log(`failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  fatal ??= error instanceof Error ? error : new Error(String(error));
  void shutdown(1);
});
