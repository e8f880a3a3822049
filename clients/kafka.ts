/**
 * The one module that talks to Kafka (through node-rdkafka, librdkafka's Node binding). Everything else sees
 * these small promise-based types, so the client library can be swapped in one place.
 */
import Kafka from 'node-rdkafka';
import pRetry, { AbortError } from 'p-retry';
import { type Config, endpoints } from '../core/config.ts';
import { EncoreError, ErrorCodes, isEncoreError } from '../core/errors.ts';

export type Headers = Record<string, string>;

export interface ConsumedRecord {
  topic: string;
  partition: number;
  offset: number;
  key: Buffer | null;
  value: Buffer | null;
  timestamp: number;
  headers: Headers;
}

export interface OutgoingRecord {
  topic: string;
  key: string | Buffer | null;
  value: Buffer | null;
  partition?: number;
  timestamp?: number;
  headers?: Headers;
}

export interface TopicSpec {
  name: string;
  partitions: number;
  replicationFactor: number;
  /** Topic-level configs, e.g. { 'cleanup.policy': 'compact' }. */
  config?: Record<string, string>;
}

export interface TopicOffset {
  topic: string;
  partition: number;
  /** The next offset to read, as Kafka commits it (last processed + 1). */
  offset: number;
}

function kafkaError(action: string, cause: unknown): EncoreError {
  const message = cause instanceof Error ? cause.message : String(cause);
  return new EncoreError(ErrorCodes.KAFKA_FAILED, `Kafka ${action} failed: ${message}`, { cause });
}

/**
 * Errors that only mean "not yet": a topic created a moment ago whose partitions the client's metadata does
 * not know yet, a group coordinator still loading or moving. Seen on a freshly started broker and under load.
 */
const TRANSIENT = new Set([
  Kafka.CODES.ERRORS.ERR__UNKNOWN_PARTITION,
  Kafka.CODES.ERRORS.ERR_UNKNOWN_TOPIC_OR_PART,
  Kafka.CODES.ERRORS.ERR_LEADER_NOT_AVAILABLE,
  Kafka.CODES.ERRORS.ERR_NOT_LEADER_FOR_PARTITION,
  Kafka.CODES.ERRORS.ERR_COORDINATOR_LOAD_IN_PROGRESS,
  Kafka.CODES.ERRORS.ERR_COORDINATOR_NOT_AVAILABLE,
  Kafka.CODES.ERRORS.ERR_NOT_COORDINATOR,
]);

/** Runs a metadata-dependent request, retrying transient errors for up to about 30 s. */
function retryTransient<T>(action: string, request: () => Promise<T>): Promise<T> {
  return pRetry(
    () =>
      request().catch((error: unknown) => {
        const code = (error as { code?: number }).code;
        throw code !== undefined && TRANSIENT.has(code) ? error : new AbortError(kafkaError(action, error));
      }),
    { retries: 12, minTimeout: 50, maxTimeout: 5_000, factor: 2 },
  ).catch((error: unknown) => {
    throw error instanceof EncoreError ? error : kafkaError(action, error);
  });
}

/** What every librdkafka client of Encore shares: where the brokers are and how to log in to them. */
function baseConfig(config: Config, clientId: string) {
  return {
    'metadata.broker.list': endpoints(config).kafkaBootstrap,
    'client.id': `${config.appId}-${clientId}`,
    'socket.keepalive.enable': true,
    ...securityConfig(config.kafka.security),
  };
}

function securityConfig(security: Config['kafka']['security']) {
  if (security.protocol === 'PLAINTEXT') return {};
  return {
    'security.protocol': 'sasl_ssl' as const,
    'sasl.mechanisms': security.saslMechanism,
    'sasl.username': security.username,
    'sasl.password': security.password,
    ...(security.caFile ? { 'ssl.ca.location': security.caFile } : {}),
  };
}

/**
 * librdkafka's error events for a login the broker refused and for a broker certificate the client did not
 * trust. node-rdkafka hands these on as the text of their code only ("Local: Authentication failure",
 * lower-cased without its origin), with no code number and without the broker's reason.
 */
const SECURITY_FAILURES = new Map<string, 'login' | 'tls'>([
  ['authentication failure', 'login'],
  ['ssl error', 'tls'],
]);

function securityError(config: Config, failure: 'login' | 'tls'): EncoreError {
  const { username, saslMechanism } = config.kafka.security;
  const broker = `Kafka at ${endpoints(config).kafkaBootstrap}`;
  return new EncoreError(
    ErrorCodes.AUTHENTICATION_FAILED,
    failure === 'login'
      ? `${broker} refused the ${saslMechanism} login of user ${username}: check kafka.security.username, ` +
          'kafka.security.password (or passwordFile) and kafka.security.saslMechanism'
      : `${broker}: the TLS handshake failed (a broker certificate not signed by the CA of ` +
          'kafka.security.caFile or not naming kafka.host, or no TLS on kafka.securePort)',
  );
}

/**
 * Connects a client and fetches its first metadata, in attempts of at most CONNECT_ATTEMPT_MS until
 * `timeoutMs` has passed. A refused login or an untrusted certificate reaches the caller only as an error
 * event, while librdkafka retries on and on: the connect would wait out its timeout and report a transport
 * failure. Such an event fails the connect as AUTHENTICATION_FAILED instead: at once for a producer, polled
 * for events meanwhile; a consumer (not pollable before it is connected) delivers its events when the attempt
 * closes it.
 */
async function connectClient(
  client: Kafka.Producer | Kafka.KafkaConsumer,
  config: Config,
  action: string,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const began = Date.now();
    const attemptMs = Math.min(CONNECT_ATTEMPT_MS, deadline - began);
    try {
      return await connectAttempt(client, config, action, attemptMs);
    } catch (error) {
      // Only an attempt that waited its whole time for a broker is worth another: a quicker failure (a bad
      // setting) would fail again, and a refused login will not change.
      const waitedForBroker = Date.now() - began >= attemptMs;
      const refused = isEncoreError(error, ErrorCodes.AUTHENTICATION_FAILED);
      if (refused || !waitedForBroker || deadline - Date.now() < 100) throw error;
    }
  }
}

/**
 * How long one connect attempt waits for its metadata. librdkafka's metadata request cannot be cancelled: it
 * holds a thread of libuv's small pool until it returns, even after its connect failed on a refused login,
 * and a client cannot be closed before. Short attempts bound that.
 */
const CONNECT_ATTEMPT_MS = 5_000;

function connectAttempt(
  client: Kafka.Producer | Kafka.KafkaConsumer,
  config: Config,
  action: string,
  timeoutMs: number,
): Promise<void> {
  const events: Kafka.Client<Kafka.KafkaClientEvents> = client;
  return new Promise((resolve, reject) => {
    const poller =
      client instanceof Kafka.Producer
        ? setInterval(() => {
            try {
              client.poll();
            } catch {
              // librdkafka's handle does not exist yet
            }
          }, 50)
        : undefined;
    const settle = () => {
      clearInterval(poller);
      events.off('event.error', onError);
    };
    let refused = false;
    const onError = (error: Kafka.LibrdKafkaError) => {
      const failure = SECURITY_FAILURES.get(error.message);
      if (!failure) return;
      refused = true;
      settle();
      reject(securityError(config, failure));
    };
    events.on('event.error', onError);
    client.connect({ timeout: timeoutMs }, (error) => {
      settle();
      if (error) reject(kafkaError(action, error));
      // librdkafka kept trying and a later login worked (credentials set meanwhile), but the caller has been
      // told the connect failed and will not close the client: it would keep the process alive.
      else if (refused) client.disconnect();
      else resolve();
    });
  });
}

function toHeaders(headers: Kafka.MessageHeader[] | undefined): Headers {
  const out: Headers = {};
  for (const header of headers ?? []) {
    for (const [name, value] of Object.entries(header)) out[name] = value.toString();
  }
  return out;
}

/** librdkafka's header list; none at all for the common case of no headers (no array per record). */
function messageHeaders(headers: Headers | undefined): Kafka.MessageHeader[] | undefined {
  const list: Kafka.MessageHeader[] = [];
  for (const name in headers) list.push({ [name]: headers[name]! });
  return list.length > 0 ? list : undefined;
}

function consumedRecord(m: Kafka.Message): ConsumedRecord {
  return {
    topic: m.topic,
    partition: m.partition,
    offset: m.offset,
    key: typeof m.key === 'string' ? Buffer.from(m.key) : (m.key ?? null),
    value: m.value ?? null,
    timestamp: m.timestamp ?? 0,
    headers: toHeaders(m.headers),
  };
}

/**
 * The largest record a producer sends (librdkafka's `message.max.bytes` default, set explicitly so callers
 * can check a record before it fails inside a batch or a transaction).
 */
export const MAX_RECORD_BYTES = 1_000_000;

/** Key, value and headers: what counts against MAX_RECORD_BYTES (approximately; framing is small). */
export function recordBytes(record: OutgoingRecord): number {
  const size = (data: string | Buffer | null | undefined) =>
    typeof data === 'string' ? Buffer.byteLength(data) : (data?.length ?? 0);
  let bytes = size(record.key) + size(record.value);
  for (const [name, value] of Object.entries(record.headers ?? {})) bytes += size(name) + size(value);
  return bytes;
}

/** A producer whose `send` resolves once the broker acknowledged every record (idempotent, hence acks=all). */
export class Producer {
  private readonly client: Kafka.Producer;
  private readonly config: Config;
  private readonly pending = new Map<
    number,
    { remaining: number; resolve: () => void; reject: (error: Error) => void }
  >();
  private nextId = 0;

  /**
   * `transactionalId` makes the producer transactional (exactly-once); it fences older holders of the id.
   * `lingerMs` (default 5) is how long a record waits for others to share its batch: 0 for a caller that
   * hands records over in bulk and then waits for them (a commit), where lingering only adds latency.
   */
  constructor(
    config: Config,
    clientId: string,
    options: { transactionalId?: string; lingerMs?: number } = {},
  ) {
    this.config = config;
    this.client = new Kafka.Producer(
      {
        ...baseConfig(config, clientId),
        dr_cb: true,
        'enable.idempotence': true,
        'linger.ms': options.lingerMs ?? 5,
        'message.max.bytes': MAX_RECORD_BYTES,
        ...(options.transactionalId
          ? // A crashed holder's open transaction blocks read_committed readers until this passes.
            { 'transactional.id': options.transactionalId, 'transaction.timeout.ms': 10_000 }
          : {}),
      },
      // Java clients' partitioner: a key lands on the same partition whichever client produced it.
      { partitioner: 'murmur2_random' },
    );
    this.client.on('delivery-report', (error, report) => {
      const id = report.opaque as number;
      const waiter = this.pending.get(id);
      if (!waiter) return; // its send already failed
      if (error) {
        this.pending.delete(id);
        waiter.reject(kafkaError('delivery', error));
      } else if (--waiter.remaining === 0) {
        this.pending.delete(id);
        waiter.resolve();
      }
    });
  }

  async connect(timeoutMs = 30_000): Promise<void> {
    await connectClient(this.client, this.config, 'producer connect', timeoutMs);
    this.client.setPollInterval(5);
  }

  /** Produces the records and resolves when all are acknowledged; rejects on the first failed delivery. */
  send(records: readonly OutgoingRecord[]): Promise<void> {
    if (records.length === 0) return Promise.resolve();
    // One waiter per call, not per record: a send carries thousands of records per commit.
    return new Promise<void>((resolve, reject) => {
      const id = this.nextId++;
      const waiter = { remaining: records.length, resolve, reject };
      this.pending.set(id, waiter);
      for (const record of records) {
        try {
          this.client.produce(
            record.topic,
            record.partition ?? null,
            record.value,
            record.key ?? undefined,
            record.timestamp ?? Date.now(),
            id,
            messageHeaders(record.headers),
          );
        } catch (error) {
          this.pending.delete(id);
          reject(kafkaError(`produce to ${record.topic}`, error));
          return;
        }
      }
    });
  }

  initTransactions(timeoutMs = 30_000): Promise<void> {
    return new Promise((resolve, reject) =>
      this.client.initTransactions(timeoutMs, (error) =>
        error ? reject(kafkaError('init transactions', error)) : resolve(),
      ),
    );
  }

  beginTransaction(): Promise<void> {
    return new Promise((resolve, reject) =>
      this.client.beginTransaction((error) =>
        error ? reject(kafkaError('begin transaction', error)) : resolve(),
      ),
    );
  }

  /** Adds the consumer's offsets to the open transaction: they commit (or abort) with its records. */
  sendOffsetsToTransaction(
    offsets: readonly TopicOffset[],
    consumer: Consumer,
    timeoutMs = 30_000,
  ): Promise<void> {
    return new Promise((resolve, reject) =>
      this.client.sendOffsetsToTransaction(
        offsets.map((o) => ({ ...o })),
        consumer.native,
        timeoutMs,
        (error) => (error ? reject(kafkaError('send offsets to transaction', error)) : resolve()),
      ),
    );
  }

  commitTransaction(timeoutMs = 30_000): Promise<void> {
    return new Promise((resolve, reject) =>
      this.client.commitTransaction(timeoutMs, (error) =>
        error ? reject(kafkaError('commit transaction', error)) : resolve(),
      ),
    );
  }

  abortTransaction(timeoutMs = 30_000): Promise<void> {
    return new Promise((resolve, reject) =>
      this.client.abortTransaction(timeoutMs, (error) =>
        error ? reject(kafkaError('abort transaction', error)) : resolve(),
      ),
    );
  }

  flush(timeoutMs = 30_000): Promise<void> {
    return new Promise((resolve, reject) =>
      this.client.flush(timeoutMs, (error) => (error ? reject(kafkaError('flush', error)) : resolve())),
    );
  }

  async disconnect(): Promise<void> {
    await this.flush().catch(() => undefined);
    await new Promise<void>((resolve) => this.client.disconnect(() => resolve()));
  }
}

export interface ConsumerOptions {
  groupId: string;
  /** The topics to subscribe to; none to only read the group's committed offsets (monitoring). */
  topics: string[];
  /** read_committed hides records of aborted and still-open transactions. */
  isolation?: 'read_committed' | 'read_uncommitted';
  fromBeginning?: boolean;
  /**
   * Told of partitions gained and lost, synchronously, inside `poll` (where librdkafka delivers rebalances).
   * The consumer assigns and unassigns itself; the hooks only update the caller's bookkeeping.
   */
  onAssign?: (partitions: TopicPartition[]) => void;
  onRevoke?: (partitions: TopicPartition[]) => void;
  /** Told when the consumer has read a partition to its end (`offset`: the end), inside `poll`. */
  onPartitionEnd?: (end: TopicOffset) => void;
  /** How soon the group gives a silent member's partitions to others (librdkafka's default: 45 s). */
  sessionTimeoutMs?: number;
  /**
   * How the group shares partitions out. cooperative-sticky (the default) moves only what must move, topic by
   * topic, so one member may get partition 0 of one topic and another partition 0 of the next. range gives
   * each member the same partition numbers of every topic (what a task reading co-partitioned topics needs),
   * and revokes every partition at each rebalance.
   */
  assignment?: 'cooperative-sticky' | 'range';
  /**
   * Longest the broker holds a fetch while it has nothing new (librdkafka's default: 500 ms). Lower means
   * records reach a caught-up consumer sooner, for more idle fetch requests.
   */
  fetchWaitMaxMs?: number;
}

export interface TopicPartition {
  topic: string;
  partition: number;
}

/** A group consumer with manual offset commits: nothing is committed until the caller says so. */
export class Consumer {
  private readonly client: Kafka.KafkaConsumer;
  private readonly topics: string[];
  private readonly options: ConsumerOptions;
  private readonly config: Config;

  constructor(config: Config, clientId: string, options: ConsumerOptions) {
    this.config = config;
    this.topics = options.topics;
    this.options = options;
    const { onAssign, onRevoke } = options;
    const eager = options.assignment === 'range';
    this.client = new Kafka.KafkaConsumer(
      {
        ...baseConfig(config, clientId),
        'group.id': options.groupId,
        'enable.auto.commit': false,
        'isolation.level': options.isolation ?? 'read_committed',
        // node-rdkafka's consume(n) waits the full timeout for each further record until it has n; an
        // end-of-partition event makes it wait 1 ms instead, so a poll returns as soon as it has drained
        // what was fetched rather than idling up to the timeout.
        'enable.partition.eof': true,
        'partition.assignment.strategy': options.assignment ?? 'cooperative-sticky',
        ...(options.sessionTimeoutMs ? { 'session.timeout.ms': options.sessionTimeoutMs } : {}),
        ...(options.fetchWaitMaxMs !== undefined ? { 'fetch.wait.max.ms': options.fetchWaitMaxMs } : {}),
        ...(onAssign || onRevoke
          ? {
              rebalance_cb(
                this: Kafka.KafkaConsumer,
                error: Kafka.LibrdKafkaError,
                assignment: Kafka.Assignment[],
              ) {
                const partitions = assignment.map(({ topic, partition }) => ({ topic, partition }));
                if (error.code === Kafka.CODES.ERRORS.ERR__ASSIGN_PARTITIONS) {
                  if (eager) this.assign(assignment);
                  else this.incrementalAssign(assignment);
                  onAssign?.(partitions);
                } else {
                  onRevoke?.(partitions);
                  if (eager) this.unassign();
                  else this.incrementalUnassign(assignment);
                }
              },
            }
          : {}),
      },
      { 'auto.offset.reset': options.fromBeginning === false ? 'latest' : 'earliest' },
    );
  }

  async connect(timeoutMs = 30_000): Promise<void> {
    await connectClient(this.client, this.config, 'consumer connect', timeoutMs);
    const { onPartitionEnd } = this.options;
    if (onPartitionEnd) {
      this.client.on('partition.eof', ({ topic, partition, offset }) =>
        onPartitionEnd({ topic, partition, offset }),
      );
    }
    if (this.topics.length > 0) this.client.subscribe(this.topics);
  }

  /** Up to `max` records, waiting at most `timeoutMs` for the first one. */
  poll(max: number, timeoutMs: number): Promise<ConsumedRecord[]> {
    this.client.setDefaultConsumeTimeout(timeoutMs);
    return new Promise((resolve, reject) => {
      this.client.consume(max, (error, messages) => {
        if (error) return reject(kafkaError('consume', error));
        resolve(messages.map(consumedRecord));
      });
    });
  }

  /** For the transactional producer, which commits offsets on the group's behalf. */
  get native(): Kafka.KafkaConsumer {
    return this.client;
  }

  /** The group's committed offsets (next to read) for the partitions; -1001 where none is committed. */
  committed(partitions: readonly TopicPartition[], timeoutMs = 10_000): Promise<TopicOffset[]> {
    return retryTransient(
      'committed offsets',
      () =>
        new Promise((resolve, reject) =>
          this.client.committed(
            partitions.map((p) => ({ ...p })),
            timeoutMs,
            (error, offsets) =>
              error
                ? reject(error)
                : resolve(
                    offsets.map((o) => ({
                      topic: o.topic,
                      partition: o.partition,
                      offset: o.offset ?? -1001,
                    })),
                  ),
          ),
        ),
    );
  }

  /** Rewinds a partition, e.g. to re-read records whose transaction was aborted. */
  seek(offset: TopicOffset, timeoutMs = 10_000): Promise<void> {
    return new Promise((resolve, reject) =>
      this.client.seek({ ...offset }, timeoutMs, (error) =>
        error ? reject(kafkaError('seek', error)) : resolve(),
      ),
    );
  }

  /**
   * Stops fetching from the partitions (backpressure); `poll` must still be called, which keeps the member
   * in its group (max.poll.interval.ms) while nothing is read.
   */
  pause(partitions: readonly TopicPartition[]): void {
    if (partitions.length > 0) this.client.pause(partitions.map((p) => ({ ...p })));
  }

  resume(partitions: readonly TopicPartition[]): void {
    if (partitions.length > 0) this.client.resume(partitions.map((p) => ({ ...p })));
  }

  /** The partition's end as of the last fetch (librdkafka's cached value: no request); undefined if unknown. */
  highWatermark(topic: string, partition: number): number | undefined {
    try {
      const { highOffset } = this.client.getWatermarkOffsets(topic, partition);
      return highOffset >= 0 ? highOffset : undefined;
    } catch {
      return undefined; // not fetched yet, or disconnected
    }
  }

  commit(offsets: readonly TopicOffset[]): void {
    if (offsets.length === 0) return;
    try {
      this.client.commitSync(offsets.map((o) => ({ ...o })));
    } catch (error) {
      throw kafkaError('offset commit', error);
    }
  }

  /** Leaves the group at once, so its partitions move to the other members without a session timeout. */
  async disconnect(): Promise<void> {
    // node-rdkafka's disconnect alone leaves the member registered until session.timeout.ms (45 s) passes:
    // the next member of the group would wait that long for its partitions.
    if (this.client.isConnected()) this.client.unsubscribe();
    await new Promise<void>((resolve) => this.client.disconnect(() => resolve()));
  }
}

/** The offsets to commit after processing `records`: per partition, the highest offset + 1. */
export function nextOffsets(records: readonly ConsumedRecord[]): TopicOffset[] {
  const next = new Map<string, TopicOffset>();
  for (const r of records) {
    const key = `${r.topic}\u0000${r.partition}`;
    const current = next.get(key);
    if (!current || current.offset <= r.offset)
      next.set(key, { topic: r.topic, partition: r.partition, offset: r.offset + 1 });
  }
  return [...next.values()];
}

/**
 * A connected consumer for reading assigned partitions outside any consumer group (restoring a store,
 * following a global topic): read_committed, never committing. librdkafka still wants a group id.
 */
async function groupless(config: Config, purpose: string): Promise<Kafka.KafkaConsumer> {
  const client = new Kafka.KafkaConsumer(
    {
      ...baseConfig(config, purpose),
      'group.id': `${config.appId}-${purpose}`,
      'enable.auto.commit': false,
      'isolation.level': 'read_committed',
    },
    {},
  );
  await connectClient(client, config, `${purpose} connect`, 30_000);
  return client;
}

/** A partition's end, asked of the broker. */
function highWatermark(client: Kafka.KafkaConsumer, topic: string, partition: number): Promise<number> {
  return retryTransient(
    `watermarks of ${topic}-${partition}`,
    () =>
      new Promise<number>((resolve, reject) =>
        client.queryWatermarkOffsets(topic, partition, 10_000, (error, offsets) =>
          error ? reject(error) : resolve(offsets.highOffset),
        ),
      ),
  );
}

/**
 * Reads one partition from `from` up to (not including) its end as of now, outside any consumer group:
 * how a task restores its state stores. With read_committed, the end is the last stable offset.
 */
export async function readPartition(
  config: Config,
  topic: string,
  partition: number,
  options: {
    from?: number;
    until?: number;
    onRecord: (record: ConsumedRecord) => void | Promise<void>;
    /** After each fetched batch: the position reached and the end being read to. */
    onProgress?: (position: number, end: number) => void;
  },
): Promise<number> {
  const client = await groupless(config, 'restore');
  try {
    const end = options.until ?? (await highWatermark(client, topic, partition));
    const from = options.from ?? 0;
    if (end <= from) return 0;
    client.assign([{ topic, partition, offset: from }]);
    client.setDefaultConsumeTimeout(200);
    let read = 0;
    let position = from;
    // Transaction markers take offsets too, so the last record may sit below `end`: stop when caught up.
    let idlePolls = 0;
    while (position < end && idlePolls < 10) {
      const batch = await new Promise<Kafka.Message[]>((resolve, reject) =>
        client.consume(1000, (error, messages) =>
          error ? reject(kafkaError('restore', error)) : resolve(messages),
        ),
      );
      idlePolls = batch.length === 0 ? idlePolls + 1 : 0;
      for (const m of batch) {
        position = m.offset + 1;
        if (m.offset >= end) continue;
        read++;
        await options.onRecord(consumedRecord(m));
      }
      const [current] = client.position([{ topic, partition }]);
      if (current?.offset !== undefined && current.offset >= 0) position = Math.max(position, current.offset);
      options.onProgress?.(Math.min(position, end), end);
    }
    return read;
  } finally {
    await new Promise<void>((resolve) => client.disconnect(() => resolve()));
  }
}

/** A topic read whole and then tailed: see followTopic. */
export interface TopicFollower {
  /** Resolves once every partition has been read to the end it had when following began. */
  caughtUp: Promise<void>;
  /** Resolves when following stops (the signal aborted); rejects if reading fails. */
  done: Promise<void>;
}

/**
 * Reads every partition of a topic from the beginning, outside any consumer group, and keeps reading new
 * records until `signal` aborts: what a global table (Kafka Streams' GlobalKTable) is built on, e.g. the
 * song catalog and the model-control topic, which every instance holds whole.
 */
export function followTopic(
  config: Config,
  topic: string,
  options: { onRecord: (record: ConsumedRecord) => void | Promise<void>; signal: AbortSignal },
): TopicFollower {
  let reportCaughtUp: () => void = () => undefined;
  const caughtUp = new Promise<void>((resolve) => (reportCaughtUp = resolve));
  const done = (async () => {
    const admin = new Admin(config);
    const partitions = await admin
      .describeCluster()
      .then((cluster) => cluster.topics.find((t) => t.name === topic)?.partitions)
      .finally(() => admin.close());
    if (partitions === undefined)
      throw new EncoreError(ErrorCodes.KAFKA_FAILED, `topic ${topic} does not exist`);
    const client = await groupless(config, 'follow');
    const ends = await Promise.all(
      Array.from({ length: partitions }, (_, partition) => highWatermark(client, topic, partition)),
    );
    const behind = new Set(ends.flatMap((end, partition) => (end > 0 ? [partition] : [])));
    if (behind.size === 0) reportCaughtUp();
    try {
      client.assign(Array.from({ length: partitions }, (_, partition) => ({ topic, partition, offset: 0 })));
      client.setDefaultConsumeTimeout(100);
      while (!options.signal.aborted) {
        const batch = await new Promise<Kafka.Message[]>((resolve, reject) =>
          client.consume(1000, (error, messages) =>
            error ? reject(kafkaError(`follow ${topic}`, error)) : resolve(messages),
          ),
        );
        for (const message of batch) await options.onRecord(consumedRecord(message));
        if (behind.size > 0) {
          // Transaction markers take offsets too: caught up once the position reaches the end.
          for (const partition of behind) {
            const [position] = client.position([{ topic, partition }]);
            if ((position?.offset ?? -1) >= ends[partition]!) behind.delete(partition);
          }
          if (behind.size === 0) reportCaughtUp();
        }
      }
    } finally {
      await new Promise<void>((resolve) => client.disconnect(() => resolve()));
    }
  })();
  done.catch(() => undefined); // the caller awaits it; this only keeps an early failure from being unhandled
  return { caughtUp: Promise.race([caughtUp, done]), done };
}

export interface ClusterInfo {
  brokers: { id: number; host: string; port: number }[];
  topics: { name: string; partitions: number }[];
}

/** Topic administration and cluster metadata. */
export class Admin {
  private readonly admin: Kafka.IAdminClient;
  private readonly metadataClient: Kafka.Producer;
  private readonly config: Config;
  private connected = false;

  constructor(config: Config) {
    this.config = config;
    this.admin = Kafka.AdminClient.create(baseConfig(config, 'admin'));
    this.metadataClient = new Kafka.Producer(baseConfig(config, 'metadata'));
  }

  /**
   * Connects the metadata client, once. The admin requests need it too: their own client reports no refused
   * login and would only time out, where this one fails at once.
   */
  private async connect(timeoutMs: number): Promise<void> {
    if (this.connected) return;
    const action = `connect to ${endpoints(this.config).kafkaBootstrap}`;
    await connectClient(this.metadataClient, this.config, action, timeoutMs);
    this.connected = true;
  }

  /** Creates the topics that do not exist yet; existing ones are left as they are. */
  async ensureTopics(specs: readonly TopicSpec[], timeoutMs = 30_000): Promise<void> {
    await this.connect(timeoutMs);
    for (const spec of specs) {
      await new Promise<void>((resolve, reject) =>
        this.admin.createTopic(
          {
            topic: spec.name,
            num_partitions: spec.partitions,
            replication_factor: spec.replicationFactor,
            config: spec.config ?? {},
          },
          timeoutMs,
          (error) => {
            // 36 = TOPIC_ALREADY_EXISTS
            if (error && error.code !== 36) reject(kafkaError(`create topic ${spec.name}`, error));
            else resolve();
          },
        ),
      );
    }
  }

  async deleteTopics(names: readonly string[], timeoutMs = 30_000): Promise<void> {
    await this.connect(timeoutMs);
    for (const name of names) {
      await new Promise<void>((resolve, reject) =>
        this.admin.deleteTopic(name, timeoutMs, (error) => {
          // 3 = UNKNOWN_TOPIC_OR_PART: already gone
          if (error && error.code !== 3) reject(kafkaError(`delete topic ${name}`, error));
          else resolve();
        }),
      );
    }
  }

  /** Brokers and topics as the cluster reports them; fails within `timeoutMs` when no broker answers. */
  async describeCluster(timeoutMs = 10_000): Promise<ClusterInfo> {
    await this.connect(timeoutMs);
    const metadata = await new Promise<Kafka.Metadata>((resolve, reject) =>
      this.metadataClient.getMetadata({ timeout: timeoutMs }, (error, data) =>
        error ? reject(kafkaError('metadata', error)) : resolve(data),
      ),
    );
    return {
      brokers: metadata.brokers.map((b) => ({ id: b.id, host: b.host, port: b.port })),
      topics: metadata.topics.map((t) => ({ name: t.name, partitions: t.partitions.length })),
    };
  }

  async close(): Promise<void> {
    this.admin.disconnect();
    if (this.connected) await new Promise<void>((resolve) => this.metadataClient.disconnect(() => resolve()));
  }
}
