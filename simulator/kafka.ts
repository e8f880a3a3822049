/**
 * A simulation into Kafka: the catalog to the songs topic, profiles to the user-profiles topic (both
 * compacted, produced first so the job can join on them), then the events to listening-events at a chosen
 * rate. Avro in the Confluent wire format through the schema registry; keys are the song or user id.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Admin, type OutgoingRecord, Producer } from '../clients/kafka.ts';
import type { Config } from '../core/config.ts';
import { logger } from '../core/log.ts';
import { SchemaRegistry } from '../schemas/registry.ts';
import { AvroSerde } from '../schemas/serde.ts';
import { type TopicDefinition, topics, valueSubject } from '../schemas/topics.ts';
import type { Simulation } from './model.ts';

const log = logger('simulator');

export interface ProduceOptions {
  /** Events per second; unset = as fast as the broker takes them. */
  rate?: number;
  /** Stop after this many events (the simulation itself may be longer). */
  limit?: number;
  signal?: AbortSignal;
  /** Called after each batch with the events produced so far. */
  onProgress?: (produced: number) => void;
}

export interface Produced {
  songs: number;
  profiles: number;
  events: number;
}

/** Pacing granularity: due events are produced every tick. */
const TICK_MS = 100;
/** Unpaced, events go out in batches of this many. */
const BATCH = 5_000;

export async function produceSimulation(
  config: Config,
  simulation: Simulation,
  options: ProduceOptions = {},
): Promise<Produced> {
  const t = topics(config);
  const admin = new Admin(config);
  try {
    await admin.ensureTopics([t.songs, t.userProfiles, t.listeningEvents]);
  } finally {
    await admin.close();
  }
  const registry = new SchemaRegistry(config);
  const producer = new Producer(config, 'simulator');
  await producer.connect();
  const events = simulation.events[Symbol.iterator]();
  let next = events.next();
  // Table records are stamped no later than the first event: a profile created mid-simulation stamped
  // with its creation time would move the task's stream time ahead, and every earlier event would be late.
  const firstEventTime = next.done ? Number.POSITIVE_INFINITY : next.value.timestamp;
  const records = async <T>(
    topic: TopicDefinition<T>,
    values: Iterable<T>,
    key: (value: T) => string,
    time: (value: T) => number,
  ) => {
    const serde = new AvroSerde(registry, valueSubject(topic.name), topic.contract);
    const batch: OutgoingRecord[] = [];
    for (const value of values) {
      const timestamp = Math.min(time(value), firstEventTime);
      batch.push({ topic: topic.name, key: key(value), value: await serde.serialize(value), timestamp });
    }
    return batch;
  };
  try {
    const songs = await records(
      t.songs,
      simulation.songs,
      (s) => s.songId,
      (s) => s.addedAt,
    );
    await producer.send(songs);
    const profiles = await records(
      t.userProfiles,
      simulation.profiles,
      (p) => p.userId,
      (p) => p.createdAt,
    );
    await producer.send(profiles);
    log.info({ songs: songs.length, profiles: profiles.length }, 'catalog and profiles produced');

    const serde = new AvroSerde(registry, valueSubject(t.listeningEvents.name), t.listeningEvents.contract);
    const limit = options.limit ?? Number.POSITIVE_INFINITY;
    const began = Date.now();
    let produced = 0;
    while (!next.done && produced < limit && !options.signal?.aborted) {
      const due = options.rate ? Math.floor(((Date.now() - began) / 1000) * options.rate) : produced + BATCH;
      const batch: OutgoingRecord[] = [];
      // Events keep the produce time as their record timestamp (retention counts from it); the job reads
      // event time from the value.
      for (; !next.done && produced + batch.length < Math.min(due, limit); next = events.next()) {
        const event = next.value;
        batch.push({ topic: t.listeningEvents.name, key: event.userId, value: await serde.serialize(event) });
      }
      await producer.send(batch);
      produced += batch.length;
      options.onProgress?.(produced);
      if (options.rate) await sleep(TICK_MS);
    }
    log.info({ events: produced, seconds: (Date.now() - began) / 1000 }, 'events produced');
    return { songs: songs.length, profiles: profiles.length, events: produced };
  } finally {
    await producer.disconnect();
    registry.close();
  }
}
