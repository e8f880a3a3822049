/**
 * The one module that talks to Kafka (through node-rdkafka, librdkafka's Node binding). Everything else sees
 * these small promise-based types, so the client library can be swapped in one place.
 */
import Kafka from 'node-rdkafka';
import { type Config, endpoints } from '../core/config.ts';
import { EncoreError, ErrorCodes } from '../core/errors.ts';

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

function baseConfig(config: Config, clientId: string) {
  return {
    'metadata.broker.list': endpoints(config).kafkaBootstrap,
    'client.id': `${config.appId}-${clientId}`,
    'socket.keepalive.enable': true,
  };
}

function toHeaders(headers: Kafka.MessageHeader[] | undefined): Headers {
  const out: Headers = {};
  for (const header of headers ?? []) {
    for (const [name, value] of Object.entries(header)) out[name] = value.toString();
  }
  return out;
}

/** A producer whose `send` resolves once the broker acknowledged every record (idempotent, hence acks=all). */
export class Producer {
  private readonly client: Kafka.Producer;
  private readonly pending = new Map<number, { resolve: () => void; reject: (error: Error) => void }>();
  private nextId = 0;

  constructor(config: Config, clientId: string, extra: Kafka.ProducerGlobalConfig = {}) {
    this.client = new Kafka.Producer({
      ...baseConfig(config, clientId),
      dr_cb: true,
      'enable.idempotence': true,
      'linger.ms': 5,
      ...extra,
    });
    this.client.on('delivery-report', (error, report) => {
      const waiter = this.pending.get(report.opaque as number);
      if (!waiter) return;
      this.pending.delete(report.opaque as number);
      if (error) waiter.reject(kafkaError('delivery', error));
      else waiter.resolve();
    });
  }

  connect(timeoutMs = 30_000): Promise<void> {
    return new Promise((resolve, reject) => {
      this.client.connect({ timeout: timeoutMs }, (error) => {
        if (error) return reject(kafkaError('producer connect', error));
        this.client.setPollInterval(5);
        resolve();
      });
    });
  }

  /** Produces the records and resolves when all are acknowledged; rejects on the first failed delivery. */
  send(records: readonly OutgoingRecord[]): Promise<void> {
    const deliveries = records.map(
      (record) =>
        new Promise<void>((resolve, reject) => {
          const id = this.nextId++;
          this.pending.set(id, { resolve, reject });
          try {
            this.client.produce(
              record.topic,
              record.partition ?? null,
              record.value,
              record.key ?? undefined,
              record.timestamp ?? Date.now(),
              id,
              record.headers ? Object.entries(record.headers).map(([k, v]) => ({ [k]: v })) : undefined,
            );
          } catch (error) {
            this.pending.delete(id);
            reject(kafkaError(`produce to ${record.topic}`, error));
          }
        }),
    );
    return Promise.all(deliveries).then(() => undefined);
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
  topics: string[];
  /** read_committed hides records of aborted and still-open transactions. */
  isolation?: 'read_committed' | 'read_uncommitted';
  fromBeginning?: boolean;
}

/** A group consumer with manual offset commits: nothing is committed until the caller says so. */
export class Consumer {
  private readonly client: Kafka.KafkaConsumer;
  private readonly topics: string[];

  constructor(config: Config, clientId: string, options: ConsumerOptions) {
    this.topics = options.topics;
    this.client = new Kafka.KafkaConsumer(
      {
        ...baseConfig(config, clientId),
        'group.id': options.groupId,
        'enable.auto.commit': false,
        'isolation.level': options.isolation ?? 'read_committed',
        'partition.assignment.strategy': 'cooperative-sticky',
      },
      { 'auto.offset.reset': options.fromBeginning === false ? 'latest' : 'earliest' },
    );
  }

  connect(timeoutMs = 30_000): Promise<void> {
    return new Promise((resolve, reject) => {
      this.client.connect({ timeout: timeoutMs }, (error) => {
        if (error) return reject(kafkaError('consumer connect', error));
        this.client.subscribe(this.topics);
        resolve();
      });
    });
  }

  /** Up to `max` records, waiting at most `timeoutMs` for the first one. */
  poll(max: number, timeoutMs: number): Promise<ConsumedRecord[]> {
    this.client.setDefaultConsumeTimeout(timeoutMs);
    return new Promise((resolve, reject) => {
      this.client.consume(max, (error, messages) => {
        if (error) return reject(kafkaError('consume', error));
        resolve(
          messages.map((m) => ({
            topic: m.topic,
            partition: m.partition,
            offset: m.offset,
            key: typeof m.key === 'string' ? Buffer.from(m.key) : (m.key ?? null),
            value: m.value ?? null,
            timestamp: m.timestamp ?? 0,
            headers: toHeaders(m.headers),
          })),
        );
      });
    });
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

  /** Creates the topics that do not exist yet; existing ones are left as they are. */
  async ensureTopics(specs: readonly TopicSpec[], timeoutMs = 30_000): Promise<void> {
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
    if (!this.connected) {
      await new Promise<void>((resolve, reject) =>
        this.metadataClient.connect({ timeout: timeoutMs }, (error) =>
          error
            ? reject(kafkaError(`connect to ${endpoints(this.config).kafkaBootstrap}`, error))
            : resolve(),
        ),
      );
      this.connected = true;
    }
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
