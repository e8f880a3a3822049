/**
 * The recommender: turns a trigger (a scoring point over its user's threshold, or a client's request) into
 * a recommendation, micro-batched per poll:
 *
 *   user tower (ONNX) → ANN top-K over the song embeddings → ranking UDF + contextual bandit → post-processing
 *
 * Every list says which path produced it. MODEL: the models and the index. CACHE: the user's candidates
 * from a recent MODEL answer, when inference is over the latency budget or failing. TASTE_CLUSTER_FALLBACK /
 * POPULARITY_FALLBACK: no user tower or index, a new user (no listening yet), and nothing cached: the most
 * popular songs of the user's favourite genres (or of what they listened to through), else of everything.
 *
 * State (changelogged, so it survives restarts and moves with the partition): per user, the latest scoring
 * point and the last push (cooldown); per task, the bandit and the time-of-day profile, and each list's
 * ranking features until its feedback comes (see banditLearner). The candidate cache is volatile.
 */
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { LRUCache } from 'lru-cache';
import type { Config } from '../../core/config.ts';
import type {
  Recommendation,
  RecommendationRequest,
  ServingPath,
  SessionFeatures,
  UserProfile,
} from '../../schemas/types.generated.ts';
import { type BanditState, newBandit } from '../../udfs/bandit.ts';
import type { UserTowerModel } from '../../udfs/onnx.ts';
import { postProcess, seededRandom } from '../../udfs/post-process.ts';
import {
  type Candidate,
  localHourOf,
  RANKING_FEATURES,
  rankCandidates,
  TimeOfDayProfile,
} from '../../udfs/ranking.ts';
import { FEATURE_SPEC } from '../listening/features.ts';
import type { ProcessorContext, ProcessorSupplier, StreamRecord } from '../streams/api.ts';
import type { KeyValueStore } from '../streams/stores.ts';
import type { ScoredPoint } from './scorer.ts';
import {
  disengagementTriggers,
  postProcessingRemovals,
  recommendationBuildSeconds,
  recommendationsMade,
  type Serving,
} from './serving.ts';

export const CONTEXT_STORE = 'listener-context';
export const BANDIT_STORE = 'bandit';
export const DECISIONS_STORE = 'ranking-decisions';
export const BANDIT_KEY = 'linucb';
export const TIME_OF_DAY_KEY = 'time-of-day';
/** Names the ranking function in every recommendation (modelVersions.ranker). */
export const RANKER_VERSION = `prior+linucb/${RANKING_FEATURES.join(',')}`;

export type RecommenderInput =
  | { kind: 'point'; point: ScoredPoint }
  | { kind: 'request'; request: RecommendationRequest };

/** What the recommender keeps per user. */
export interface ListenerContext {
  /** The latest scoring point (what an explicit request is answered from). */
  features: SessionFeatures;
  /** Event time of the last disengagement push. */
  lastPushAt: number | null;
}

/** A list's ranking features per song, kept until its feedback arrives (or the feedback window passes). */
export interface RankingDecision {
  at: number;
  items: { songId: string; features: number[] }[];
}

export interface RecommenderRules {
  serving: Config['serving'];
  listenedMs: number;
  /** Decisions older than this (event time) will get no more feedback. */
  decisionTtlMs: number;
  /** A user's context older than this (event time) is dropped. */
  contextTtlMs: number;
}

interface Job {
  record: StreamRecord<string, unknown>;
  user: string;
  recommendationId: string;
  trigger: 'DISENGAGEMENT' | 'EXPLICIT_REQUEST';
  triggerEventId: string | null;
  requestId: string | null;
  score: number | null;
  threshold: number | null;
  disengagementModel: string | null;
  eventTime: number;
  count: number;
  features: SessionFeatures | null;
}

interface CachedCandidates {
  modelVersion: string;
  matches: { songId: string; score: number }[];
}

type Embedded =
  | { kind: 'embedded'; vectors: Float32Array[] }
  | { kind: 'fallback'; reason: 'no-user-tower' | 'over-latency-budget' | 'inference-failed' };

const HOUR_SIN = FEATURE_SPEC.numeric.findIndex((f) => f.name === 'hour_sin');
const HOUR_COS = FEATURE_SPEC.numeric.findIndex((f) => f.name === 'hour_cos');
/** High-intent songs whose embeddings make the "similar to recent" signal. */
const RECENT_INTENT_SONGS = 5;

export function recommendationId(user: string, cause: string): string {
  return `rec-${createHash('sha256').update(`${user}\u0000${cause}`).digest('hex').slice(0, 24)}`;
}

export function recommender(
  serving: Serving,
  rules: RecommenderRules,
  profilesStore: string,
): ProcessorSupplier<string, RecommenderInput, string, Recommendation> {
  const config = rules.serving;
  return () => {
    let context: ProcessorContext<string, Recommendation>;
    let listeners: KeyValueStore<ListenerContext>;
    let banditStore: KeyValueStore<unknown>;
    let decisions: KeyValueStore<RankingDecision>;
    let profiles: KeyValueStore<UserProfile | null>;
    let jobs: Job[] = [];
    const cache =
      config.cacheUsers > 0
        ? new LRUCache<string, CachedCandidates>({
            max: config.cacheUsers,
            ttl: config.cacheTtlMs || undefined,
          })
        : undefined;

    // Read from the store once (after restoration), then kept live: this processor is its only writer, and
    // every change is put back so the changelog has it. Rebuilding it per play would parse it per event.
    let timeOfDayProfile: TimeOfDayProfile | undefined;
    const timeOfDay = () =>
      (timeOfDayProfile ??= TimeOfDayProfile.from(banditStore.get(TIME_OF_DAY_KEY) as never));

    function onPoint(record: StreamRecord<string, unknown>, point: ScoredPoint) {
      const { features } = point;
      const previous = listeners.get(record.key);
      const listener: ListenerContext = { features, lastPushAt: previous?.lastPushAt ?? null };
      learnTimeOfDay(features);
      if (point.triggered && config.push === 'off') disengagementTriggers.inc({ outcome: 'push-off' });
      else if (point.triggered) {
        const cooling =
          listener.lastPushAt !== null && features.timestamp - listener.lastPushAt < config.cooldownMs;
        disengagementTriggers.inc({ outcome: cooling ? 'cooldown' : 'pushed' });
        if (!cooling) {
          listener.lastPushAt = features.timestamp;
          jobs.push({
            record,
            user: record.key,
            recommendationId: recommendationId(record.key, `event:${features.eventId}`),
            trigger: 'DISENGAGEMENT',
            triggerEventId: features.eventId,
            requestId: null,
            score: point.score,
            threshold: point.threshold,
            disengagementModel: point.modelVersion,
            eventTime: features.timestamp,
            count: config.count,
            features,
          });
        }
      }
      listeners.put(record.key, listener);
    }

    /** A new play means the previous one is over: if it was listened to, its genre fits this hour. */
    function learnTimeOfDay(features: SessionFeatures) {
      if (features.eventType !== 'PLAY' || features.seqSongIds.length < 2) return;
      const previous = features.seqSongIds.length - 2;
      const listened =
        !features.seqSkipped[previous] && features.seqDwellSeconds[previous]! * 1000 >= rules.listenedMs;
      const song = listened ? serving.catalog.get(features.seqSongIds[previous]!) : undefined;
      if (!song) return;
      const profile = timeOfDay();
      profile.record(localHour(features), song.genre);
      banditStore.put(TIME_OF_DAY_KEY, profile.toJSON());
    }

    function onRequest(record: StreamRecord<string, unknown>, request: RecommendationRequest) {
      const features = listeners.get(record.key)?.features ?? null;
      jobs.push({
        record,
        user: record.key,
        recommendationId: recommendationId(record.key, `request:${request.requestId}`),
        trigger: 'EXPLICIT_REQUEST',
        triggerEventId: null,
        requestId: request.requestId,
        score: null,
        threshold: null,
        disengagementModel: null,
        eventTime: request.requestedAt,
        count: Math.min(100, Math.max(1, request.count ?? config.count)),
        features,
      });
    }

    /** The user tower over the batch, unless it is missing, failing or slower than the latency budget. */
    async function embed(tower: UserTowerModel | undefined, points: SessionFeatures[]): Promise<Embedded> {
      if (!tower) return { kind: 'fallback', reason: 'no-user-tower' };
      if (points.length === 0) return { kind: 'embedded', vectors: [] };
      const inference = tower.embed(points).then(
        (vectors) => ({ kind: 'embedded', vectors }) as const,
        () => ({ kind: 'fallback', reason: 'inference-failed' }) as const,
      );
      const timer = new AbortController();
      const outcome = await Promise.race([
        inference,
        sleep(config.latencyBudgetMs, { kind: 'fallback', reason: 'over-latency-budget' } as const, {
          signal: timer.signal,
        }).catch(() => ({ kind: 'fallback', reason: 'over-latency-budget' }) as const),
      ]);
      timer.abort();
      if (outcome.kind === 'fallback' && outcome.reason === 'over-latency-budget') {
        // The answer still comes: it refreshes the cache for the users' next lists.
        void inference.then((late) => {
          if (late.kind !== 'embedded') return;
          for (const [i, vector] of late.vectors.entries()) {
            const { userId, seqSongIds } = points[i]!;
            cacheCandidates(tower, userId, vector, new Set(seqSongIds));
          }
        });
      }
      return outcome;
    }

    /** The user's nearest songs, leaving out those just played; kept for the CACHE path. */
    function cacheCandidates(
      tower: UserTowerModel,
      user: string,
      vector: Float32Array,
      recent: ReadonlySet<string>,
    ) {
      const matches = tower.songs.search(vector, config.candidates, (songId) => recent.has(songId));
      cache?.set(user, { modelVersion: tower.version, matches });
      return matches;
    }

    function retrieve(
      job: Job,
      tower: UserTowerModel | undefined,
      vector: Float32Array | undefined,
      fallbackReason: string | undefined,
      profile: UserProfile | null,
      recent: ReadonlySet<string>,
    ): { candidates: Candidate[]; path: ServingPath; pathReason: string | null; userTower: string | null } {
      const catalog = serving.catalog;
      const candidate = (songId: string, similarity: number): Candidate[] => {
        const song = catalog.get(songId);
        return song ? [{ song, similarity, vector: tower?.songVector(songId) }] : [];
      };
      if (tower && vector && job.features) {
        const matches = cacheCandidates(tower, job.user, vector, recent);
        return {
          candidates: matches.flatMap((m) => candidate(m.songId, m.score)),
          path: 'MODEL',
          pathReason: null,
          userTower: tower.version,
        };
      }
      const reason = job.features ? (fallbackReason ?? 'no-user-tower') : 'new-user';
      const cached = job.features ? cache?.get(job.user) : undefined;
      if (cached) {
        return {
          candidates: cached.matches.flatMap((m) => candidate(m.songId, m.score)),
          path: 'CACHE',
          pathReason: reason,
          userTower: cached.modelVersion,
        };
      }
      const exclude = (songId: string) => recent.has(songId);
      const genres = tasteGenres(profile, job.features);
      const songs =
        genres.length > 0
          ? catalog.popularIn(genres, config.candidates, exclude)
          : catalog.popular(config.candidates, exclude);
      return {
        candidates: songs.flatMap((song) => candidate(song.songId, 0)),
        path: genres.length > 0 ? 'TASTE_CLUSTER_FALLBACK' : 'POPULARITY_FALLBACK',
        pathReason: reason,
        userTower: null,
      };
    }

    /** The user's taste cluster: their favourite genres, else the genres they listened through this session. */
    function tasteGenres(profile: UserProfile | null, features: SessionFeatures | null): string[] {
      if (profile && profile.favouriteGenres.length > 0) return profile.favouriteGenres;
      const listened = (features?.highIntentSongIds ?? []).flatMap((id) => {
        const genre = serving.catalog.get(id)?.genre;
        return genre ? [genre] : [];
      });
      return [...new Set(listened)];
    }

    function recommend(
      job: Job,
      tower: UserTowerModel | undefined,
      vector: Float32Array | undefined,
      fallbackReason: string | undefined,
      bandit: BanditState,
    ) {
      const profile = profiles.get(job.user) ?? null;
      const features = job.features;
      // Played this session: neither retrieved nor recommended.
      const recent = new Set(features?.seqSongIds ?? []);
      const { candidates, path, pathReason, userTower } = retrieve(
        job,
        tower,
        vector,
        fallbackReason,
        profile,
        recent,
      );
      const ranked = rankCandidates(
        candidates,
        {
          eventTime: job.eventTime,
          localHour: features ? localHour(features) : new Date(job.eventTime).getUTCHours(),
          recentIntent: (features?.highIntentSongIds ?? [])
            .slice(0, RECENT_INTENT_SONGS)
            .flatMap((id) => tower?.songVector(id) ?? []),
          favouriteGenres: profile?.favouriteGenres ?? [],
          timeOfDay: timeOfDay(),
          freshDays: config.freshDays,
        },
        bandit,
      );
      const { items, removed } = postProcess(
        ranked,
        {
          count: job.count,
          maxPerArtist: config.maxPerArtist,
          maxPerGenre: config.maxPerGenre,
          mmrLambda: config.mmrLambda,
          explorationShare: config.explorationShare,
          allowExplicit: profile?.allowExplicit ?? false,
          recentSongIds: recent,
        },
        bandit,
        seededRandom(job.recommendationId),
      );
      postProcessingRemovals.inc({ rule: 'explicit' }, removed.explicit);
      postProcessingRemovals.inc({ rule: 'recent' }, removed.recent);
      postProcessingRemovals.inc({ rule: 'artist-cap' }, removed.artistCap);
      postProcessingRemovals.inc({ rule: 'genre-cap' }, removed.genreCap);
      decisions.put(job.recommendationId, {
        at: job.eventTime,
        items: items.map((item) => ({ songId: item.song.songId, features: Array.from(item.features) })),
      });
      recommendationsMade.inc({ trigger: job.trigger, path });
      const recommendation: Recommendation = {
        recommendationId: job.recommendationId,
        userId: job.user,
        trigger: job.trigger,
        triggerEventId: job.triggerEventId,
        requestId: job.requestId,
        score: job.score,
        threshold: job.threshold,
        path,
        pathReason,
        modelVersions: {
          disengagement: job.disengagementModel,
          userTower,
          ranker: RANKER_VERSION,
        },
        items: items.map((item, i) => ({
          songId: item.song.songId,
          rank: i + 1,
          score: item.score,
          reasons: item.reasons,
        })),
        eventTime: job.eventTime,
        generatedAt: Date.now(),
      };
      context.forward({ ...job.record, value: recommendation });
    }

    return {
      init(ctx) {
        context = ctx;
        listeners = ctx.getStateStore(CONTEXT_STORE);
        banditStore = ctx.getStateStore(BANDIT_STORE);
        decisions = ctx.getStateStore(DECISIONS_STORE);
        profiles = ctx.getStateStore(profilesStore);
        ctx.schedule(60_000, 'stream-time', (now) => {
          for (const [id, decision] of [...decisions.entries()])
            if (decision.at < now - rules.decisionTtlMs) decisions.delete(id);
          for (const [user, listener] of [...listeners.entries()])
            if (listener.features.timestamp < now - rules.contextTtlMs) listeners.delete(user);
        });
      },
      process(record) {
        const input = record.value;
        if (input.kind === 'point') onPoint(record, input.point);
        else onRequest(record, input.request);
      },
      async flush() {
        if (jobs.length === 0) return;
        const batch = jobs;
        jobs = [];
        const timer = recommendationBuildSeconds.startTimer();
        const { userTower: tower } = serving.models();
        const bandit =
          (banditStore.get(BANDIT_KEY) as BanditState | undefined) ?? newBandit(RANKING_FEATURES.length);
        const modelled = batch.filter((job) => job.features !== null);
        const embedded = await embed(
          tower,
          modelled.map((job) => job.features!),
        );
        const vectors = new Map<Job, Float32Array>();
        if (embedded.kind === 'embedded')
          for (const [i, job] of modelled.entries()) vectors.set(job, embedded.vectors[i]!);
        const fallbackReason = embedded.kind === 'fallback' ? embedded.reason : undefined;
        for (const job of batch) recommend(job, tower, vectors.get(job), fallbackReason, bandit);
        timer();
      },
    };
  };
}

function localHour(features: SessionFeatures): number {
  return localHourOf(features.features[HOUR_SIN]!, features.features[HOUR_COS]!);
}
