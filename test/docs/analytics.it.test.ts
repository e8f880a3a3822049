/**
 * docs/ANALYTICS.md against the real ClickHouse: every SQL block of the page runs on tables holding what the
 * listening topology produced from a scripted history (plus model scores and operator metrics made for
 * the test), and the numbers the views compute are checked against the rows they summarise.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { ClickHouse } from '../../clients/clickhouse.ts';
import { migrate } from '../../sinks/migrate.ts';
import {
  eventRow,
  feedbackRow,
  labelRow,
  modelScoreRow,
  recommendationRow,
  sessionFeaturesRow,
  sessionRow,
} from '../../sinks/tables.ts';
import { isolatedConfig } from '../helpers/env.ts';
import { listeningScript, topologyOutputs } from '../helpers/listening-script.ts';

const config = isolatedConfig('analytics');
const db = new ClickHouse(config);
const doc = readFileSync(new URL('../../docs/ANALYTICS.md', import.meta.url), 'utf8');
const queries = [...doc.matchAll(/```sql\n([\s\S]*?)```/g)].map((m) => m[1]!.trim());

const script = listeningScript(Date.UTC(2026, 10, 20, 8, 0, 0), config.kafka.partitions);
const outputs = topologyOutputs(config, script);
const recommendations = script.flatMap((i) => (i.kind === 'recommendation' ? [i.recommendation] : []));

describe('docs/ANALYTICS.md on the real ClickHouse', () => {
  before(async () => {
    await migrate(config);
    let offset = 0;
    await db.insert(
      'events',
      script.flatMap((i) =>
        i.kind === 'event' ? [eventRow(i.event, { partition: 0, offset: offset++ })] : [],
      ),
    );
    await db.insert('sessions', outputs.sessions.map(sessionRow));
    await db.insert('session_features', outputs.features.map(sessionFeaturesRow));
    await db.insert('disengagement_labels', outputs.labels.map(labelRow));
    await db.insert('recommendation_feedback', outputs.feedback.map(feedbackRow));
    await db.insert('recommendations', recommendations.map(recommendationRow));
    await db.insert(
      'model_scores',
      outputs.features.map((f, i) =>
        modelScoreRow({
          eventId: f.eventId,
          userId: f.userId,
          model: 'disengagement',
          modelVersion: i % 2 ? 'v2' : 'v1',
          role: i % 2 ? 'challenger' : 'champion',
          score: (i % 10) / 10,
          threshold: 0.7,
          triggered: i % 10 >= 7,
          latencyMicros: 200 + i,
          timestamp: f.timestamp,
          scoredAt: f.timestamp + 1,
        }),
      ),
    );
    await db.insert('operator_metrics', [
      {
        collected_ms: Date.UTC(2026, 10, 20, 9),
        collected_date: '2026-11-20',
        application: config.appId,
        instance: 'test',
        metric: 'encore_streams_node_records_in_total',
        labels: JSON.stringify({ application: config.appId, node: 'labeler' }),
        value: 42,
      },
    ]);
  });

  after(async () => {
    await db.command(`DROP DATABASE IF EXISTS ${config.clickhouse.database}`);
    await db.close();
  });

  it('the page has the queries an analyst needs', () => {
    assert.ok(queries.length >= 12, `${queries.length} queries`);
  });

  it('every query runs and returns rows', async () => {
    for (const sql of queries) {
      const rows = await db.query<Record<string, unknown>>(sql);
      assert.ok(rows.length > 0, `no rows from:\n${sql}`);
    }
  });

  it('the views compute what the rows say', async () => {
    const [engagement] = await db.query<{ sessions: string; total_plays: string; skip_rate: number }>(
      'SELECT sessions, total_plays, skip_rate FROM daily_engagement',
    );
    const plays = outputs.sessions.reduce((n, s) => n + s.plays, 0);
    const skips = outputs.sessions.reduce((n, s) => n + s.skips, 0);
    assert.equal(Number(engagement!.sessions), outputs.sessions.length);
    assert.equal(Number(engagement!.total_plays), plays);
    assert.equal(engagement!.skip_rate, Math.round((skips / plays) * 10_000) / 10_000);

    const labelOf = new Map(outputs.labels.map((l) => [l.eventId, l.disengaged ? 1 : 0]));
    const followed = recommendations.filter((r) => labelOf.get(r.triggerEventId!) === 1).length;
    const [precision] = await db.query<{
      triggers: string;
      followed_by_disengagement: string;
      precision: number;
    }>('SELECT triggers, followed_by_disengagement, precision FROM trigger_precision');
    assert.equal(Number(precision!.triggers), recommendations.length);
    assert.equal(Number(precision!.followed_by_disengagement), followed);
    assert.equal(precision!.precision, Math.round((followed / recommendations.length) * 10_000) / 10_000);

    const accepted = new Set(
      outputs.feedback.filter((f) => f.outcome === 'LISTENED').map((f) => f.recommendationId),
    );
    const [acceptance] = await db.query<{ accepted_recommendations: string; acceptance_rate: number }>(
      'SELECT accepted_recommendations, acceptance_rate FROM recommendation_acceptance',
    );
    assert.equal(Number(acceptance!.accepted_recommendations), accepted.size);
    assert.equal(
      acceptance!.acceptance_rate,
      Math.round((accepted.size / recommendations.length) * 10_000) / 10_000,
    );

    const latency = await db.query<{ model_version: string; p50_us: number; max_us: string }>(
      'SELECT model_version, p50_us, max_us FROM model_latency ORDER BY model_version',
    );
    assert.deepEqual(
      latency.map((r) => r.model_version),
      ['v1', 'v2'],
    );
    assert.equal(
      Number(latency[1]!.max_us),
      200 + outputs.features.length - (outputs.features.length % 2 ? 1 : 2) + 1,
    );
  });
});
