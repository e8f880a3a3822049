/**
 * The benchmark job on Encore's own runtime (topology/streams): the same DSL the recommendation topology
 * uses. Prints one JSON line per rebalance (tasks, restore time) and, on SIGUSR2, the state it holds.
 */
import { Contracts } from '../../../schemas/contracts.ts';
import { SchemaRegistry } from '../../../schemas/registry.ts';
import { AvroSerde } from '../../../schemas/serde.ts';
import { valueSubject } from '../../../schemas/topics.ts';
import type { ListeningEvent, UserProfile } from '../../../schemas/types.generated.ts';
import { DeadLetters } from '../../../topology/dead-letter.ts';
import { SessionWindows, StreamsBuilder } from '../../../topology/streams/builder.ts';
import { KafkaStreams } from '../../../topology/streams/kafka-streams.ts';
import { restoreSeconds } from '../../../topology/streams/metrics.ts';
import { benchConfig, benchEnv, jsonSerde } from './env.ts';

const env = benchEnv();
const config = benchConfig(env);
const registry = new SchemaRegistry(config);
const MINUTE = 60_000;

interface SessionState {
  count: number;
  country: string | null;
}

const builder = new StreamsBuilder(config.appId);
const events = builder.stream<ListeningEvent>(env.eventsTopic, {
  serde: new AvroSerde(registry, valueSubject(env.eventsTopic), Contracts.listeningEvent),
  timestampExtractor: (event) => event.timestamp,
});
const countries = env.profilesTopic
  ? events.join(
      builder.table<UserProfile>(env.profilesTopic, {
        store: 'profiles',
        serde: new AvroSerde(registry, valueSubject(env.profilesTopic), Contracts.userProfile),
      }),
      (_event, profile) => profile.country,
    )
  : events.mapValues((event) => event.context.country);
countries
  .groupByKey()
  .windowedBy(SessionWindows.ofInactivityGap(30 * MINUTE))
  .aggregate<SessionState>(
    () => ({ count: 0, country: null }),
    (_user, country, session) => ({ count: session.count + 1, country }),
    (_user, a, b) => ({ count: a.count + b.count, country: b.country }),
    { store: 'sessions' },
  )
  .toStream()
  .filter((update) => update.value !== null) // a merged-away session's tombstone
  .mapValues((update, user) => ({ user, start: update.start, end: update.end, ...update.value! }))
  .to(env.outputTopic, { serde: jsonSerde() });

const streams = new KafkaStreams(builder.build(), config, {
  deadLetters: new DeadLetters(registry, `${env.applicationId}-dead-letter`, 'bench'),
});
process.on('SIGUSR2', () => {
  global.gc?.();
  const entries = Object.fromEntries(streams.storeEntries());
  process.stdout.write(
    `${JSON.stringify({ state: { heapUsed: process.memoryUsage().heapUsed, entries } })}\n`,
  );
});
const stop = new AbortController();
process.once('SIGTERM', () => stop.abort());
await streams.run(stop.signal, {
  onTasks: async (taskIds) => {
    const restore = (await restoreSeconds.get()).values.find((v) => v.metricName?.endsWith('_sum'));
    process.stdout.write(
      `${JSON.stringify({ tasks: taskIds.length, restoreSeconds: restore?.value ?? 0 })}\n`,
    );
  },
});
registry.close();
