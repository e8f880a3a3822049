/**
 * The first vertical slice against the real stack: Avro events through Kafka and the schema registry into
 * ClickHouse, malformed records into the dead-letter topic.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ClickHouse } from '../../clients/clickhouse.ts';
import { Admin, type OutgoingRecord } from '../../clients/kafka.ts';
import { registry as metrics } from '../../core/metrics.ts';
import { SchemaRegistry } from '../../schemas/registry.ts';
import { AvroSerde } from '../../schemas/serde.ts';
import { topics, valueSubject } from '../../schemas/topics.ts';
import type { ListeningEvent } from '../../schemas/types.generated.ts';
import { type BatchReport, provision, runEventsToClickHouse } from '../../topology/events-to-clickhouse.ts';
import { isolatedConfig } from '../helpers/env.ts';
import { listeningEvent } from '../helpers/events.ts';
import { produce, readTopic } from '../helpers/kafka.ts';

const config = isolatedConfig('slice');
const t = topics(config);
const registry = new SchemaRegistry(config);
const events = new AvroSerde(registry, valueSubject(t.listeningEvents.name), t.listeningEvents.contract);
const deadLetters = new AvroSerde(registry, valueSubject(t.deadLetter.name), t.deadLetter.contract);
const db = new ClickHouse(config);

const start = Date.UTC(2026, 10, 23, 18, 0, 0);
const TYPES: ListeningEvent['type'][] = ['PLAY', 'SKIP', 'PAUSE', 'RESUME', 'SEEK', 'SEARCH', 'EXIT'];

/** A scripted history: 8 users, 5 events each, every event type, nullable fields both set and null. */
function history(prefix: string, count: number): ListeningEvent[] {
  return Array.from({ length: count }, (_, i) => {
    const type = TYPES[i % TYPES.length]!;
    return listeningEvent({
      eventId: `${prefix}-${String(i).padStart(3, '0')}`,
      userId: `user-${i % 8}`,
      type,
      timestamp: start + i * 1_000,
      songId: type === 'SEARCH' ? null : `song-${i % 11}`,
      positionMs: type === 'SEARCH' || type === 'EXIT' ? null : i * 1_500,
      seekToMs: type === 'SEEK' ? 90_000 : null,
      searchQuery: type === 'SEARCH' ? `query ${i}` : null,
      device: i % 2 ? 'DESKTOP' : 'MOBILE',
      context: { shuffle: i % 3 === 0, country: i % 5 ? 'SE' : null, timezoneOffsetMinutes: (i % 4) * 60 },
    });
  });
}

async function encode(list: ListeningEvent[]): Promise<OutgoingRecord[]> {
  return Promise.all(
    list.map(async (event) => ({
      topic: t.listeningEvents.name,
      key: event.userId,
      value: await events.serialize(event),
    })),
  );
}

/**
 * Runs the job until it has committed `expected` records (or for `timeoutMs`), then stops it. Returns the
 * committed totals and the Prometheus exposition scraped when the last expected record was committed.
 */
async function runUntil(expected: number, timeoutMs = 90_000): Promise<BatchReport & { metrics: string }> {
  const stop = new AbortController();
  const total: BatchReport = { consumed: 0, inserted: 0, deadLettered: 0 };
  let scrape: Promise<string> = Promise.resolve('');
  const timeout = setTimeout(() => stop.abort(), timeoutMs);
  await runEventsToClickHouse(config, {
    signal: stop.signal,
    onBatch: (report) => {
      total.consumed += report.consumed;
      total.inserted += report.inserted;
      total.deadLettered += report.deadLettered;
      if (total.consumed >= expected) {
        scrape = metrics.metrics();
        stop.abort();
      }
    },
  });
  clearTimeout(timeout);
  return { ...total, metrics: await scrape };
}

/** A sample's value from a Prometheus exposition, by metric name and labels. */
function sample(exposition: string, name: string, labels: Record<string, string>): number | undefined {
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of exposition.split('\n')) {
    const match = /^(\w+)\{([^}]*)\} (\S+)$/.exec(line);
    if (match?.[1] !== name) continue;
    const have = match[2]!.split(',');
    if (wanted.every((l) => have.includes(l))) return Number(match[3]);
  }
  return undefined;
}

interface EventRowOut {
  event_id: string;
  user_id: string;
  type: string;
  timestamp_ms: string;
  event_time: string;
  song_id: string | null;
  position_ms: number | null;
  seek_to_ms: number | null;
  search_query: string | null;
  device: string;
  country: string | null;
  shuffle: number;
  timezone_offset_minutes: number;
}

function expectedRow(e: ListeningEvent): EventRowOut {
  return {
    event_id: e.eventId,
    user_id: e.userId,
    type: e.type,
    timestamp_ms: String(e.timestamp),
    event_time: new Date(Math.floor(e.timestamp / 1000) * 1000).toISOString().replace('T', ' ').slice(0, 19),
    song_id: e.songId,
    position_ms: e.positionMs,
    seek_to_ms: e.seekToMs,
    search_query: e.searchQuery,
    device: e.device,
    country: e.context.country,
    shuffle: e.context.shuffle ? 1 : 0,
    timezone_offset_minutes: e.context.timezoneOffsetMinutes,
  };
}

const COLUMNS =
  'event_id, user_id, type, timestamp_ms, event_time, song_id, position_ms, seek_to_ms, search_query, device, country, shuffle, timezone_offset_minutes';

describe('listening events → ClickHouse (real Kafka, registry and ClickHouse)', () => {
  before(() => provision(config));

  after(async () => {
    await db.command(`DROP DATABASE IF EXISTS ${config.clickhouse.database}`);
    await db.close();
    registry.close();
    const admin = new Admin(config);
    await admin.deleteTopics(Object.values(t).map((topic) => topic.name));
    await admin.close();
  });

  const first = history('a', 40);
  const poison: { name: string; reason: string; value: () => Promise<Buffer> }[] = [
    { name: 'wrong-magic', reason: 'BAD_MAGIC_BYTE', value: async () => Buffer.from([1, 0, 0, 0, 1, 2, 3]) },
    {
      name: 'unknown-schema-id',
      reason: 'UNKNOWN_SCHEMA_ID',
      value: async () => {
        const bytes = await events.serialize(listeningEvent({ eventId: 'ghost' }));
        bytes.writeInt32BE(1_999_999_999, 1);
        return bytes;
      },
    },
    {
      name: 'garbage',
      reason: 'BAD_MAGIC_BYTE',
      value: async () => Buffer.from('not avro at all, just text'),
    },
    {
      name: 'truncated',
      reason: 'MALFORMED_AVRO',
      value: async () => (await events.serialize(listeningEvent({ eventId: 'cut' }))).subarray(0, 12),
    },
    {
      name: 'negative-position',
      reason: 'INVALID_VALUE',
      value: () => events.serialize(listeningEvent({ eventId: 'negative', positionMs: -5 })),
    },
    {
      name: 'far-future',
      reason: 'INVALID_VALUE',
      value: () =>
        events.serialize(listeningEvent({ eventId: 'future', timestamp: Date.now() + 90 * 86_400_000 })),
    },
  ];

  it('writes exactly the valid events and dead-letters each malformed one with its reason and offset', async () => {
    const valid = await encode(first);
    const bad: OutgoingRecord[] = await Promise.all(
      poison.map(async (p) => ({
        topic: t.listeningEvents.name,
        key: `poison-${p.name}`,
        value: await p.value(),
      })),
    );
    // Interleave: the poison pills sit among valid records of the same partitions.
    const mixed = valid.flatMap((record, i) =>
      i % 7 === 3 && bad.length ? [record, bad.shift()!] : [record],
    );
    mixed.push(...bad);
    await produce(config, mixed);

    const { metrics: exposition, ...report } = await runUntil(first.length + poison.length);
    assert.deepEqual(report, { consumed: 46, inserted: 40, deadLettered: 6 });
    const application = config.appId;
    assert.equal(
      sample(exposition, 'encore_streams_records_processed_total', {
        application,
        topic: t.listeningEvents.name,
      }),
      46,
    );
    // The six rejected records never reached the topology: only the 40 valid ones entered the sink node.
    assert.equal(
      sample(exposition, 'encore_streams_node_records_in_total', { application, node: 'events-table' }),
      40,
    );
    assert.ok(
      sample(exposition, 'encore_streams_node_process_seconds_total', {
        application,
        node: 'events-table',
      })! > 0,
    );
    assert.equal(sample(exposition, 'encore_streams_active_tasks', { application }), 2);
    for (const partition of ['0', '1']) {
      assert.equal(
        sample(exposition, 'encore_streams_consumer_lag_records', {
          application,
          topic: t.listeningEvents.name,
          partition,
        }),
        0,
        `partition ${partition} fully consumed`,
      );
    }

    const rows = await db.query<EventRowOut>(`SELECT ${COLUMNS} FROM events FINAL ORDER BY event_id`);
    assert.deepEqual(rows, first.map(expectedRow));
    const [{ n }] = (await db.query<{ n: string }>('SELECT count() AS n FROM events')) as [{ n: string }];
    assert.equal(Number(n), 40, 'no row was written twice');

    const input = await readTopic(config, t.listeningEvents.name, 46);
    const letters = await readTopic(config, t.deadLetter.name, 6);
    assert.equal(letters.length, 6, 'exactly one dead letter per malformed record');
    for (const pill of poison) {
      const source = input.find((r) => r.key?.toString() === `poison-${pill.name}`)!;
      const letterRecord = letters.find((r) => r.key?.toString() === `poison-${pill.name}`);
      assert.ok(letterRecord, `${pill.name} reached the dead-letter topic`);
      const letter = await deadLetters.deserialize(letterRecord.value);
      assert.equal(letter.reason, pill.reason, `${pill.name}: ${letter.errorMessage}`);
      assert.equal(letter.sourceTopic, t.listeningEvents.name);
      assert.equal(letter.sourcePartition, source.partition);
      assert.equal(letter.sourceOffset, source.offset);
      assert.deepEqual(letter.value, source.value, 'the original bytes are kept untouched');
      assert.equal(letter.stage, 'events-to-clickhouse');
      assert.ok(letter.errorMessage.length > 0);
    }
  });

  it('resumes from its committed offsets after a restart: new events once, old ones not again', async () => {
    const second = history('b', 16);
    await produce(config, await encode(second));
    const { metrics: _, ...report } = await runUntil(second.length);
    assert.deepEqual(report, { consumed: 16, inserted: 16, deadLettered: 0 });
    const [{ n, unique }] = (await db.query<{ n: string; unique: string }>(
      'SELECT count() AS n, uniqExact(event_id) AS unique FROM events',
    )) as [{ n: string; unique: string }];
    assert.equal(Number(n), 56);
    assert.equal(Number(unique), 56);
  });

  it('on a graceful stop, writes and commits what it processed before the commit interval came', async () => {
    const third = history('c', 12);
    await produce(config, await encode(third));
    const lazy = { ...config, streams: { ...config.streams, commitIntervalMs: 600_000 } };
    const stop = new AbortController();
    const processed = async () =>
      sample(await metrics.metrics(), 'encore_streams_records_processed_total', {
        application: config.appId,
        topic: t.listeningEvents.name,
      }) ?? 0;
    const before = await processed();
    const reports: BatchReport[] = [];
    const job = runEventsToClickHouse(lazy, { signal: stop.signal, onBatch: (r) => reports.push(r) });
    const deadline = Date.now() + 60_000;
    while ((await processed()) < before + third.length && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 100));
    assert.deepEqual(reports, [], 'nothing was committed before the stop');
    stop.abort();
    await job;
    assert.deepEqual(reports, [{ consumed: 12, inserted: 12, deadLettered: 0 }]);
    const [{ n }] = (await db.query<{ n: string }>('SELECT count() AS n FROM events')) as [{ n: string }];
    assert.equal(Number(n), 68);
    // Committed: a restart finds nothing left to do.
    const { metrics: _, ...again } = await runUntil(Number.POSITIVE_INFINITY, 2_000);
    assert.deepEqual(again, { consumed: 0, inserted: 0, deadLettered: 0 });
  });
});
