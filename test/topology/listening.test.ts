import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { loadConfig } from '../../core/config.ts';
import { topics } from '../../schemas/topics.ts';
import type {
  DisengagementLabel,
  EventType,
  ListeningEvent,
  ListeningSession,
  Recommendation,
  RecommendationFeedback,
  SessionFeatures,
  UserProfile,
} from '../../schemas/types.generated.ts';
import {
  FEATURE_SPEC,
  featureSpecFile,
  featureSpecJson,
  type NumericFeature,
} from '../../topology/listening/features.ts';
import { listeningTopology } from '../../topology/listening.ts';
import { TopologyTestDriver } from '../../topology/streams/test-driver.ts';
import { listeningEvent, recommendation } from '../helpers/events.ts';

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const T0 = Date.UTC(2026, 10, 23, 12, 0, 0);
const config = loadConfig({ env: {} });
const t = topics(config);
const { sessionGapMs: GAP, graceMs: GRACE, labelHorizonMs: HORIZON } = config.listening;

function pipeline() {
  const driver = new TopologyTestDriver(
    listeningTopology(config, () => undefined),
    { applicationId: config.appId },
  );
  const events = driver.createInputTopic<ListeningEvent>(t.listeningEvents.name);
  let sequence = 0;
  const send = (
    user: string,
    type: EventType,
    at: number,
    songId: string | null = null,
    recommendationId: string | null = null,
  ) => {
    sequence += 1;
    const event = listeningEvent({
      eventId: `e${sequence}`,
      userId: user,
      type,
      timestamp: at,
      songId: type === 'SEARCH' ? null : songId,
      searchQuery: type === 'SEARCH' ? 'something' : null,
      context: { recommendationId },
    });
    events.pipe(user, event, at);
    return event.eventId;
  };
  return {
    driver,
    send,
    /** Another listener's event: moves stream time (per task, as in Kafka Streams). */
    advanceTo: (at: number) => send('clock', 'PLAY', at, 'tick'),
    profiles: driver.createInputTopic<UserProfile>(t.userProfiles.name),
    recommendations: driver.createInputTopic<Recommendation>(t.recommendations.name),
    sessions: () =>
      driver
        .createOutputTopic<ListeningSession>(t.sessions.name)
        .readValues()
        .filter((s) => s.userId !== 'clock'),
    features: () =>
      driver
        .createOutputTopic<SessionFeatures>(t.sessionFeatures.name)
        .readValues()
        .filter((f) => f.userId !== 'clock'),
    labels: () =>
      driver
        .createOutputTopic<DisengagementLabel>(t.disengagementLabels.name)
        .readValues()
        .filter((l) => l.userId !== 'clock'),
    feedback: () =>
      driver.createOutputTopic<RecommendationFeedback>(t.recommendationFeedback.name).readValues(),
  };
}

const feature = (row: SessionFeatures, name: NumericFeature) =>
  row.features[FEATURE_SPEC.numeric.findIndex((f) => f.name === name)];

describe('session tracker', () => {
  it('schemas/feature-spec.json is the spec the code computes (regenerate: node topology/listening/features.ts)', () => {
    assert.equal(readFileSync(featureSpecFile, 'utf8'), featureSpecJson());
  });

  it('computes features at every event but EXIT, from the events known at that event', () => {
    const p = pipeline();
    p.profiles.pipe('u1', profile('u1', T0 - 10 * 86_400_000, 'PREMIUM'), T0 - 1);
    p.send('u1', 'PLAY', T0, 's1');
    p.send('u1', 'PLAY', T0 + 3 * MINUTE, 's2'); // s1 listened through (180 s)
    p.send('u1', 'SKIP', T0 + 3 * MINUTE + 10 * SECOND, 's2');
    p.send('u1', 'PLAY', T0 + 3 * MINUTE + 10 * SECOND, 's3');
    p.send('u1', 'PAUSE', T0 + 4 * MINUTE, 's3');
    p.send('u1', 'RESUME', T0 + 5 * MINUTE, 's3');
    p.send('u1', 'EXIT', T0 + 6 * MINUTE, 's3');
    const rows = p.features();
    assert.equal(rows.length, 6, 'one row per event but EXIT');
    const last = rows.at(-1)!;
    assert.equal(last.eventType, 'RESUME');
    assert.equal(last.sessionId, `u1/${T0}`);
    assert.equal(last.subscription, 'PREMIUM');
    assert.equal(last.featureSpec, FEATURE_SPEC.version);
    assert.equal(last.features.length, FEATURE_SPEC.numeric.length);
    assert.equal(feature(last, 'session_events'), 6);
    assert.equal(feature(last, 'plays'), 3);
    assert.equal(feature(last, 'skips'), 1);
    assert.equal(feature(last, 'pauses'), 1);
    assert.equal(feature(last, 'paused_minutes'), 1);
    assert.equal(feature(last, 'listened_through'), 1);
    assert.equal(feature(last, 'consecutive_skips'), 1);
    assert.equal(feature(last, 'account_age_days'), 10 + 5 / (24 * 60));
    assert.equal(feature(last, 'premium'), 1);
    assert.deepEqual(last.seqSongIds, ['s1', 's2', 's3']);
    assert.deepEqual(last.seqSkipped, [false, true, false]);
    assert.deepEqual(last.seqDwellSeconds, [180, 10, 50 + 60 - 60]);
    assert.deepEqual(last.seqGapSeconds, [0, 180, 10]);
    assert.deepEqual(last.highIntentSongIds, ['s1']);
    // The first row knows only the first event.
    assert.equal(feature(rows[0]!, 'session_events'), 1);
    assert.deepEqual(rows[0]!.seqDwellSeconds, [0]);
  });

  it('an event at exactly the inactivity gap joins the session; one millisecond later starts a new one', () => {
    const p = pipeline();
    p.send('u1', 'PLAY', T0, 's1');
    p.send('u1', 'PLAY', T0 + GAP, 's2');
    p.send('u2', 'PLAY', T0, 's1');
    p.send('u2', 'PLAY', T0 + GAP + 1, 's2');
    p.advanceTo(T0 + 3 * GAP);
    const sessions = p.sessions();
    assert.deepEqual(
      sessions.filter((s) => s.userId === 'u1').map((s) => [s.start, s.end, s.events]),
      [[T0, T0 + GAP, 2]],
    );
    assert.deepEqual(
      sessions.filter((s) => s.userId === 'u2').map((s) => [s.start, s.end, s.events]),
      [
        [T0, T0, 1],
        [T0 + GAP + 1, T0 + GAP + 1, 1],
      ],
    );
  });

  it('a user with one event: one session, one scoring point, one SILENCE label', () => {
    const p = pipeline();
    const id = p.send('u1', 'PLAY', T0, 's1');
    p.advanceTo(T0 + HORIZON + GRACE + GAP);
    assert.deepEqual(
      p.sessions().map((s) => [s.sessionId, s.events, s.plays, s.skips, s.exited]),
      [[`u1/${T0}`, 1, 1, 0, false]],
    );
    assert.deepEqual(
      p.features().map((f) => f.eventId),
      [id],
    );
    assert.deepEqual(
      p.labels().map((l) => [l.eventId, l.disengaged, l.reason, l.nextSongId]),
      [[id, true, 'SILENCE', null]],
    );
  });

  it('a late event inside the grace period counts, with features as of its own time', () => {
    const p = pipeline();
    p.send('u1', 'PLAY', T0, 's1');
    p.send('u1', 'PLAY', T0 + 4 * MINUTE, 's3');
    p.advanceTo(T0 + 4 * MINUTE + GAP + GRACE - 1); // stream time: the session may still change
    const late = p.send('u1', 'SKIP', T0 + 2 * MINUTE, 's1');
    const row = p.features().find((f) => f.eventId === late)!;
    assert.equal(feature(row, 'session_events'), 2, 'the later PLAY is not known at the late SKIP');
    assert.deepEqual(row.seqSongIds, ['s1']);
    p.advanceTo(T0 + 3 * GAP);
    assert.deepEqual(
      p.sessions().map((s) => [s.start, s.end, s.events, s.skips]),
      [[T0, T0 + 4 * MINUTE, 3, 1]],
    );
    assert.equal(p.driver.lateRecordsDropped('sessions'), 0);
  });

  it('a late event outside the grace period is dropped and counted', () => {
    const p = pipeline();
    p.send('u1', 'PLAY', T0, 's1');
    p.advanceTo(T0 + GAP + GRACE + MINUTE);
    const late = p.send('u1', 'SKIP', T0 + 1, 's1'); // its session could have closed a minute ago
    assert.equal(p.driver.lateRecordsDropped('sessions'), 1);
    assert.ok(!p.features().some((f) => f.eventId === late));
    p.advanceTo(T0 + 4 * GAP);
    assert.deepEqual(
      p.sessions().map((s) => s.events),
      [1],
    );
  });

  it('a late event bridging two sessions merges them into one', () => {
    const p = pipeline();
    p.send('u1', 'PLAY', T0, 's1');
    p.send('u1', 'PLAY', T0 + 35 * MINUTE, 's2'); // a second session: 35 min > the gap
    p.send('u1', 'PLAY', T0 + 17 * MINUTE, 's3'); // late, within the gap of both, and within grace
    p.advanceTo(T0 + 35 * MINUTE + GAP + GRACE + 2 * MINUTE);
    assert.deepEqual(
      p.sessions().map((s) => [s.sessionId, s.start, s.end, s.events, s.songIds]),
      [[`u1/${T0}`, T0, T0 + 35 * MINUTE, 3, ['s1', 's3', 's2']]],
    );
  });
});

describe('disengagement labels', () => {
  it('are decided once the horizon and grace have passed in stream time, once each', () => {
    const p = pipeline();
    const play = p.send('u1', 'PLAY', T0, 's1');
    p.send('u1', 'PLAY', T0 + 3 * MINUTE, 's2');
    p.advanceTo(T0 + HORIZON + GRACE - 1);
    assert.deepEqual(p.labels(), [], 'not before the horizon plus grace');
    p.advanceTo(T0 + HORIZON + GRACE + MINUTE);
    const first = p.labels();
    assert.deepEqual(
      first.map((l) => [l.eventId, l.reason, l.nextSongId]),
      [[play, 'CONTINUED', 's2']],
    );
    p.advanceTo(T0 + 4 * HORIZON);
    assert.deepEqual(
      p.labels().map((l) => l.reason),
      ['SILENCE'],
      'the second point only; the first is never emitted again',
    );
  });

  it('skip burst, search and exit within the horizon are positive; the earliest names the reason', () => {
    const p = pipeline();
    const play = p.send('u1', 'PLAY', T0, 's1');
    p.send('u1', 'PLAY', T0 + 3 * MINUTE, 's2');
    for (let i = 0; i < 3; i += 1) {
      p.send('u1', 'SKIP', T0 + 3 * MINUTE + (i + 1) * 10 * SECOND, `s${i + 2}`);
      p.send('u1', 'PLAY', T0 + 3 * MINUTE + (i + 1) * 10 * SECOND, `s${i + 3}`);
    }
    const search = p.send('u1', 'SEARCH', T0 + 10 * MINUTE);
    p.send('u1', 'EXIT', T0 + 12 * MINUTE, 's5');
    p.advanceTo(T0 + 2 * HORIZON + GRACE);
    const labels = p.labels();
    assert.equal(labels.length, 9, 'every event but EXIT');
    const byEvent = new Map(labels.map((l) => [l.eventId, l]));
    assert.deepEqual(
      [byEvent.get(play)!.reason, byEvent.get(play)!.outcomeAfterMs, byEvent.get(play)!.nextSongId],
      ['SKIP_BURST', 3 * MINUTE + 30 * SECOND, 's5'],
    );
    assert.deepEqual(
      [byEvent.get(search)!.reason, byEvent.get(search)!.outcomeAfterMs],
      ['EXIT', 2 * MINUTE],
    );
    assert.ok(labels.every((l) => l.disengaged && l.horizonMs === HORIZON));
  });

  it('skips before the point, or spread wider than the burst window, are no burst', () => {
    const p = pipeline();
    p.send('u1', 'SKIP', T0, 's0');
    p.send('u1', 'SKIP', T0 + 10 * SECOND, 's1');
    const point = p.send('u1', 'PLAY', T0 + 20 * SECOND, 's2');
    p.send('u1', 'SKIP', T0 + 30 * SECOND, 's2'); // 3 in 30 s, but only one after the point
    p.send('u1', 'SKIP', T0 + 2 * MINUTE + 31 * SECOND, 's3'); // 2 min 1 s after the first one after
    p.send('u1', 'PLAY', T0 + 2 * MINUTE + 31 * SECOND, 's4');
    p.send('u1', 'PLAY', T0 + 25 * MINUTE, 's5');
    p.advanceTo(T0 + 2 * HORIZON + GRACE);
    const label = p.labels().find((l) => l.eventId === point)!;
    assert.deepEqual([label.disengaged, label.reason, label.nextSongId], [false, 'CONTINUED', 's4']);
  });
});

describe('feedback collector', () => {
  it('turns what follows a recommendation into LISTENED, SKIPPED, SEARCHED, EXITED and IGNORED', () => {
    const p = pipeline();
    p.recommendations.pipe('u1', recommendation('r1', 'u1', T0, ['a', 'b', 'c']), T0);
    const playA = p.send('u1', 'PLAY', T0 + SECOND, 'a', 'r1');
    p.send('u1', 'PLAY', T0 + 41 * SECOND, 'b', 'r1'); // a: 40 s
    p.send('u1', 'SKIP', T0 + 51 * SECOND, 'b'); // b: 10 s
    p.send('u1', 'PLAY', T0 + 51 * SECOND, 'x');
    p.recommendations.pipe('u2', recommendation('r2', 'u2', T0, ['a']), T0);
    const search = p.send('u2', 'SEARCH', T0 + 5 * SECOND);
    p.recommendations.pipe('u3', recommendation('r3', 'u3', T0, ['a']), T0);
    p.send('u3', 'EXIT', T0 + 7 * SECOND, 'z');
    p.recommendations.pipe('u4', recommendation('r4', 'u4', T0, ['a']), T0);
    p.send('u4', 'PLAY', T0 + 2 * SECOND, 'y'); // not recommended
    p.advanceTo(T0 + config.listening.feedbackWindowMs + 2 * MINUTE);
    const feedback = p.feedback();
    const rows = feedback.map((f) => [f.recommendationId, f.songId, f.rank, f.outcome, f.dwellMs, f.delayMs]);
    assert.deepEqual(
      rows.sort((a, b) => String(a[0]).localeCompare(String(b[0]))),
      [
        ['r1', 'a', 1, 'LISTENED', 40 * SECOND, 920],
        ['r1', 'b', 2, 'SKIPPED', 10 * SECOND, 40 * SECOND + 920],
        ['r2', null, null, 'SEARCHED', null, 4920],
        ['r3', null, null, 'EXITED', null, 6920],
        ['r4', null, null, 'IGNORED', null, config.listening.feedbackWindowMs - 80],
      ],
    );
    assert.equal(feedback.find((f) => f.songId === 'a')!.outcomeEventId, playA);
    assert.equal(feedback.find((f) => f.recommendationId === 'r2')!.outcomeEventId, search);
    assert.equal(new Set(feedback.map((f) => f.feedbackId)).size, feedback.length);
  });

  it('reads events that arrived before their recommendation (the two come from different topics)', () => {
    const p = pipeline();
    p.send('u1', 'PLAY', T0 + SECOND, 'a');
    p.send('u1', 'SKIP', T0 + 5 * SECOND, 'a');
    p.recommendations.pipe('u1', recommendation('r1', 'u1', T0, ['a']), T0);
    assert.deepEqual(
      p.feedback().map((f) => [f.songId, f.outcome, f.dwellMs]),
      [['a', 'SKIPPED', 4 * SECOND]],
    );
    p.recommendations.pipe('u1', recommendation('r1', 'u1', T0, ['a']), T0);
    p.advanceTo(T0 + 2 * config.listening.feedbackWindowMs);
    assert.deepEqual(p.feedback(), [], 'a recommendation seen twice is decided once');
  });
});

function profile(userId: string, createdAt: number, subscription: UserProfile['subscription']): UserProfile {
  return {
    userId,
    createdAt,
    country: 'SE',
    preferredLanguage: 'sv',
    birthYear: 1990,
    subscription,
    allowExplicit: true,
    favouriteGenres: ['pop'],
    updatedAt: createdAt,
  };
}
