import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Song } from '../../schemas/types.generated.ts';
import { makeCatalog } from '../../simulator/catalog.ts';
import { Random } from '../../simulator/random.ts';
import { banditMean, banditUpdate, newBandit } from '../../udfs/bandit.ts';
import {
  type Candidate,
  localHourOf,
  PRIOR_WEIGHTS,
  RANKING_FEATURES,
  type RankingContext,
  rankCandidates,
  rankingFeatures,
  TimeOfDayProfile,
} from '../../udfs/ranking.ts';

const DAY = 86_400_000;
const NOW = Date.UTC(2026, 5, 1, 12);
const [template] = makeCatalog(new Random(1), { songs: 1, start: NOW, days: 1, newShare: 0 }).songs as [Song];
/** A song released and added a year before NOW, so not fresh unless a test says so. */
const song = (songId: string, fields: Partial<Song> = {}): Song => ({
  ...template,
  songId,
  releaseDate: Math.floor((NOW - 365 * DAY) / DAY),
  addedAt: NOW - 365 * DAY,
  ...fields,
});

const VOCABULARY = new Set([
  'for-you',
  'similar-to-recent',
  'time-of-day',
  'fresh',
  'popular',
  'favourite-genre',
]);

function context(fields: Partial<RankingContext> = {}): RankingContext {
  return {
    eventTime: NOW,
    localHour: 12,
    recentIntent: [],
    favouriteGenres: [],
    timeOfDay: new TimeOfDayProfile(),
    freshDays: 30,
    ...fields,
  };
}

const feature = (features: Float64Array, name: (typeof RANKING_FEATURES)[number]) =>
  features[RANKING_FEATURES.indexOf(name)]!;

describe('local hour from the session features', () => {
  it('inverts hour_sin / hour_cos into [0, 24)', () => {
    for (let hour = 0; hour < 24; hour += 0.25) {
      const angle = (2 * Math.PI * hour) / 24;
      const back = localHourOf(Math.sin(angle), Math.cos(angle));
      assert.ok(Math.abs(back - hour) < 1e-9, `${hour} came back as ${back}`);
    }
  });
});

describe('time-of-day profile', () => {
  /** Jazz mostly at night, pop mostly by day, rock all day long. */
  function learned(): TimeOfDayProfile {
    const profile = new TimeOfDayProfile();
    const random = new Random(8);
    for (let play = 0; play < 20_000; play++) {
      const hour = random.between(0, 24);
      const night = hour >= 21 || hour < 3;
      const genre = random.chance(0.4) ? 'rock' : random.chance(night ? 0.8 : 0.2) ? 'jazz' : 'pop';
      profile.record(hour, genre);
    }
    return profile;
  }

  it('says nothing without data', () => {
    const profile = new TimeOfDayProfile();
    assert.equal(profile.lift(12, 'pop'), 0);
    profile.record(12, 'pop');
    assert.equal(profile.lift(12, 'jazz'), 0);
    assert.equal(profile.lift(3, 'pop'), 0);
  });

  it('lifts a genre at the hours it is listened to more, lowers it at the others', () => {
    const profile = learned();
    assert.ok(profile.lift(23, 'jazz') > 0.5);
    assert.ok(profile.lift(1.5, 'jazz') > 0.5);
    assert.ok(profile.lift(12, 'jazz') < -0.5);
    assert.ok(profile.lift(12, 'pop') > 0.1);
    assert.ok(profile.lift(23, 'pop') < -0.5);
    for (let hour = 0; hour < 24; hour++)
      assert.ok(Math.abs(profile.lift(hour, 'rock')) < 0.15, `rock at ${hour}`);
  });

  it('clips to [-1, 1] and smooths hours with few plays towards 0', () => {
    const profile = new TimeOfDayProfile();
    for (let hour = 0; hour < 24; hour++) for (let play = 0; play < 100; play++) profile.record(hour, 'pop');
    for (let play = 0; play < 1_000; play++) profile.record(3, 'jazz');
    assert.equal(profile.lift(3, 'jazz'), 1);
    assert.equal(profile.lift(10, 'jazz'), -1);
    const sparse = new TimeOfDayProfile();
    for (let play = 0; play < 1_000; play++) sparse.record(play % 24, 'pop');
    sparse.record(3, 'jazz');
    const lift = sparse.lift(3, 'jazz');
    assert.ok(lift > 0 && lift < 0.35, `one play lifted jazz to ${lift}`);
  });

  it('survives a JSON round trip, starts empty from an empty store, rejects malformed state', () => {
    const profile = learned();
    const restored = TimeOfDayProfile.from(JSON.parse(JSON.stringify(profile)));
    for (const genre of ['jazz', 'pop', 'rock', 'folk'])
      for (let hour = 0; hour < 24; hour++)
        assert.equal(restored.lift(hour, genre), profile.lift(hour, genre));
    assert.equal(TimeOfDayProfile.from(undefined).lift(12, 'pop'), 0);
    assert.deepEqual(TimeOfDayProfile.from(null).toJSON(), { playsByGenre: {} });
    assert.throws(() => TimeOfDayProfile.from({ playsByGenre: { pop: [1, 2, 3] } }), /24 hourly counts/);
    assert.throws(
      () => TimeOfDayProfile.from({ playsByGenre: { pop: new Array(24).fill(-1) } }),
      /pop at 0 h is -1/,
    );
  });
});

describe('ranking features', () => {
  it('passes similarity and popularity through and flags favourite genres', () => {
    const features = rankingFeatures(
      { song: song('a', { popularity: 0.7, genre: 'jazz' }), similarity: 0.42 },
      context({ favouriteGenres: ['pop', 'jazz'] }),
    );
    assert.equal(features.length, RANKING_FEATURES.length);
    assert.equal(feature(features, 'similarity'), 0.42);
    assert.equal(feature(features, 'popularity'), 0.7);
    assert.equal(feature(features, 'favourite_genre'), 1);
    const other = rankingFeatures({ song: song('b', { genre: 'metal' }), similarity: 0 }, context());
    assert.equal(feature(other, 'favourite_genre'), 0);
  });

  it('recent intent is the closest cosine to the session intent songs, 0 without them or a vector', () => {
    const intent = [Float32Array.of(3, 0), Float32Array.of(0, -2)];
    const candidate = { song: song('a'), similarity: 0, vector: Float32Array.of(2, 2) };
    assert.ok(
      Math.abs(
        feature(rankingFeatures(candidate, context({ recentIntent: intent })), 'recent_intent') -
          Math.SQRT1_2,
      ) < 1e-6,
    );
    const opposite = { ...candidate, vector: Float32Array.of(-1, 1) };
    assert.ok(
      Math.abs(
        feature(rankingFeatures(opposite, context({ recentIntent: intent })), 'recent_intent') + Math.SQRT1_2,
      ) < 1e-6,
    );
    assert.equal(feature(rankingFeatures(candidate, context()), 'recent_intent'), 0);
    assert.equal(
      feature(
        rankingFeatures({ song: song('b'), similarity: 0 }, context({ recentIntent: intent })),
        'recent_intent',
      ),
      0,
    );
  });

  it('freshness decays from 1 at release to 0 at freshDays, from the newer of release and catalog entry', () => {
    const freshness = (fields: Partial<Song>) =>
      feature(
        rankingFeatures({ song: song('a', fields), similarity: 0 }, context({ freshDays: 30 })),
        'freshness',
      );
    const releasedDaysAgo = (days: number) => ({ releaseDate: (NOW - days * DAY) / DAY });
    assert.equal(freshness(releasedDaysAgo(0)), 1);
    assert.equal(freshness(releasedDaysAgo(15)), 0.5);
    assert.ok(freshness(releasedDaysAgo(3)) > freshness(releasedDaysAgo(20)));
    assert.equal(freshness(releasedDaysAgo(30)), 0);
    assert.equal(freshness(releasedDaysAgo(400)), 0);
    assert.equal(freshness(releasedDaysAgo(-2)), 1);
    // An old release that has just entered the catalog is new to listeners.
    assert.equal(freshness({ ...releasedDaysAgo(4000), addedAt: NOW - 6 * DAY }), 0.8);
  });

  it('time of day is the profile lift of the song genre at the local hour', () => {
    const timeOfDay = new TimeOfDayProfile();
    for (let play = 0; play < 500; play++) timeOfDay.record(play % 24, 'pop');
    for (let play = 0; play < 200; play++) timeOfDay.record(22, 'jazz');
    const at = (localHour: number) =>
      feature(
        rankingFeatures(
          { song: song('a', { genre: 'jazz' }), similarity: 0 },
          context({ timeOfDay, localHour }),
        ),
        'time_of_day',
      );
    assert.equal(at(22.5), timeOfDay.lift(22.5, 'jazz'));
    assert.ok(at(22.5) > 0);
    assert.ok(at(9) < 0);
  });
});

describe('rankCandidates', () => {
  function randomCandidates(random: Random, count: number): Candidate[] {
    return Array.from({ length: count }, (_, i) => ({
      song: song(`s${String(i).padStart(3, '0')}`, {
        popularity: random.float(),
        genre: random.pick(['pop', 'jazz', 'rock']),
        releaseDate: Math.floor((NOW - random.between(0, 90) * DAY) / DAY),
      }),
      similarity: random.between(-1, 1),
      vector: Float32Array.from({ length: 8 }, () => random.normal()),
    }));
  }

  it('scores PRIOR_WEIGHTS·x + banditMean(x), best first', () => {
    const random = new Random(9);
    const bandit = newBandit(RANKING_FEATURES.length);
    for (let step = 0; step < 50; step++)
      banditUpdate(
        bandit,
        Array.from({ length: RANKING_FEATURES.length }, () => random.float()),
        random.float(),
      );
    const ctx = context({
      recentIntent: [Float32Array.from({ length: 8 }, () => random.normal())],
      favouriteGenres: ['jazz'],
    });
    const ranked = rankCandidates(randomCandidates(random, 200), ctx, bandit);
    assert.equal(ranked.length, 200);
    for (const item of ranked) {
      const prior = RANKING_FEATURES.reduce(
        (sum, name, i) => sum + PRIOR_WEIGHTS[name] * item.features[i]!,
        0,
      );
      assert.ok(Math.abs(item.score - (prior + banditMean(bandit, item.features))) < 1e-12);
      assert.equal(item.explored, false);
    }
    for (let i = 1; i < ranked.length; i++) assert.ok(ranked[i - 1]!.score >= ranked[i]!.score);
  });

  it('breaks ties by song id, whatever the input order', () => {
    const bandit = newBandit(RANKING_FEATURES.length);
    const twins = ['b', 'c', 'a'].map((id) => ({ song: song(id), similarity: 0.3 }));
    assert.deepEqual(
      rankCandidates(twins, context(), bandit).map((r) => r.song.songId),
      ['a', 'b', 'c'],
    );
  });

  it('lets what the bandit learned reorder the priors', () => {
    const familiar = { song: song('familiar'), similarity: 0.5 };
    const fresh = { song: song('fresh', { releaseDate: NOW / DAY - 1 }), similarity: 0.3 };
    const bandit = newBandit(RANKING_FEATURES.length);
    const order = () => rankCandidates([familiar, fresh], context(), bandit).map((r) => r.song.songId);
    assert.deepEqual(order(), ['familiar', 'fresh']);
    // Feedback: fresh songs listened to, others skipped.
    const ctx = context();
    for (let step = 0; step < 200; step++) {
      banditUpdate(bandit, rankingFeatures(fresh, ctx), 1);
      banditUpdate(bandit, rankingFeatures(familiar, ctx), 0);
    }
    assert.deepEqual(order(), ['fresh', 'familiar']);
  });

  it('explains a score by the features that added most to it', () => {
    const bandit = newBandit(RANKING_FEATURES.length);
    const ranked = rankCandidates(
      [
        { song: song('match', { popularity: 0.1, genre: 'metal' }), similarity: 0.9 },
        { song: song('fallback', { popularity: 0.95, genre: 'jazz' }), similarity: 0 },
        { song: song('nothing', { popularity: 0, genre: 'metal' }), similarity: -0.5 },
      ],
      context({ favouriteGenres: ['jazz'] }),
      bandit,
    );
    const reasons = Object.fromEntries(ranked.map((r) => [r.song.songId, r.reasons]));
    assert.deepEqual(reasons.match, ['for-you']);
    assert.deepEqual(reasons.fallback, ['favourite-genre', 'popular']);
    assert.deepEqual(reasons.nothing, []);

    const random = new Random(10);
    const many = rankCandidates(randomCandidates(random, 300), context({ favouriteGenres: ['pop'] }), bandit);
    for (const { reasons: list } of many) {
      assert.ok(list.length <= 2);
      for (const reason of list) assert.ok(VOCABULARY.has(reason), reason);
    }
  });

  it('refuses a bandit of another feature set', () => {
    assert.throws(
      () => rankCandidates([{ song: song('a'), similarity: 0 }], context(), newBandit(4)),
      /4 dimensions, the ranking 6 features/,
    );
  });
});
