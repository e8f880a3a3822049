/**
 * The end-to-end latency of a load run: from each listening event's produce time (its Kafka
 * record timestamp, stamped by the collector's producer) to the moment the recommendation it triggered is
 * readable under read_committed. Two consumers: the events (for their produce times, by event id) and the
 * recommendations (by trigger event id); whichever arrives second makes the sample.
 */
import { randomUUID } from 'node:crypto';
import { Consumer } from '../clients/kafka.ts';
import type { Config } from '../core/config.ts';
import { SchemaRegistry } from '../schemas/registry.ts';
import { topicSerde, topics } from '../schemas/topics.ts';

export interface LatencyWatcher {
  recommendations(): number;
  /** Recommendations by path (MODEL, CACHE, ...). */
  paths(): Record<string, number>;
  /** Every sample so far, in arrival order. */
  samples(): readonly (readonly [producedAt: number, latencyMs: number])[];
  close(): Promise<void>;
}

export async function watchLatency(config: Config): Promise<LatencyWatcher> {
  const t = topics(config);
  const registry = new SchemaRegistry(config);
  const eventSerde = topicSerde(registry, t.listeningEvents);
  const recommendationSerde = topicSerde(registry, t.recommendations);
  const group = `${config.appId}-latency-watcher-${randomUUID().slice(0, 8)}`;
  const consumer = (name: string, topic: string, isolation: 'read_committed' | 'read_uncommitted') =>
    new Consumer(config, `latency-watcher-${name}`, {
      groupId: `${group}-${name}`,
      topics: [topic],
      isolation,
      fromBeginning: true,
      fetchWaitMaxMs: config.streams.fetchWaitMaxMs,
    });
  const eventReader = consumer('events', t.listeningEvents.name, 'read_uncommitted');
  const recommendationReader = consumer('recommendations', t.recommendations.name, 'read_committed');
  await Promise.all([eventReader.connect(), recommendationReader.connect()]);

  const producedAt = new Map<string, number>();
  /** Recommendations read before their trigger event: trigger event id → when readable. */
  const waiting = new Map<string, number>();
  const samples: [number, number][] = [];
  const paths: Record<string, number> = {};
  let recommendations = 0;
  const stop = new AbortController();

  const readEvents = async () => {
    while (!stop.signal.aborted) {
      for (const record of await eventReader.poll(5000, 200)) {
        const event = await eventSerde.deserialize(record.value);
        const readable = waiting.get(event.eventId);
        if (readable === undefined) producedAt.set(event.eventId, record.timestamp);
        else {
          waiting.delete(event.eventId);
          samples.push([record.timestamp, readable - record.timestamp]);
        }
      }
    }
  };
  const readRecommendations = async () => {
    while (!stop.signal.aborted) {
      for (const record of await recommendationReader.poll(500, 200)) {
        const readable = Date.now();
        const recommendation = await recommendationSerde.deserialize(record.value);
        recommendations++;
        paths[recommendation.path] = (paths[recommendation.path] ?? 0) + 1;
        const trigger = recommendation.triggerEventId;
        if (trigger === null) continue; // an explicit request, not a trigger
        const sent = producedAt.get(trigger);
        if (sent === undefined) waiting.set(trigger, readable);
        else {
          producedAt.delete(trigger);
          samples.push([sent, readable - sent]);
        }
      }
    }
  };
  const reading = Promise.all([readEvents(), readRecommendations()]);

  return {
    recommendations: () => recommendations,
    paths: () => ({ ...paths }),
    samples: () => samples,
    async close() {
      stop.abort();
      await reading;
      await Promise.all([eventReader.disconnect(), recommendationReader.disconnect()]);
      registry.close();
    },
  };
}
