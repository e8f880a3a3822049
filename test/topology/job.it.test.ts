/**
 * The job end to end on the real stack (Kafka, schema registry, ClickHouse): a scripted listening history
 * goes in as Avro; exactly the expected events, sessions, features, labels and feedback come out in
 * ClickHouse, also when the job is SIGKILLed mid-run and restarted, and when ClickHouse is stopped and
 * started while the job runs. The expected rows are what the same topology gives in the test driver (its
 * semantics are tested by hand in listening.test.ts); here the question is whether the real runtime, broker
 * and connector deliver exactly those, once each.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { exited, spawnEncore } from '../../cli/child.ts';
import { ClickHouse } from '../../clients/clickhouse.ts';
import { Admin, type OutgoingRecord } from '../../clients/kafka.ts';
import type { Config } from '../../core/config.ts';
import { SchemaRegistry } from '../../schemas/registry.ts';
import { AvroSerde } from '../../schemas/serde.ts';
import { topics, valueSubject } from '../../schemas/topics.ts';
import { feedbackRow, labelRow, type Row, sessionFeaturesRow, sessionRow } from '../../sinks/tables.ts';
import { COMPONENTS, down, up } from '../../stack/stack.ts';
import { provision, runJob } from '../../topology/job.ts';
import { isolatedConfig } from '../helpers/env.ts';
import { listeningEvent } from '../helpers/events.ts';
import { produce, readTopic } from '../helpers/kafka.ts';
import { listeningScript, type ScriptItem, topologyOutputs } from '../helpers/listening-script.ts';

const clickhouse = COMPONENTS.find((c) => c.name === 'clickhouse')!;

const config: Config = {
  ...isolatedConfig('job'),
  sinks: { ...isolatedConfig('job').sinks, flushIntervalMs: 200, operatorMetricsIntervalMs: 500 },
};
const t = topics(config);
const registry = new SchemaRegistry(config);
const db = new ClickHouse(config);
const start = Date.now() - 4 * 60 * 60 * 1000;
const script = listeningScript(start, config.kafka.partitions);

/** What the topology produces from the script, as ClickHouse rows, computed in the test driver. */
function expectedRows() {
  const outputs = topologyOutputs(config, script);
  return {
    sessions: outputs.sessions.map(sessionRow),
    features: outputs.features.map(sessionFeaturesRow),
    labels: outputs.labels.map(labelRow),
    feedback: outputs.feedback.map(feedbackRow),
  };
}

const serdes = {
  event: new AvroSerde(registry, valueSubject(t.listeningEvents.name), t.listeningEvents.contract),
  recommendation: new AvroSerde(registry, valueSubject(t.recommendations.name), t.recommendations.contract),
  score: new AvroSerde(registry, valueSubject(t.modelScores.name), t.modelScores.contract),
};

/** Model scores as the serving side will log them: one per scoring point (here made up, the topic is real). */
async function sendScores(points: readonly Row[]) {
  const records: OutgoingRecord[] = [];
  for (const [i, p] of points.entries()) {
    const score = {
      eventId: String(p.event_id),
      userId: String(p.user_id),
      model: 'disengagement',
      modelVersion: 'test-1',
      role: 'champion',
      score: (i % 10) / 10,
      threshold: 0.6,
      triggered: i % 10 >= 6,
      latencyMicros: 150 + i,
      timestamp: Number(p.timestamp_ms),
      scoredAt: Number(p.timestamp_ms) + 2,
    };
    records.push({
      topic: t.modelScores.name,
      key: score.userId,
      value: await serdes.score.serialize(score),
    });
  }
  await produce(config, records);
}

async function send(items: readonly ScriptItem[]) {
  const records: OutgoingRecord[] = [];
  for (const item of items) {
    if (item.kind === 'recommendation') {
      const { recommendation } = item;
      records.push({
        topic: t.recommendations.name,
        key: recommendation.userId,
        value: await serdes.recommendation.serialize(recommendation),
      });
    } else {
      records.push({
        topic: t.listeningEvents.name,
        key: item.event.userId,
        value: await serdes.event.serialize(item.event),
        ...(item.kind === 'clock' ? { partition: item.partition } : {}),
      });
    }
  }
  await produce(config, records);
}

const NO_MODELS = mkdtempSync(path.join(tmpdir(), 'encore-no-models-'));
const children = new Set<ChildProcess>();

/** The job as `encore run` in a child process, configured through the environment, so it can be SIGKILLed. */
function startJob(): ChildProcess {
  const child = spawnEncore('run', {
    appId: config.appId,
    'clickhouse.database': config.clickhouse.database,
    'kafka.partitions': config.kafka.partitions,
    'metrics.port': 0,
    'streams.instanceId': 'job-test',
    'sinks.flushIntervalMs': 200,
    'log.level': process.env.TEST_APP_LOG_LEVEL ?? 'warn',
    // The listening half alone: no models (so no model scores of its own) and no pushes, so that the
    // recommendations and scores in this test are exactly the scripted ones.
    'serving.modelsDir': NO_MODELS,
    'serving.push': 'off',
  });
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

async function stopJob(job: ChildProcess, signal: NodeJS.Signals) {
  const done = exited(job);
  job.kill(signal);
  await done;
}

/** Rows of a table, deduplicated (FINAL), with the listed columns, ordered by `orderBy`. */
async function rows(table: string, columns: readonly string[], orderBy: string): Promise<Row[]> {
  return db.query<Row>(
    `SELECT ${columns.join(', ')} FROM ${table} FINAL WHERE user_id NOT LIKE 'clock-%' ORDER BY ${orderBy}`,
  );
}

async function count(sql: string): Promise<number> {
  try {
    const [row] = await db.query<{ n: string }>(sql);
    return Number(row?.n ?? 0);
  } catch {
    return -1; // ClickHouse is down
  }
}

async function waitFor(what: string, done: () => Promise<boolean>, timeoutMs = 120_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(250);
  }
}

/** ClickHouse returns Int64 as strings (18.16) and Float32 with float precision: compare what the rows mean. */
function normalise(row: Row): Row {
  return Object.fromEntries(
    Object.entries(row).map(([key, value]) => [
      key,
      Array.isArray(value)
        ? value.map((v) => (typeof v === 'number' ? Number(v.toPrecision(6)) : v))
        : typeof value === 'string' && /^-?\d+$/.test(value) && key.endsWith('_ms')
          ? Number(value)
          : value,
    ]),
  );
}

const pick = (row: Row, columns: readonly string[]) => Object.fromEntries(columns.map((c) => [c, row[c]]));

const SESSION_COLUMNS = [
  'session_id',
  'start_ms',
  'end_ms',
  'events',
  'plays',
  'skips',
  'skip_bursts',
  'pauses',
  'paused_ms',
  'searches',
  'listened_ms',
  'exited',
  'device',
  'song_ids',
];
const FEATURE_COLUMNS = [
  'event_id',
  'session_id',
  'event_type',
  'song_id',
  'features',
  'seq_song_ids',
  'seq_skipped',
  'seq_dwell_s',
  'seq_gap_s',
  'high_intent_song_ids',
];
const LABEL_COLUMNS = [
  'event_id',
  'session_id',
  'label',
  'reason',
  'outcome_after_ms',
  'next_song_id',
  'horizon_ms',
];
const FEEDBACK_COLUMNS = [
  'feedback_id',
  'recommendation_id',
  'song_id',
  'rank',
  'outcome',
  'dwell_ms',
  'delay_ms',
  'outcome_event_id',
  'decided_at_ms',
];

describe('the job on the real stack', () => {
  before(() => provision(config));

  after(async () => {
    for (const child of children) child.kill('SIGKILL'); // left running by a failed test
    await up(config, [clickhouse]); // in case a test failed while it was stopped
    await db.command(`DROP DATABASE IF EXISTS ${config.clickhouse.database}`);
    await db.close();
    registry.close();
    const admin = new Admin(config);
    const cluster = await admin.describeCluster();
    await admin.deleteTopics(
      cluster.topics.map((topic) => topic.name).filter((n) => n.startsWith(config.appId)),
    );
    await admin.close();
  });

  it('writes exactly the expected rows through a SIGKILL restart and a ClickHouse stop and start', async () => {
    const expected = expectedRows();
    assert.ok(
      expected.labels.some((l) => l.reason === 'SKIP_BURST') && expected.feedback.length >= 5,
      'the script covers the cases',
    );
    const listening = script.filter((i) => i.kind !== 'clock');
    const half = Math.floor(listening.length / 2);
    const eventsIn = (items: readonly ScriptItem[]) => items.filter((i) => i.kind === 'event').length;

    // 1. The first half, then SIGKILL once some of it is in ClickHouse.
    await send(listening.slice(0, half));
    let job = startJob();
    await waitFor('the first rows', async () => (await count('SELECT count() AS n FROM events')) > 0);
    await stopJob(job, 'SIGKILL');

    // 2. A restart. Once it runs (its operator metrics arrive), ClickHouse goes away, and the second half
    //    of the history arrives during the outage.
    const restarted = Date.now();
    job = startJob();
    await waitFor(
      'the restarted job',
      async () =>
        (await count(`SELECT count() AS n FROM operator_metrics WHERE collected_ms > ${restarted}`)) > 0,
    );
    await down(config, [clickhouse]);
    try {
      await send(listening.slice(half));
      await sendScores(expected.features);
      // The clocks move stream time past every window: sent once the topology has read the recommendations
      // and the events after them (every outcome but IGNORED is decided by events), as in real time, where a
      // recommendation is produced long before its window ends.
      const decidedByEvents = expected.feedback.filter((f) => f.outcome !== 'IGNORED').length;
      await readTopic(config, t.recommendationFeedback.name, decidedByEvents, { settleMs: 0 });
      await send(script.filter((i) => i.kind === 'clock'));
      // The topology goes on without ClickHouse: its labels are in Kafka while the tables cannot be written.
      const labelsInKafka = await readTopic(config, t.disengagementLabels.name, expected.labels.length, {
        settleMs: 0,
      });
      assert.ok(labelsInKafka.length >= expected.labels.length);
      await sleep(2_000); // the connector retries through the outage
    } finally {
      await up(config, [clickhouse]);
    }

    const tables = [
      ['sessions', expected.sessions],
      ['session_features', expected.features],
      ['disengagement_labels', expected.labels],
      ['recommendation_feedback', expected.feedback],
      ['model_scores', expected.features],
      ['recommendations', script.filter((i) => i.kind === 'recommendation')],
    ] as const;
    await waitFor('every row in ClickHouse', async () => {
      for (const [table, want] of tables) {
        if (
          (await count(`SELECT count() AS n FROM ${table} FINAL WHERE user_id NOT LIKE 'clock-%'`)) <
          want.length
        )
          return false;
      }
      return true;
    });
    await stopJob(job, 'SIGTERM');

    const checks = [
      ['sessions', SESSION_COLUMNS, 'session_id', expected.sessions],
      ['session_features', FEATURE_COLUMNS, 'event_id', expected.features],
      ['disengagement_labels', LABEL_COLUMNS, 'event_id', expected.labels],
      ['recommendation_feedback', FEEDBACK_COLUMNS, 'feedback_id', expected.feedback],
    ] as const;
    for (const [table, columns, id, want] of checks) {
      assert.deepEqual(
        (await rows(table, columns, id)).map(normalise),
        [...want]
          .sort((a, b) => String(a[id]).localeCompare(String(b[id])))
          .map((r) => normalise(pick(r, columns))),
        `${table}: exactly the expected rows`,
      );
    }
    assert.deepEqual(
      await db.query(
        'SELECT recommendation_id, trigger_event_id FROM recommendations FINAL ORDER BY recommendation_id',
      ),
      script
        .flatMap((i) =>
          i.kind === 'recommendation'
            ? [
                {
                  recommendation_id: i.recommendation.recommendationId,
                  trigger_event_id: i.recommendation.triggerEventId,
                },
              ]
            : [],
        )
        .sort((a, b) => a.recommendation_id.localeCompare(b.recommendation_id)),
    );
    assert.equal(await count('SELECT count() AS n FROM model_scores FINAL'), expected.features.length);
    assert.equal(
      await count("SELECT count() AS n FROM events FINAL WHERE user_id NOT LIKE 'clock-%'"),
      eventsIn(listening),
    );

    // Exactly once in Kafka too: each label once under read_committed, whatever the crash replayed.
    const labels = await readTopic(config, t.disengagementLabels.name, expected.labels.length);
    const keys = labels.map((r) => r.key?.toString()).filter((k) => !k?.startsWith('clock-'));
    assert.equal(keys.length, expected.labels.length, 'no label was produced twice');
    // The operator-metrics trail is there too.
    assert.ok(
      (await count(
        "SELECT count() AS n FROM operator_metrics WHERE metric = 'encore_sink_records_consumed_total'",
      )) > 0,
    );
  });

  it('dead-letters malformed events with their reason and writes the valid ones once', async () => {
    const valid = Array.from({ length: 10 }, (_, i) =>
      listeningEvent({ eventId: `valid-${i}`, userId: `dl-user-${i % 3}`, timestamp: start + i * 1000 }),
    );
    const records: OutgoingRecord[] = [];
    for (const e of valid)
      records.push({ topic: t.listeningEvents.name, key: e.userId, value: await serdes.event.serialize(e) });
    const poison: [string, Buffer, string][] = [
      ['garbage', Buffer.from('not avro at all'), 'BAD_MAGIC_BYTE'],
      [
        'truncated',
        (await serdes.event.serialize(listeningEvent({ eventId: 'cut' }))).subarray(0, 12),
        'MALFORMED_AVRO',
      ],
      [
        'negative',
        await serdes.event.serialize(listeningEvent({ eventId: 'neg', positionMs: -5 })),
        'INVALID_VALUE',
      ],
      [
        'future',
        await serdes.event.serialize(
          listeningEvent({ eventId: 'fut', timestamp: Date.now() + 90 * 86_400_000 }),
        ),
        'INVALID_VALUE',
      ],
    ];
    for (const [name, value] of poison)
      records.splice(3, 0, { topic: t.listeningEvents.name, key: `poison-${name}`, value });
    await produce(config, records);

    const stop = new AbortController();
    let processed = 0;
    const job = runJob(config, stop.signal, {
      onCommit: (report) => {
        processed += report.records;
      },
    });
    await waitFor('the topology to commit every record', async () => processed >= records.length);
    await waitFor(
      'the valid events in ClickHouse',
      async () => (await count("SELECT count() AS n FROM events FINAL WHERE event_id LIKE 'valid-%'")) === 10,
    );
    stop.abort();
    await job;

    const deadLetters = new AvroSerde(registry, valueSubject(t.deadLetter.name), t.deadLetter.contract);
    const letters = await Promise.all(
      (await readTopic(config, t.deadLetter.name, poison.length)).map((r) =>
        deadLetters.deserialize(r.value),
      ),
    );
    for (const [name, , reason] of poison) {
      const letter = letters.filter((l) => l.key?.toString() === `poison-${name}`);
      assert.equal(letter.length, 1, `${name}: one dead letter`);
      assert.equal(letter[0]!.reason, reason, `${name}: ${letter[0]!.errorMessage}`);
      assert.equal(letter[0]!.stage, 'listening');
    }
    assert.equal(await count("SELECT count() AS n FROM events WHERE event_id IN ('cut', 'neg', 'fut')"), 0);
  });
});
