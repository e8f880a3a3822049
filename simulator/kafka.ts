/**
 * A simulation into Kafka: the catalog to the songs topic, profiles to the user-profiles topic (both
 * compacted, produced first so the job can join on them), then the events to listening-events at a chosen
 * rate. Avro in the Confluent wire format through the schema registry; keys are the song or user id.
 * `produceTables` and `producePaced` are the two halves, for callers that mix their own records into the
 * events (the serving benchmark, the reliability suite).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Admin, type OutgoingRecord, Producer } from '../clients/kafka.ts';
import type { Config } from '../core/config.ts';
import { logger } from '../core/log.ts';
import { SchemaRegistry } from '../schemas/registry.ts';
import { AvroSerde } from '../schemas/serde.ts';
import { type TopicDefinition, topics, valueSubject } from '../schemas/topics.ts';
import type { ListeningEvent } from '../schemas/types.generated.ts';
import { DAY, type Simulation, type SimulationOptions, simulate } from './model.ts';

const log = logger('simulator');

export interface ProduceOptions {
  /** Events per second; unset = as fast as the broker takes them. */
  rate?: number;
  /** Stop after this many events (the simulation itself may be longer). */
  limit?: number;
  signal?: AbortSignal;
  /** Called as batches are acknowledged, in order, with how many records are acknowledged so far. */
  onProgress?: (produced: number) => void;
}

export interface Produced {
  songs: number;
  profiles: number;
  events: number;
}

/** Unpaced, records go out in batches of this many, each acknowledged before the next. */
const BATCH = 5_000;

/**
 * A simulation of the `days` days up to today (UTC midnight): its events lie in the past, so validation
 * believes them, and within the broker's retention (7 days), so their records are not deleted mid-run.
 */
export function recentSimulation(
  options: Omit<SimulationOptions, 'start' | 'days'> & { days?: number },
  now = Date.now(),
): Simulation {
  const days = options.days ?? 3;
  return simulate({ ...options, start: Math.floor(now / DAY) * DAY - days * DAY, days });
}

/** The time of the first of `events` (a simulation's events start afresh on every iteration). */
export function firstEventTime(events: Iterable<ListeningEvent>): number {
  for (const event of events) return event.timestamp;
  return Number.POSITIVE_INFINITY;
}

/**
 * The catalog and the profiles, acknowledged. They are stamped no later than the first event
 * (`firstEventTime`): a profile created mid-simulation stamped with its creation time would move the task's
 * stream time ahead, and every earlier event would be late.
 */
export async function produceTables(
  config: Config,
  producer: Producer,
  registry: SchemaRegistry,
  simulation: Pick<Simulation, 'songs' | 'profiles'>,
  firstEventTime: number,
): Promise<Pick<Produced, 'songs' | 'profiles'>> {
  const t = topics(config);
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
  return { songs: songs.length, profiles: profiles.length };
}

export interface PaceOptions extends ProduceOptions {
  /** Paced, the records due are handed over every tick; default 20 ms. */
  tickMs?: number;
  /**
   * Asked before each record: a promise stops the traffic there until it resolves. What came before goes
   * out first, and the pace resumes where it stopped, without a burst to make up for the pause.
   */
  pauseBefore?: () => Promise<void> | undefined;
}

/**
 * Produces `records` in order. Paced (`rate`), the records due are handed to the producer every tick
 * without waiting for the previous ones' acknowledgement, so a slow broker (or one that is down) delays
 * records but not the pace; unpaced, batch after acknowledged batch. Resolves with how many were produced
 * once all of them are acknowledged; rejects with the first failed delivery.
 */
export async function producePaced(
  producer: Pick<Producer, 'send'>,
  records: Iterable<OutgoingRecord> | AsyncIterable<OutgoingRecord>,
  options: PaceOptions = {},
): Promise<number> {
  const { rate, signal, onProgress } = options;
  const limit = options.limit ?? Number.POSITIVE_INFINITY;
  const tickMs = options.tickMs ?? 20;
  const iterator =
    Symbol.asyncIterator in records ? records[Symbol.asyncIterator]() : records[Symbol.iterator]();
  let began = Date.now();
  let queued = 0;
  let exhausted = false;
  let failure: Error | undefined;
  // Acknowledgements are reported in order: a later batch may finish before an earlier one.
  let acknowledged: Promise<void> = Promise.resolve();
  const send = (batch: OutgoingRecord[]) => {
    if (batch.length === 0) return;
    const sent = producer.send(batch);
    queued += batch.length;
    const total = queued;
    acknowledged = Promise.all([acknowledged, sent]).then(
      () => onProgress?.(total),
      (error: Error) => {
        failure ??= error;
      },
    );
  };
  while (!exhausted && queued < limit && !signal?.aborted) {
    if (failure) throw failure;
    const due = rate ? Math.min(limit, Math.floor(((Date.now() - began) / 1000) * rate)) : queued + BATCH;
    let batch: OutgoingRecord[] = [];
    while (queued + batch.length < Math.min(due, limit)) {
      const pause = options.pauseBefore?.();
      if (pause) {
        send(batch);
        batch = [];
        const paused = Date.now();
        await pause;
        began += Date.now() - paused;
      }
      const next = await iterator.next();
      if (next.done) {
        exhausted = true;
        break;
      }
      batch.push(next.value);
    }
    send(batch);
    if (rate) await sleep(tickMs);
    else await acknowledged;
  }
  await acknowledged;
  if (failure) throw failure;
  return queued;
}

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
  // One iteration for both: the first event stamps the tables, and a wrapped simulation (the demo's) sees
  // each event read once.
  const events = simulation.events[Symbol.iterator]();
  const first = events.next();
  try {
    const tables = await produceTables(
      config,
      producer,
      registry,
      simulation,
      first.done ? Number.POSITIVE_INFINITY : first.value.timestamp,
    );
    const serde = new AvroSerde(registry, valueSubject(t.listeningEvents.name), t.listeningEvents.contract);
    // Events keep the produce time as their record timestamp (retention counts from it); the job reads
    // event time from the value.
    async function* records() {
      for (let next = first; !next.done; next = events.next())
        yield {
          topic: t.listeningEvents.name,
          key: next.value.userId,
          value: await serde.serialize(next.value),
        };
    }
    const began = Date.now();
    const produced = await producePaced(producer, records(), { tickMs: 100, ...options });
    log.info({ events: produced, seconds: (Date.now() - began) / 1000 }, 'events produced');
    return { ...tables, events: produced };
  } finally {
    await producer.disconnect();
    registry.close();
  }
}
