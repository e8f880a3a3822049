/**
 * Encore's topics: names (prefixed by the application id, like Kafka Streams), partitioning and cleanup,
 * and the contract of their values. Keys are UTF-8 strings (a user id or a song id), not Avro.
 * Every user-keyed topic has `kafka.partitions` partitions, so one task owns all of a user's data.
 */
import type { TopicSpec } from '../clients/kafka.ts';
import type { Config } from '../core/config.ts';
import { type Contract, Contracts } from './contracts.ts';
import type { SchemaRegistry } from './registry.ts';
import { AvroSerde } from './serde.ts';

export interface TopicDefinition<T> extends TopicSpec {
  contract: Contract<T>;
}

export function topics(config: Config) {
  const { appId, kafka } = config;
  const userKeyed = <T>(name: string, contract: Contract<T>): TopicDefinition<T> => ({
    name: `${appId}-${name}`,
    partitions: kafka.partitions,
    replicationFactor: kafka.replicationFactor,
    contract,
  });
  const table = <T>(name: string, contract: Contract<T>): TopicDefinition<T> => ({
    ...userKeyed(name, contract),
    config: { 'cleanup.policy': 'compact' },
  });
  return {
    listeningEvents: userKeyed('listening-events', Contracts.listeningEvent),
    userProfiles: table('user-profiles', Contracts.userProfile),
    // Keyed by song; replicated to every instance (a global table), so its partition count is free.
    songs: table('songs', Contracts.song),
    recommendations: userKeyed('recommendations', Contracts.recommendation),
    recommendationFeedback: userKeyed('recommendation-feedback', Contracts.recommendationFeedback),
    deadLetter: userKeyed('dead-letter', Contracts.deadLetter),
    sessionFeatures: userKeyed('session-features', Contracts.sessionFeatures),
    disengagementLabels: userKeyed('disengagement-labels', Contracts.disengagementLabel),
    sessions: userKeyed('sessions', Contracts.listeningSession),
    modelScores: userKeyed('model-scores', Contracts.modelScore),
    recommendationRequests: userKeyed('recommendation-requests', Contracts.recommendationRequest),
    // Keyed by <model>/<role> and read whole by every instance; one partition keeps announcements in order.
    modelControl: { ...table('model-control', Contracts.modelAnnouncement), partitions: 1 },
  };
}

export type Topics = ReturnType<typeof topics>;

/** The Confluent TopicNameStrategy subject of a topic's values. */
export function valueSubject(topic: string): string {
  return `${topic}-value`;
}

/** The Avro serde of a topic's values (its contract, its subject); `validate` checks values beyond Avro. */
export function topicSerde<T>(
  registry: SchemaRegistry,
  topic: Pick<TopicDefinition<T>, 'name' | 'contract'>,
  validate?: (value: T) => T,
): AvroSerde<T> {
  return new AvroSerde(registry, valueSubject(topic.name), topic.contract, { validate });
}
