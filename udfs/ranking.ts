/**
 * The ranking UDF: every retrieved candidate gets a short feature vector (how well it fits the listener,
 * the session's latest intent, the hour, how new and how popular it is, whether it is of a favourite genre),
 * scored by fixed prior weights plus what the contextual bandit has learned from feedback since. The
 * features double as the explanation: the ones that added most to a score become its reasons.
 */
import type { Song } from '../schemas/types.generated.ts';
import { type BanditState, banditWeights } from './bandit.ts';
import { compareSongIds } from './catalog.ts';

export const RANKING_FEATURES = [
  'similarity',
  'recent_intent',
  'time_of_day',
  'freshness',
  'popularity',
  'favourite_genre',
] as const;

export type RankingFeature = (typeof RANKING_FEATURES)[number];

/** Where each feature sits in a feature vector. */
const FEATURE = Object.fromEntries(RANKING_FEATURES.map((name, index) => [name, index])) as Record<
  RankingFeature,
  number
>;

/**
 * The score before the bandit has learned anything: the two-tower similarity leads (it is the model of
 * this listener), the session's latest intent next, and the context features nudge within that.
 */
export const PRIOR_WEIGHTS: Record<RankingFeature, number> = {
  similarity: 1,
  recent_intent: 0.5,
  time_of_day: 0.15,
  freshness: 0.15,
  popularity: 0.2,
  favourite_genre: 0.25,
};

/** The reason a listener is shown for each feature. */
const REASON_OF: Record<RankingFeature, string> = {
  similarity: 'for-you',
  recent_intent: 'similar-to-recent',
  time_of_day: 'time-of-day',
  freshness: 'fresh',
  popularity: 'popular',
  favourite_genre: 'favourite-genre',
};

/** A song's reasons: at most this many features… */
const MAX_REASONS = 2;
/** …each of which added at least this much to the score (smaller contributions explain nothing). */
const MIN_REASON_CONTRIBUTION = 0.05;

export interface Candidate {
  song: Song;
  /** User·song from the ANN (cosine: both towers export unit vectors), or 0 on fallback paths. */
  similarity: number;
  /** The song's embedding when known. */
  vector?: Float32Array;
}

export interface RankingContext {
  /** The triggering event's time, ms since the epoch. */
  eventTime: number;
  /** 0..24, in the listener's time zone. */
  localHour: number;
  /** Embeddings of the session's latest high-intent songs. */
  recentIntent: readonly Float32Array[];
  favouriteGenres: readonly string[];
  timeOfDay: TimeOfDayProfile;
  /** Songs released or added this many days before the event count as fresh (serving.freshDays). */
  freshDays: number;
}

export interface RankedSong {
  song: Song;
  vector?: Float32Array;
  /** In `RANKING_FEATURES` order: what the bandit learns from when feedback on this song arrives. */
  features: Float64Array;
  score: number;
  reasons: string[];
  /** Chosen by an exploration slot rather than for its score. */
  explored: boolean;
}

const DAY_MS = 86_400_000;
const HOURS = 24;

/** The local hour in [0, 24) from the session features' hour_sin / hour_cos. */
export function localHourOf(hourSin: number, hourCos: number): number {
  const hour = (Math.atan2(hourSin, hourCos) * HOURS) / (2 * Math.PI);
  return hour < 0 ? hour + HOURS : hour;
}

function hourBucket(localHour: number): number {
  const hour = Math.floor(localHour) % HOURS;
  return hour < 0 ? hour + HOURS : hour;
}

/** The plain, serialisable state of a `TimeOfDayProfile`: per genre, listened plays in each local hour. */
export interface TimeOfDayJson {
  playsByGenre: Record<string, number[]>;
}

/**
 * When each genre is listened to, learned online from listened plays: counts per (local hour, genre). The
 * lift compares the genre's spread over the day with that of all plays: P(hour | genre) / P(hour).
 */
export class TimeOfDayProfile {
  /**
   * Pseudo-plays spread over the day like all plays, added to every genre's own: a genre heard a few
   * times is "like everything else" until its own plays outweigh these (4 per hour).
   */
  static readonly SMOOTHING_PLAYS = 4 * HOURS;

  private readonly playsByGenre = new Map<string, number[]>();
  private readonly playsByHour = new Array<number>(HOURS).fill(0);
  private readonly genreTotals = new Map<string, number>();
  private total = 0;

  record(localHour: number, genre: string, plays = 1): void {
    const hour = hourBucket(localHour);
    let byHour = this.playsByGenre.get(genre);
    if (!byHour) {
      byHour = new Array<number>(HOURS).fill(0);
      this.playsByGenre.set(genre, byHour);
    }
    byHour[hour]! += plays;
    this.playsByHour[hour]! += plays;
    this.genreTotals.set(genre, (this.genreTotals.get(genre) ?? 0) + plays);
    this.total += plays;
  }

  /**
   * log₂ of how much more of the genre's plays fall in this hour than of all plays, so 1 means twice as
   * often at this hour and -1 half as often; clipped to [-1, 1], 0 without plays of the genre or the hour.
   */
  lift(localHour: number, genre: string): number {
    const hour = hourBucket(localHour);
    const genreTotal = this.genreTotals.get(genre);
    const hourPlays = this.playsByHour[hour]!;
    if (!genreTotal || hourPlays === 0) return 0;
    const hourShare = hourPlays / this.total;
    const smoothing = TimeOfDayProfile.SMOOTHING_PLAYS;
    const genreHourShare =
      (this.playsByGenre.get(genre)![hour]! + smoothing * hourShare) / (genreTotal + smoothing);
    return Math.max(-1, Math.min(1, Math.log2(genreHourShare / hourShare)));
  }

  toJSON(): TimeOfDayJson {
    return { playsByGenre: Object.fromEntries(this.playsByGenre) };
  }

  /**
   * Restores a profile from its `toJSON()` state as a store returns it: nothing yet (undefined, null) is an
   * empty profile, malformed state throws.
   */
  static from(json: TimeOfDayJson | null | undefined): TimeOfDayProfile {
    const profile = new TimeOfDayProfile();
    for (const [genre, byHour] of Object.entries(json?.playsByGenre ?? {})) {
      if (!Array.isArray(byHour) || byHour.length !== HOURS)
        throw new RangeError(`time-of-day plays of ${genre} must be ${HOURS} hourly counts`);
      byHour.forEach((plays, hour) => {
        if (!(Number.isFinite(plays) && plays >= 0))
          throw new RangeError(`time-of-day plays of ${genre} at ${hour} h is ${plays}, not a count`);
        if (plays > 0) profile.record(hour, genre, plays);
      });
    }
    return profile;
  }
}

function dot(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length)
    throw new RangeError(`embeddings of ${a.length} and ${b.length} dimensions come from different models`);
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += a[i]! * b[i]!;
  return sum;
}

/** |v|, for `cosine`. */
export function norm(vector: Float32Array): number {
  return Math.sqrt(dot(vector, vector));
}

/**
 * Cosine of two vectors from their norms, which callers compute once per vector rather than once per
 * pair; 0 when either is all zeros (no direction, no similarity).
 */
export function cosine(a: Float32Array, aNorm: number, b: Float32Array, bNorm: number): number {
  return aNorm === 0 || bNorm === 0 ? 0 : dot(a, b) / (aNorm * bNorm);
}

/** 1 for a song released or added at the event, falling linearly to 0 at `freshDays` old. */
function freshness(song: Song, eventTime: number, freshDays: number): number {
  const newest = Math.max(song.releaseDate * DAY_MS, song.addedAt);
  const ageDays = (eventTime - newest) / DAY_MS;
  // A release dated after the event (time zones, pre-releases) is as fresh as it gets.
  return Math.max(0, 1 - Math.max(0, ageDays) / freshDays);
}

function featuresOf(candidate: Candidate, context: RankingContext, intentNorms: Float64Array): Float64Array {
  const { song, vector } = candidate;
  const features = new Float64Array(RANKING_FEATURES.length);
  features[FEATURE.similarity] = candidate.similarity;
  if (vector && context.recentIntent.length > 0) {
    const vectorNorm = norm(vector);
    let closest = -1;
    for (let i = 0; i < intentNorms.length; i++)
      closest = Math.max(closest, cosine(vector, vectorNorm, context.recentIntent[i]!, intentNorms[i]!));
    features[FEATURE.recent_intent] = closest;
  }
  features[FEATURE.time_of_day] = context.timeOfDay.lift(context.localHour, song.genre);
  features[FEATURE.freshness] = freshness(song, context.eventTime, context.freshDays);
  features[FEATURE.popularity] = song.popularity;
  features[FEATURE.favourite_genre] = context.favouriteGenres.includes(song.genre) ? 1 : 0;
  return features;
}

/**
 * The feature vector of one candidate, in `RANKING_FEATURES` order, each in [-1, 1] or [0, 1]:
 * similarity as given, recent_intent the closest cosine to the session's intent songs (0 without them or
 * without the song's vector), time_of_day the profile's lift, freshness, popularity, favourite_genre 0/1.
 */
export function rankingFeatures(candidate: Candidate, context: RankingContext): Float64Array {
  return featuresOf(candidate, context, Float64Array.from(context.recentIntent, norm));
}

/** The features that added most to a score (weight × value), largest first. */
function reasonsFor(features: Float64Array, weights: Float64Array): string[] {
  const reasons: { feature: RankingFeature; contribution: number }[] = [];
  RANKING_FEATURES.forEach((feature, i) => {
    const contribution = weights[i]! * features[i]!;
    if (contribution >= MIN_REASON_CONTRIBUTION) reasons.push({ feature, contribution });
  });
  return reasons
    .sort((a, b) => b.contribution - a.contribution)
    .slice(0, MAX_REASONS)
    .map(({ feature }) => REASON_OF[feature]);
}

/**
 * Scores every candidate by PRIOR_WEIGHTS·x + banditMean(bandit, x), best first (ties by song id, so the
 * order does not depend on retrieval's). The bandit's weights are taken once for the whole list.
 */
export function rankCandidates(
  candidates: Candidate[],
  context: RankingContext,
  bandit: BanditState,
): RankedSong[] {
  if (bandit.dimensions !== RANKING_FEATURES.length)
    throw new RangeError(
      `the ranking bandit has ${bandit.dimensions} dimensions, the ranking ${RANKING_FEATURES.length} features`,
    );
  const weights = banditWeights(bandit);
  RANKING_FEATURES.forEach((feature, i) => {
    weights[i]! += PRIOR_WEIGHTS[feature];
  });
  const intentNorms = Float64Array.from(context.recentIntent, norm);
  const ranked = candidates.map((candidate): RankedSong => {
    const features = featuresOf(candidate, context, intentNorms);
    let score = 0;
    for (let i = 0; i < features.length; i++) score += weights[i]! * features[i]!;
    const { song, vector } = candidate;
    return { song, vector, features, score, reasons: reasonsFor(features, weights), explored: false };
  });
  return ranked.sort((a, b) => b.score - a.score || compareSongIds(a.song, b.song));
}
