/**
 * The Encore job: the topology (listening and recommendations) on the streams runtime, with its serving
 * dependencies (the model registry, the song catalog and the model-control topic, each followed whole by
 * every instance), the ClickHouse connector beside it, and the operator-metrics reporter, in one process.
 * Each has its own consumer group, so they scale and fail over independently; stopping (SIGTERM) commits
 * what each finished. If one of them fails, the others are stopped and the error is thrown.
 */
import { ClickHouse } from '../clients/clickhouse.ts';
import { Admin, followTopic } from '../clients/kafka.ts';
import type { Config } from '../core/config.ts';
import { logger } from '../core/log.ts';
import { SchemaRegistry } from '../schemas/registry.ts';
import { topicSerde, topics } from '../schemas/topics.ts';
import { ClickHouseConnector, type FlushReport } from '../sinks/connector.ts';
import { reportOperatorMetrics } from '../sinks/operator-metrics.ts';
import { SongCatalog } from '../udfs/catalog.ts';
import { ModelRegistry } from '../udfs/models.ts';
import { DeadLetters } from './dead-letter.ts';
import type { Serving } from './recommend/serving.ts';
import { encoreTopology } from './recommendations.ts';
import { type CommitReport, KafkaStreams } from './streams/kafka-streams.ts';

const log = logger('job');
const STAGE = 'listening';

export interface JobListener {
  /** After each commit of the topology. */
  onCommit?(report: CommitReport): void;
  /** After each flush of the ClickHouse connector. */
  onFlush?(report: FlushReport): void;
}

/** Creates Encore's topics (idempotent); the ClickHouse connector applies its migrations itself. */
export async function provision(config: Config): Promise<void> {
  const admin = new Admin(config);
  try {
    await admin.ensureTopics(Object.values(topics(config)));
  } finally {
    await admin.close();
  }
}

/**
 * Deletes what a run of the application left behind: every topic named `<appId>-…` (its internal topics
 * included) and its ClickHouse database. For benchmark and test runs on their own app id: left in place,
 * thousands of their partitions slow the broker for every later run.
 */
export async function deprovision(config: Config): Promise<void> {
  const db = new ClickHouse(config, { database: null });
  try {
    await db.command(`DROP DATABASE IF EXISTS ${config.clickhouse.database}`);
  } finally {
    await db.close();
  }
  const admin = new Admin(config);
  try {
    const cluster = await admin.describeCluster();
    await admin.deleteTopics(
      cluster.topics.map((topic) => topic.name).filter((name) => name.startsWith(`${config.appId}-`)),
    );
  } finally {
    await admin.close();
  }
}

/** Runs until `signal` aborts. */
export async function runJob(config: Config, signal: AbortSignal, listener: JobListener = {}): Promise<void> {
  await provision(config);
  const registry = new SchemaRegistry(config);
  const stopAll = new AbortController();
  const stop = AbortSignal.any([signal, stopAll.signal]);
  const failed = (part: string) => (error: unknown) => {
    if (!stop.aborted) log.error({ part, err: (error as Error).message }, 'stopping the job');
    stopAll.abort();
    throw error;
  };
  const models = new ModelRegistry(config);
  try {
    const serving = await startServing(config, registry, models, stop);
    const streams = new KafkaStreams(
      encoreTopology(config, (topic, validate) => topicSerde(registry, topic, validate), serving.serving),
      config,
      {
        deadLetters: new DeadLetters(registry, topics(config).deadLetter.name, STAGE),
      },
    );
    const results = await Promise.allSettled([
      ...Object.entries(serving.followers).map(([part, follower]) => follower.catch(failed(part))),
      streams.run(stop, listener).catch(failed('topology')),
      new ClickHouseConnector(config, registry).run(stop, listener).catch(failed('ClickHouse connector')),
      reportOperatorMetrics(config, stop),
    ]);
    const failure = results.find((r) => r.status === 'rejected');
    if (failure) throw failure.reason;
  } finally {
    models.close();
    registry.close();
  }
}

/**
 * Loads the models and the whole song catalog before the topology starts (its first lists need both), then
 * keeps following the songs and model-control topics: catalog changes and announced model versions apply
 * while the job runs.
 */
async function startServing(
  config: Config,
  registry: SchemaRegistry,
  models: ModelRegistry,
  signal: AbortSignal,
): Promise<{ serving: Serving; followers: Record<string, Promise<void>> }> {
  const t = topics(config);
  const catalog = new SongCatalog();
  const songSerde = topicSerde(registry, t.songs);
  const announcementSerde = topicSerde(registry, t.modelControl);
  await models.start();
  const songs = followTopic(config, t.songs.name, {
    signal,
    onRecord: async (record) => {
      const songId = record.key?.toString() ?? '';
      if (record.value === null) return catalog.delete(songId);
      try {
        catalog.put(await songSerde.deserialize(record.value));
      } catch (error) {
        log.warn({ songId, offset: record.offset, err: (error as Error).message }, 'unreadable song skipped');
      }
    },
  });
  const control = followTopic(config, t.modelControl.name, {
    signal,
    onRecord: async (record) => {
      if (record.value === null) return;
      try {
        await models.announce(await announcementSerde.deserialize(record.value));
      } catch (error) {
        log.error({ offset: record.offset, err: (error as Error).message }, 'model announcement not applied');
      }
    },
  });
  await Promise.all([songs.caughtUp, control.caughtUp]);
  log.info({ songs: catalog.size }, 'song catalog loaded');
  return {
    serving: { catalog, models: () => models.current() },
    followers: { 'song catalog': songs.done, 'model control': control.done },
  };
}
