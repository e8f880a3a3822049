/**
 * The Encore job: the listening topology on the streams runtime, the ClickHouse connector beside it, and
 * the operator-metrics reporter, in one process. Each has its own consumer group, so they scale and fail
 * over independently; stopping (SIGTERM) commits what each finished. If one of them fails, the others are
 * stopped and the error is thrown.
 */
import { Admin } from '../clients/kafka.ts';
import type { Config } from '../core/config.ts';
import { logger } from '../core/log.ts';
import { SchemaRegistry } from '../schemas/registry.ts';
import { topicSerde, topics } from '../schemas/topics.ts';
import { ClickHouseConnector, type FlushReport } from '../sinks/connector.ts';
import { reportOperatorMetrics } from '../sinks/operator-metrics.ts';
import { DeadLetters } from './dead-letter.ts';
import { listeningTopology } from './listening.ts';
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
  try {
    const streams = new KafkaStreams(
      listeningTopology(config, (topic, validate) => topicSerde(registry, topic, validate)),
      config,
      {
        deadLetters: new DeadLetters(registry, topics(config).deadLetter.name, STAGE),
      },
    );
    const results = await Promise.allSettled([
      streams.run(stop, listener).catch(failed('topology')),
      new ClickHouseConnector(config, registry).run(stop, listener).catch(failed('ClickHouse connector')),
      reportOperatorMetrics(config, stop),
    ]);
    const failure = results.find((r) => r.status === 'rejected');
    if (failure) throw failure.reason;
  } finally {
    registry.close();
  }
}
