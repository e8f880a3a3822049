/**
 * The list rules applied to a ranked candidate list: songs the listener must not get (explicit ones when
 * the profile disallows them, songs played recently) go first; then the list is filled slot by slot by
 * maximal marginal relevance (Carbonell & Goldstein 1998) under per-artist and per-genre caps, and a share
 * of the slots goes to the candidate the contextual bandit is least sure about, so that it keeps learning
 * beyond what it already ranks high. Randomness comes in as a function, seeded from the recommendation, so
 * a replayed record makes the same list.
 */
import { hash } from 'node:crypto';
import prand from 'pure-rand';
import { type BanditState, banditWidth } from './bandit.ts';
import { cosine, norm, type RankedSong } from './ranking.ts';

export interface ListRules {
  /** Songs in the list (serving.count). */
  count: number;
  maxPerArtist: number;
  maxPerGenre: number;
  /** 1 ranks by relevance only; lower values trade relevance for diversity. */
  mmrLambda: number;
  /** Probability that a slot is filled by exploration. */
  explorationShare: number;
  /** The listener's profile setting; false drops explicit songs. */
  allowExplicit: boolean;
  recentSongIds: ReadonlySet<string>;
}

/** Candidates each rule kept out of the list. */
export interface RemovedCounts {
  explicit: number;
  recent: number;
  /** Candidates that would have taken a slot (they beat the song that did) but for the artist cap… */
  artistCap: number;
  /** …or, their artist being under its cap, the genre cap. */
  genreCap: number;
}

export interface ProcessedList {
  /** In slot order. */
  items: RankedSong[];
  removed: RemovedCounts;
}

/** Similarity of two songs without both embeddings: the same artist is as redundant as it gets. */
const SAME_ARTIST_SIMILARITY = 1;
const SAME_GENRE_SIMILARITY = 0.5;

/** A candidate's progress through the slots. */
const OPEN = 0;
const CHOSEN = 1;
/** Counted as kept out by a cap; caps only tighten, so it stays out. */
const CAPPED = 2;

/**
 * How redundant `b` is next to `a`: the cosine of their embeddings when both are known (an opposite
 * direction is no more redundant than an unrelated one, so it floors at 0), else from artist and genre.
 */
function similarity(a: RankedSong, aNorm: number, b: RankedSong, bNorm: number): number {
  if (a.vector && b.vector) return Math.max(0, cosine(a.vector, aNorm, b.vector, bNorm));
  if (a.song.artistId === b.song.artistId) return SAME_ARTIST_SIMILARITY;
  return a.song.genre === b.song.genre ? SAME_GENRE_SIMILARITY : 0;
}

/** Scores rescaled to [0, 1] over the pool, so that λ weighs relevance the same whatever the score scale. */
function normalisedRelevance(pool: readonly RankedSong[]): Float64Array {
  let lowest = Infinity;
  let highest = -Infinity;
  for (const { score } of pool) {
    lowest = Math.min(lowest, score);
    highest = Math.max(highest, score);
  }
  const range = highest - lowest;
  return Float64Array.from(pool, ({ score }) => (range > 0 ? (score - lowest) / range : 1));
}

export function postProcess(
  ranked: RankedSong[],
  rules: ListRules,
  bandit: BanditState,
  random: () => number,
): ProcessedList {
  const removed: RemovedCounts = { explicit: 0, recent: 0, artistCap: 0, genreCap: 0 };
  const pool: RankedSong[] = [];
  for (const candidate of ranked) {
    if (candidate.song.explicit && !rules.allowExplicit) removed.explicit++;
    else if (rules.recentSongIds.has(candidate.song.songId)) removed.recent++;
    else pool.push(candidate);
  }

  const relevance = normalisedRelevance(pool);
  const norms = Float64Array.from(pool, ({ vector }) => (vector ? norm(vector) : 0));
  /** Each candidate's largest similarity to the songs chosen so far: MMR's redundancy term. */
  const redundancy = new Float64Array(pool.length);
  const status = new Uint8Array(pool.length);
  /** The slot's value of each open candidate: MMR, or the bandit's width in an exploration slot. */
  const values = new Float64Array(pool.length);
  let widths: Float64Array | undefined;
  const perArtist = new Map<string, number>();
  const perGenre = new Map<string, number>();
  const artistFull = ({ song }: RankedSong) => (perArtist.get(song.artistId) ?? 0) >= rules.maxPerArtist;
  const genreFull = ({ song }: RankedSong) => (perGenre.get(song.genre) ?? 0) >= rules.maxPerGenre;

  const items: RankedSong[] = [];
  while (items.length < rules.count) {
    const exploring = random() < rules.explorationShare;
    if (exploring) widths ??= Float64Array.from(pool, ({ features }) => banditWidth(bandit, features));
    let best = -1;
    for (let i = 0; i < pool.length; i++) {
      if (status[i] !== OPEN) continue;
      values[i] = exploring
        ? widths![i]!
        : rules.mmrLambda * relevance[i]! - (1 - rules.mmrLambda) * redundancy[i]!;
      // Strictly greater: ties go to the earlier, higher-ranked candidate.
      if (!artistFull(pool[i]!) && !genreFull(pool[i]!) && (best < 0 || values[i]! > values[best]!)) best = i;
    }
    // Candidates left open that beat the pick can only have been capped.
    for (let i = 0; i < pool.length; i++) {
      if (status[i] !== OPEN || i === best || (best >= 0 && values[i]! <= values[best]!)) continue;
      if (artistFull(pool[i]!)) removed.artistCap++;
      else if (genreFull(pool[i]!)) removed.genreCap++;
      else continue;
      status[i] = CAPPED;
    }
    if (best < 0) break;

    const chosen = pool[best]!;
    status[best] = CHOSEN;
    perArtist.set(chosen.song.artistId, (perArtist.get(chosen.song.artistId) ?? 0) + 1);
    perGenre.set(chosen.song.genre, (perGenre.get(chosen.song.genre) ?? 0) + 1);
    items.push(exploring ? { ...chosen, reasons: ['explore'], explored: true } : chosen);
    for (let i = 0; i < pool.length; i++) {
      if (status[i] === OPEN)
        redundancy[i] = Math.max(redundancy[i]!, similarity(pool[i]!, norms[i]!, chosen, norms[best]!));
    }
  }
  return { items, removed };
}

const TWO_TO_32 = 2 ** 32;

/**
 * Uniform numbers in [0, 1) from a string seed (a recommendation id): xoroshiro128+ (pure-rand) seeded by
 * the first 32 bits of the seed's SHA-256, so a replayed record draws the same numbers.
 */
export function seededRandom(seed: string): () => number {
  const generator = prand.xoroshiro128plus(hash('sha256', seed, 'buffer').readInt32LE(0));
  return () => (generator.unsafeNext() >>> 0) / TWO_TO_32;
}
