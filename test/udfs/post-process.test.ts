import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Song } from '../../schemas/types.generated.ts';
import { makeCatalog } from '../../simulator/catalog.ts';
import { Random } from '../../simulator/random.ts';
import { type BanditState, banditUpdate, banditWidth, newBandit } from '../../udfs/bandit.ts';
import { type ListRules, postProcess, seededRandom } from '../../udfs/post-process.ts';
import { RANKING_FEATURES, type RankedSong } from '../../udfs/ranking.ts';

const DIMENSIONS = RANKING_FEATURES.length;
const [template] = makeCatalog(new Random(1), { songs: 1, start: 0, days: 1, newShare: 0 }).songs as [Song];

function ranked(
  songId: string,
  score: number,
  fields: Partial<Song> = {},
  vector?: Float32Array,
): RankedSong {
  return {
    song: { ...template, songId, explicit: false, ...fields },
    vector,
    features: new Float64Array(DIMENSIONS),
    score,
    reasons: ['for-you'],
    explored: false,
  };
}

const RULES: ListRules = {
  count: 10,
  maxPerArtist: 2,
  maxPerGenre: 4,
  mmrLambda: 0.7,
  explorationShare: 0,
  allowExplicit: true,
  recentSongIds: new Set(),
};

const ids = (items: readonly RankedSong[]) => items.map((item) => item.song.songId);
/** Random sources that never and always choose exploration, whatever the share below 1. */
const never = () => 0.999;
const always = () => 0;

/** A random ranked list: few artists and genres (so caps bind), some explicit, some vectors in clusters. */
function randomList(random: Random, size: number): RankedSong[] {
  const artists = random.int(1, 8);
  const genres = random.int(1, 5);
  const vectorShare = random.pick([0, 0.5, 1]);
  const centroids = Array.from({ length: 4 }, () => Array.from({ length: 8 }, () => random.normal()));
  const list = Array.from({ length: size }, (_, i) => {
    const centroid = random.pick(centroids);
    const vector = random.chance(vectorShare)
      ? Float32Array.from(centroid, (value) => value + random.normal(0, 0.4))
      : undefined;
    const item = ranked(
      `s${String(i).padStart(3, '0')}`,
      random.normal(),
      {
        artistId: `artist-${random.int(1, artists)}`,
        genre: `genre-${random.int(1, genres)}`,
        explicit: random.chance(0.2),
      },
      vector,
    );
    item.features = Float64Array.from({ length: DIMENSIONS }, () => random.float());
    return item;
  });
  return list.sort((a, b) => b.score - a.score);
}

function randomRules(random: Random, list: readonly RankedSong[]): ListRules {
  return {
    count: random.int(1, 20),
    maxPerArtist: random.int(1, 3),
    maxPerGenre: random.int(1, 5),
    mmrLambda: random.float(),
    explorationShare: random.between(0, 0.5),
    allowExplicit: random.chance(0.5),
    recentSongIds: new Set(list.filter(() => random.chance(0.15)).map((item) => item.song.songId)),
  };
}

function trainedBandit(random: Random): BanditState {
  const bandit = newBandit(DIMENSIONS);
  for (let step = 0; step < 30; step++)
    banditUpdate(
      bandit,
      Array.from({ length: DIMENSIONS }, () => random.float()),
      random.float(),
    );
  return bandit;
}

function countBy(items: readonly RankedSong[], key: (song: Song) => string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const { song } of items) counts.set(key(song), (counts.get(key(song)) ?? 0) + 1);
  return counts;
}

/** The reference for λ = 1 without exploration: down the ranked list, taking every song the caps allow. */
function greedyUnderCaps(candidates: readonly RankedSong[], rules: ListRules): string[] {
  const perArtist = new Map<string, number>();
  const perGenre = new Map<string, number>();
  const taken: string[] = [];
  for (const { song } of candidates) {
    if (taken.length === rules.count) break;
    const artist = perArtist.get(song.artistId) ?? 0;
    const genre = perGenre.get(song.genre) ?? 0;
    if (artist >= rules.maxPerArtist || genre >= rules.maxPerGenre) continue;
    perArtist.set(song.artistId, artist + 1);
    perGenre.set(song.genre, genre + 1);
    taken.push(song.songId);
  }
  return taken;
}

function cosineOf(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    aa += a[i]! ** 2;
    bb += b[i]! ** 2;
  }
  return dot / Math.sqrt(aa * bb);
}

describe('post-processing rules on random lists', () => {
  it('never breaks a rule, and fills the list as far as the rules allow', () => {
    const random = new Random(21);
    for (let trial = 0; trial < 500; trial++) {
      const list = randomList(random, random.int(0, 80));
      const rules = randomRules(random, list);
      const { items, removed } = postProcess(
        list,
        rules,
        trainedBandit(random),
        seededRandom(`rec-${trial}`),
      );

      const explicit = rules.allowExplicit ? [] : list.filter(({ song }) => song.explicit);
      const recent = list.filter(
        (item) => !explicit.includes(item) && rules.recentSongIds.has(item.song.songId),
      );
      const eligible = list.filter((item) => !explicit.includes(item) && !recent.includes(item));
      assert.equal(removed.explicit, explicit.length);
      assert.equal(removed.recent, recent.length);

      assert.ok(items.length <= rules.count);
      assert.equal(new Set(ids(items)).size, items.length, 'a song twice');
      for (const item of items) {
        assert.ok(rules.allowExplicit || !item.song.explicit, 'explicit song');
        assert.ok(!rules.recentSongIds.has(item.song.songId), 'recent song');
        assert.ok(
          list.some((candidate) => candidate.song === item.song),
          'a song from nowhere',
        );
        if (item.explored) assert.deepEqual(item.reasons, ['explore']);
        else assert.ok(list.includes(item), 'an exploited item should be the ranked one, untouched');
      }
      const perArtist = countBy(items, (song) => song.artistId);
      const perGenre = countBy(items, (song) => song.genre);
      for (const count of perArtist.values()) assert.ok(count <= rules.maxPerArtist, 'artist cap');
      for (const count of perGenre.values()) assert.ok(count <= rules.maxPerGenre, 'genre cap');

      const capped = removed.artistCap + removed.genreCap;
      assert.ok(capped <= eligible.length - items.length);
      if (items.length < rules.count) {
        // Short: every eligible song left out would break a cap, and the counts say so.
        const chosen = new Set(ids(items));
        for (const { song } of eligible.filter((item) => !chosen.has(item.song.songId)))
          assert.ok(
            (perArtist.get(song.artistId) ?? 0) >= rules.maxPerArtist ||
              (perGenre.get(song.genre) ?? 0) >= rules.maxPerGenre,
            `${song.songId} fits but was left out`,
          );
        assert.equal(capped, eligible.length - items.length);
      }
    }
  });

  it('with λ = 1 and no exploration, takes the relevance order under the caps', () => {
    const random = new Random(22);
    for (let trial = 0; trial < 300; trial++) {
      const list = randomList(random, random.int(0, 60));
      const rules = { ...randomRules(random, list), mmrLambda: 1, explorationShare: 0, allowExplicit: true };
      const eligible = list.filter(({ song }) => !rules.recentSongIds.has(song.songId));
      const { items } = postProcess(list, rules, newBandit(DIMENSIONS), seededRandom(`${trial}`));
      assert.deepEqual(ids(items), greedyUnderCaps(eligible, rules));
    }
  });

  it('lower λ makes lists more diverse, at the cost of relevance', () => {
    const random = new Random(23);
    const lambdas = [1, 0.7, 0.4, 0.1];
    const similarity = lambdas.map(() => 0);
    const score = lambdas.map(() => 0);
    for (let trial = 0; trial < 200; trial++) {
      const list = randomList(random, 100).map((item) => ({
        ...item,
        vector: item.vector ?? Float32Array.from({ length: 8 }, () => random.normal()),
      }));
      lambdas.forEach((mmrLambda, l) => {
        const rules = { ...RULES, maxPerArtist: 100, maxPerGenre: 100, mmrLambda };
        const { items } = postProcess(list, rules, newBandit(DIMENSIONS), never);
        let total = 0;
        let pairs = 0;
        for (let i = 0; i < items.length; i++)
          for (let j = i + 1; j < items.length; j++) {
            total += cosineOf(items[i]!.vector!, items[j]!.vector!);
            pairs++;
          }
        similarity[l]! += total / pairs;
        score[l]! += items.reduce((sum, item) => sum + item.score, 0);
      });
    }
    for (let l = 1; l < lambdas.length; l++) {
      assert.ok(
        similarity[l]! < similarity[l - 1]!,
        `λ ${lambdas[l]} no more diverse than ${lambdas[l - 1]}`,
      );
      assert.ok(score[l]! < score[l - 1]!, `λ ${lambdas[l]} no less relevant than ${lambdas[l - 1]}`);
    }
  });
});

describe('MMR', () => {
  it('passes over a near duplicate of a chosen song for a different one', () => {
    const list = [
      ranked('hit', 1, { artistId: 'a' }, Float32Array.of(1, 0)),
      ranked('hit-remix', 0.95, { artistId: 'b' }, Float32Array.of(0.99, 0.1)),
      ranked('other', 0.9, { artistId: 'c' }, Float32Array.of(0, 1)),
    ];
    const pick = (mmrLambda: number) =>
      ids(postProcess(list, { ...RULES, count: 2, mmrLambda }, newBandit(6), never).items);
    assert.deepEqual(pick(1), ['hit', 'hit-remix']);
    assert.deepEqual(pick(0.5), ['hit', 'other']);
  });

  it('counts an opposite song as unrelated, not as a duplicate', () => {
    const list = [
      ranked('hit', 1, { artistId: 'a' }, Float32Array.of(1, 0)),
      ranked('opposite', 0.9, { artistId: 'b' }, Float32Array.of(-1, 0)),
      ranked('orthogonal', 0.9, { artistId: 'c' }, Float32Array.of(0, 1)),
    ];
    const { items } = postProcess(list, { ...RULES, count: 2, mmrLambda: 0.5 }, newBandit(6), never);
    // Equally unrelated to the hit, so the tie goes to the higher-ranked one.
    assert.deepEqual(ids(items), ['hit', 'opposite']);
  });

  it('without vectors, treats the same artist as redundant, the same genre as half so', () => {
    const list = [
      ranked('a-1', 1, { artistId: 'a', genre: 'pop' }),
      ranked('a-2', 0.95, { artistId: 'a', genre: 'pop' }),
      ranked('b-pop', 0.93, { artistId: 'b', genre: 'pop' }),
      ranked('c-jazz', 0.9, { artistId: 'c', genre: 'jazz' }),
    ];
    const pick = (mmrLambda: number) =>
      ids(postProcess(list, { ...RULES, count: 2, mmrLambda }, newBandit(6), never).items);
    assert.deepEqual(pick(1), ['a-1', 'a-2']);
    // Relevance 1, 0.5, 0.3, 0: at λ 0.65, b-pop (0.195 - 0.175) beats a-2 (0.325 - 0.35) and c-jazz (0).
    assert.deepEqual(pick(0.65), ['a-1', 'b-pop']);
    assert.deepEqual(pick(0.3), ['a-1', 'c-jazz']);
  });

  it('counts what each rule removed', () => {
    const list = [
      ranked('explicit', 1, { explicit: true, artistId: 'x' }),
      ranked('recent', 0.9, { artistId: 'y' }),
      ranked('a-1', 0.8, { artistId: 'a', genre: 'pop' }),
      ranked('a-2', 0.7, { artistId: 'a', genre: 'pop' }),
      ranked('b-1', 0.6, { artistId: 'b', genre: 'pop' }),
      ranked('c-1', 0.5, { artistId: 'c', genre: 'jazz' }),
    ];
    const rules = {
      ...RULES,
      count: 3,
      mmrLambda: 1,
      maxPerArtist: 1,
      maxPerGenre: 1,
      allowExplicit: false,
      recentSongIds: new Set(['recent']),
    };
    const { items, removed } = postProcess(list, rules, newBandit(6), never);
    assert.deepEqual(ids(items), ['a-1', 'c-1']);
    assert.deepEqual(removed, { explicit: 1, recent: 1, artistCap: 1, genreCap: 1 });
  });
});

describe('exploration', () => {
  it('fills about explorationShare of the slots, marked explore', () => {
    const random = new Random(24);
    const bandit = trainedBandit(random);
    for (const explorationShare of [0, 0.1, 0.3]) {
      let slots = 0;
      let explored = 0;
      for (let list = 0; list < 2_000; list++) {
        const rules = { ...RULES, explorationShare, maxPerArtist: 100, maxPerGenre: 100 };
        const { items } = postProcess(randomList(random, 40), rules, bandit, seededRandom(`share-${list}`));
        slots += items.length;
        explored += items.filter((item) => item.explored).length;
      }
      assert.equal(slots, 20_000);
      assert.ok(
        Math.abs(explored / slots - explorationShare) < 0.01,
        `${explored / slots} for ${explorationShare}`,
      );
    }
  });

  it('explores the candidates the bandit is least sure about, under the caps', () => {
    const random = new Random(25);
    const bandit = trainedBandit(random);
    for (let trial = 0; trial < 100; trial++) {
      const list = randomList(random, 50);
      const rules = { ...randomRules(random, list), explorationShare: 1, allowExplicit: true };
      const byWidth = list
        .filter(({ song }) => !rules.recentSongIds.has(song.songId))
        .map((item, rank) => ({ item, rank, width: banditWidth(bandit, item.features) }))
        .sort((a, b) => b.width - a.width || a.rank - b.rank)
        .map(({ item }) => item);
      const { items } = postProcess(list, rules, bandit, always);
      assert.deepEqual(ids(items), greedyUnderCaps(byWidth, rules));
      assert.ok(items.every((item) => item.explored && item.reasons[0] === 'explore'));
    }
  });

  it('makes the same choices for the same seed', () => {
    const random = new Random(26);
    const list = randomList(random, 60);
    const rules = { ...RULES, explorationShare: 0.3 };
    const bandit = trainedBandit(random);
    const run = (seed: string) =>
      postProcess(list, rules, bandit, seededRandom(seed)).items.map(
        (item) => `${item.song.songId}:${item.explored}`,
      );
    assert.deepEqual(run('rec-42'), run('rec-42'));
    const outcomes = new Set(Array.from({ length: 20 }, (_, i) => run(`rec-${i}`).join()));
    assert.ok(outcomes.size > 5, 'different seeds should explore differently');
  });
});

describe('seeded random', () => {
  it('draws uniform numbers in [0, 1), the same sequence for the same seed', () => {
    const draws = (seed: string) => Array.from({ length: 10_000 }, seededRandom(seed));
    const first = draws('recommendation-1');
    assert.deepEqual(draws('recommendation-1'), first);
    assert.notDeepEqual(draws('recommendation-2'), first);
    assert.ok(first.every((value) => value >= 0 && value < 1));
    const mean = first.reduce((sum, value) => sum + value, 0) / first.length;
    assert.ok(Math.abs(mean - 0.5) < 0.01, `mean ${mean}`);
    const belowTenth = first.filter((value) => value < 0.1).length / first.length;
    assert.ok(Math.abs(belowTenth - 0.1) < 0.01, `${belowTenth} below 0.1`);
  });
});
