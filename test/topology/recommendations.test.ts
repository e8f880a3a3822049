/**
 * The recommendation topology in the test driver, with the in-memory serving world of test/helpers/serving.ts:
 * triggers, cooldown, explicit requests, every serving path, post-processing rules, model swaps, shadow
 * scoring and the bandit learning from feedback.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type Config, loadConfig } from '../../core/config.ts';
import { topics } from '../../schemas/topics.ts';
import type {
  EventType,
  ListeningEvent,
  ModelScore,
  Recommendation,
  RecommendationFeedback,
  RecommendationRequest,
  UserProfile,
} from '../../schemas/types.generated.ts';
import { BANDIT_KEY, BANDIT_STORE } from '../../topology/recommend/recommender.ts';
import { encoreTopology } from '../../topology/recommendations.ts';
import { TopologyTestDriver } from '../../topology/streams/test-driver.ts';
import type { BanditState } from '../../udfs/bandit.ts';
import type { ServingModels } from '../../udfs/models.ts';
import { listeningEvent } from '../helpers/events.ts';
import { SONGS, stubDisengagement, stubUserTower, testServing } from '../helpers/serving.ts';

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const T0 = Date.UTC(2026, 10, 23, 12, 0, 0);

function setup(models: ServingModels, env: Record<string, string> = {}) {
  const config: Config = loadConfig({ env });
  const t = topics(config);
  const serving = testServing(models);
  const driver = new TopologyTestDriver(
    encoreTopology(config, () => undefined, serving),
    {
      applicationId: config.appId,
    },
  );
  const events = driver.createInputTopic<ListeningEvent>(t.listeningEvents.name);
  const profiles = driver.createInputTopic<UserProfile | null>(t.userProfiles.name);
  const requests = driver.createInputTopic<RecommendationRequest>(t.recommendationRequests.name);
  const recommendations = driver.createOutputTopic<Recommendation>(t.recommendations.name);
  const scores = driver.createOutputTopic<ModelScore>(t.modelScores.name);
  const feedback = driver.createOutputTopic<RecommendationFeedback>(t.recommendationFeedback.name);
  let sequence = 0;
  const send = async (user: string, type: EventType, at: number, songId: string | null = null) => {
    sequence += 1;
    const event = listeningEvent({ eventId: `e${sequence}`, userId: user, type, timestamp: at, songId });
    events.pipe(user, event, at);
    await driver.flush();
    return event.eventId;
  };
  const profile = (user: string, fields: Partial<UserProfile> = {}) =>
    profiles.pipe(
      user,
      {
        userId: user,
        createdAt: T0 - 400 * 86_400_000,
        country: 'SE',
        preferredLanguage: 'sv',
        birthYear: 1990,
        subscription: 'PREMIUM',
        allowExplicit: false,
        favouriteGenres: [],
        updatedAt: T0 - MINUTE,
        ...fields,
      },
      T0 - MINUTE,
    );
  const request = async (user: string, requestId: string, at: number, count: number | null = null) => {
    requests.pipe(user, { requestId, userId: user, count, requestedAt: at }, at);
    await driver.flush();
  };
  /** Three songs listened through, then skips: the third skip within two minutes is a burst. */
  const burst = async (user: string, from = T0) => {
    const played = ['song-010', 'song-011', 'song-012'];
    for (const [i, song] of played.entries()) await send(user, 'PLAY', from + i * 4 * MINUTE, song);
    const skipsFrom = from + 12 * MINUTE;
    const skipped = ['song-020', 'song-021', 'song-022'];
    const ids: string[] = [];
    for (const [i, song] of skipped.entries()) {
      await send(user, 'PLAY', skipsFrom + i * 10 * SECOND, song);
      ids.push(await send(user, 'SKIP', skipsFrom + i * 10 * SECOND + 5 * SECOND, song));
    }
    return { played: [...played, ...skipped], skipIds: ids };
  };
  return { config, serving, driver, send, profile, request, burst, recommendations, scores, feedback };
}

const models = (): ServingModels => ({
  disengagement: stubDisengagement('d1'),
  userTower: stubUserTower('u1'),
});

const byId = new Map(SONGS.map((s) => [s.songId, s]));

function assertRulesHold(
  r: Recommendation,
  config: Config,
  played: readonly string[],
  allowExplicit: boolean,
) {
  const songs = r.items.map((i) => byId.get(i.songId)!);
  assert.ok(songs.every(Boolean), 'every recommended song is in the catalog');
  if (!allowExplicit)
    assert.ok(
      songs.every((s) => !s.explicit),
      'no explicit song for this listener',
    );
  assert.ok(
    songs.every((s) => !played.includes(s.songId)),
    'no song played in the session',
  );
  const count = (key: (s: (typeof songs)[number]) => string) => {
    const counts = new Map<string, number>();
    for (const s of songs) counts.set(key(s), (counts.get(key(s)) ?? 0) + 1);
    return Math.max(...counts.values());
  };
  assert.ok(count((s) => s.artistId) <= config.serving.maxPerArtist, 'artist cap');
  assert.ok(count((s) => s.genre) <= config.serving.maxPerGenre, 'genre cap');
  assert.deepEqual(
    r.items.map((i) => i.rank),
    r.items.map((_, i) => i + 1),
  );
  assert.equal(new Set(r.items.map((i) => i.songId)).size, r.items.length, 'no song twice');
}

describe('recommendation topology', () => {
  it('pushes a recommendation when a burst of skips crosses the threshold, once per cooldown', async () => {
    const w = setup(models());
    w.profile('u1');
    const { played, skipIds } = await w.burst('u1');
    const skippedAt = T0 + 12 * MINUTE + 40 * SECOND;
    await w.send('u1', 'PLAY', skippedAt, 'song-024');
    await w.send('u1', 'SKIP', skippedAt + 5 * SECOND, 'song-024');
    const [pushed, ...more] = w.recommendations.readValues();
    assert.ok(pushed, 'a recommendation was pushed without a request');
    assert.equal(more.length, 0, 'the cooldown holds back the triggers that follow');
    assert.equal(pushed.trigger, 'DISENGAGEMENT');
    assert.equal(
      pushed.triggerEventId,
      skipIds[2],
      'the third skip within two minutes crossed the threshold',
    );
    assert.ok(pushed.score! >= pushed.threshold!);
    assert.equal(pushed.threshold, 0.5, "the model's own threshold");
    assert.equal(pushed.path, 'MODEL');
    assert.equal(pushed.pathReason, null);
    assert.deepEqual(
      { d: pushed.modelVersions.disengagement, u: pushed.modelVersions.userTower },
      { d: 'd1', u: 'u1' },
    );
    assert.equal(pushed.items.length, w.config.serving.count);
    assertRulesHold(pushed, w.config, played, false);

    // After the cooldown (2 minutes), the next burst pushes again.
    for (const [i, song] of ['song-030', 'song-031', 'song-032'].entries()) {
      await w.send('u1', 'PLAY', T0 + 20 * MINUTE + i * 10 * SECOND, song);
      await w.send('u1', 'SKIP', T0 + 20 * MINUTE + i * 10 * SECOND + 5 * SECOND, song);
    }
    assert.equal(w.recommendations.readValues().length, 1);
  });

  it('scores every scoring point, and shadow-scores a challenger beside the champion', async () => {
    const w = setup({ ...models(), disengagementChallenger: stubDisengagement('d2-challenger', 0.7) });
    await w.send('u1', 'PLAY', T0, 'song-001');
    await w.send('u1', 'SKIP', T0 + 5 * SECOND, 'song-001');
    const rows = w.scores.readValues();
    assert.deepEqual(
      rows.map((r) => `${r.eventId}:${r.role}:${r.modelVersion}`),
      ['e1:champion:d1', 'e1:challenger:d2-challenger', 'e2:champion:d1', 'e2:challenger:d2-challenger'],
    );
    assert.ok(rows.every((r) => r.model === 'disengagement' && r.threshold === 0.5));
  });

  it('honours per-user and configured thresholds over the model’s', async () => {
    const w = setup(models(), {
      ENCORE_SERVING_THRESHOLD: '0.95',
      ENCORE_SERVING_USER_THRESHOLDS: '{"eager":0.2}',
    });
    await w.burst('calm');
    assert.equal(w.recommendations.readValues().length, 0, '0.9 never reaches the configured 0.95');
    await w.send('eager', 'PLAY', T0, 'song-001');
    await w.send('eager', 'SKIP', T0 + 5 * SECOND, 'song-001');
    const [r] = w.recommendations.readValues();
    assert.equal(r?.threshold, 0.2);
  });

  it('answers explicit requests, from the session when there is one and by taste or popularity when not', async () => {
    const w = setup(models());
    w.profile('listener');
    w.profile('newcomer', { favouriteGenres: ['jazz'], allowExplicit: true });
    await w.send('listener', 'PLAY', T0, 'song-005');
    await w.request('listener', 'req-1', T0 + SECOND, 3);
    await w.request('newcomer', 'req-2', T0 + SECOND);
    await w.request('stranger', 'req-3', T0 + SECOND);
    const [listener, newcomer, stranger] = w.recommendations.readValues();
    assert.deepEqual(
      [listener, newcomer, stranger].map((r) => [r?.requestId, r?.trigger, r?.path, r?.pathReason]),
      [
        ['req-1', 'EXPLICIT_REQUEST', 'MODEL', null],
        ['req-2', 'EXPLICIT_REQUEST', 'TASTE_CLUSTER_FALLBACK', 'new-user'],
        ['req-3', 'EXPLICIT_REQUEST', 'POPULARITY_FALLBACK', 'new-user'],
      ],
    );
    assert.equal(listener!.items.length, 3, 'the requested count');
    assertRulesHold(listener!, w.config, ['song-005'], false);
    assert.ok(
      newcomer!.items.filter((i) => byId.get(i.songId)!.genre === 'jazz').length >=
        w.config.serving.maxPerGenre,
      'the taste cluster leads with the favourite genre',
    );
    assertRulesHold(stranger!, w.config, [], false);
  });

  it('falls back without models: the skip-burst rule triggers, the taste cluster answers', async () => {
    const w = setup({});
    w.profile('u1', { favouriteGenres: ['rock', 'pop'] });
    const { played } = await w.burst('u1');
    const [r] = w.recommendations.readValues();
    assert.ok(r);
    assert.deepEqual([r.score, r.threshold, r.modelVersions.disengagement], [null, null, null]);
    assert.deepEqual([r.path, r.pathReason], ['TASTE_CLUSTER_FALLBACK', 'no-user-tower']);
    assert.ok(r.items.every((i) => ['rock', 'pop'].includes(byId.get(i.songId)!.genre)));
    assertRulesHold(r, w.config, played, false);
    assert.equal(w.scores.readValues().length, 0, 'no model, no model scores');
  });

  it('serves the cached candidates when the user tower is over the latency budget', async () => {
    const w = setup(models(), { ENCORE_SERVING_LATENCY_BUDGET_MS: '20', ENCORE_SERVING_COOLDOWN_MS: '0' });
    await w.send('u1', 'PLAY', T0, 'song-001');
    await w.request('u1', 'warm', T0 + SECOND);
    w.serving.use({ ...models(), userTower: stubUserTower('slow', 200) });
    await w.request('u1', 'slow', T0 + 2 * SECOND);
    await w.request('u2', 'slow-new', T0 + 2 * SECOND);
    await w.send('u3', 'PLAY', T0, 'song-001');
    await w.request('u3', 'slow-uncached', T0 + 3 * SECOND);
    const paths = w.recommendations
      .readValues()
      .map((r) => [r.requestId, r.path, r.pathReason, r.modelVersions.userTower]);
    assert.deepEqual(paths, [
      ['warm', 'MODEL', null, 'u1'],
      ['slow', 'CACHE', 'over-latency-budget', 'u1'],
      ['slow-new', 'POPULARITY_FALLBACK', 'new-user', null],
      ['slow-uncached', 'POPULARITY_FALLBACK', 'over-latency-budget', null],
    ]);
  });

  it('uses swapped models from the next batch on, with the state kept', async () => {
    const w = setup(models(), { ENCORE_SERVING_COOLDOWN_MS: '0' });
    await w.send('u1', 'PLAY', T0, 'song-001');
    await w.request('u1', 'before', T0 + SECOND);
    w.serving.use({ disengagement: stubDisengagement('d2'), userTower: stubUserTower('u2') });
    await w.send('u1', 'SKIP', T0 + 2 * SECOND, 'song-001');
    await w.request('u1', 'after', T0 + 3 * SECOND);
    const versions = w.recommendations.readValues().map((r) => [r.requestId, r.modelVersions.userTower]);
    assert.deepEqual(versions, [
      ['before', 'u1'],
      ['after', 'u2'],
    ]);
    assert.deepEqual(
      w.scores.readValues().map((s) => s.modelVersion),
      ['d1', 'd2'],
    );
  });

  it('the bandit learns from feedback, and its state is changelogged', async () => {
    const w = setup(models());
    w.profile('u1');
    const { skipIds } = await w.burst('u1');
    const [r] = w.recommendations.readValues();
    assert.ok(r && skipIds.length > 0);
    // The listener plays the first recommended song through, and skips the second.
    const at = r.eventTime + 30 * SECOND;
    await w.send('u1', 'PLAY', at, r.items[0]!.songId);
    await w.send('u1', 'PLAY', at + 60 * SECOND, r.items[1]!.songId);
    await w.send('u1', 'SKIP', at + 65 * SECOND, r.items[1]!.songId);
    await w.send('u1', 'PLAY', at + 70 * SECOND, 'song-040');
    const outcomes = w.feedback.readValues().map((f) => [f.songId, f.outcome]);
    assert.deepEqual(outcomes, [
      [r.items[0]!.songId, 'LISTENED'],
      [r.items[1]!.songId, 'SKIPPED'],
    ]);
    const bandit = w.driver.getKeyValueStore<BanditState>(BANDIT_STORE, 'u1').get(BANDIT_KEY);
    assert.equal(bandit?.updates, 2);
    const logged = w.driver.changelog(BANDIT_STORE).filter((c) => c.key === BANDIT_KEY);
    assert.equal((logged.at(-1)!.value as BanditState).updates, 2, 'the latest state is on the changelog');
  });
});
