/**
 * The feedback collector: joins each recommendation pushed to a listener with what the listener did next.
 *
 *   a recommended song played 30 s or more   → LISTENED (songId, rank, dwell)
 *   a recommended song ended sooner           → SKIPPED
 *   before any recommended song: a search     → SEARCHED (for the whole list)
 *                                an exit      → EXITED
 *   the window passes with none of that       → IGNORED
 *
 * A song counts as recommended when it was started from the recommendation (the app's recommendationId) or
 * is one of its items. Recommendations and listening events come from two topics, so either may arrive
 * first: the store keeps the listener's recent events as well as the open recommendations, and every
 * arrival re-reads both. Each (recommendation, song, outcome) is emitted once, with a deterministic id.
 *
 * How far apart the two topics are read is not bounded by the serving latency: after a restart the task
 * may read minutes of events before the recommendations made in between. So a listener's events are kept
 * for two feedback windows of the listener's own time (a recommendation whose window the listener has
 * already lived through is still decided exactly), and a listener silent for that long in stream time is
 * forgotten (unless a recommendation is open).
 */
import { createHash } from 'node:crypto';
import type {
  FeedbackOutcome,
  ListeningEvent,
  Recommendation,
  RecommendationFeedback,
} from '../../schemas/types.generated.ts';
import type { Processor, ProcessorContext, StreamRecord } from '../streams/api.ts';
import type { KeyValueStore } from '../streams/stores.ts';
import { insertByTime, type Play, segmentPlays, type TimelineEvent, timelineEvent } from './timeline.ts';

export const FEEDBACK_STORE = 'pending-recommendations';

/** How often, in stream time, windows are checked for IGNORED. */
const CHECK_INTERVAL_MS = 60_000;

export interface FeedbackRules {
  listenedMs: number;
  windowMs: number;
}

export type FeedbackInput =
  | { kind: 'event'; event: ListeningEvent }
  | { kind: 'recommendation'; recommendation: Recommendation };

interface OpenRecommendation {
  recommendationId: string;
  eventTime: number;
  generatedAt: number;
  items: { songId: string; rank: number }[];
  /** Songs (or '' for the whole list) already given an outcome. */
  decided: string[];
}

interface Pending {
  recommendations: OpenRecommendation[];
  events: (TimelineEvent & { eventId: string })[];
}

export function feedbackId(
  recommendationId: string,
  songId: string | null,
  outcome: FeedbackOutcome,
): string {
  return createHash('sha256')
    .update(`${recommendationId}\u0000${songId ?? ''}\u0000${outcome}`)
    .digest('hex')
    .slice(0, 32);
}

export function feedbackCollector(
  rules: FeedbackRules,
): () => Processor<string, FeedbackInput, string, RecommendationFeedback> {
  return () => {
    let store: KeyValueStore<Pending>;
    let context: ProcessorContext<string, RecommendationFeedback>;

    const emit = (
      user: string,
      rec: OpenRecommendation,
      feedback: Omit<RecommendationFeedback, 'feedbackId' | 'recommendationId' | 'userId'>,
    ) => {
      rec.decided.push(feedback.songId ?? '');
      context.forward({
        key: user,
        value: {
          feedbackId: feedbackId(rec.recommendationId, feedback.songId, feedback.outcome),
          recommendationId: rec.recommendationId,
          userId: user,
          ...feedback,
        },
        timestamp: feedback.decidedAt,
        headers: {},
      });
    };

    /** Emits what the events now decide for one recommendation; true when nothing is left to decide. */
    const settle = (
      user: string,
      rec: OpenRecommendation,
      events: Pending['events'],
      now: number,
    ): boolean => {
      const following = events.filter((e) => e.t > rec.eventTime);
      const windowEnd = rec.eventTime + rules.windowMs;
      const recommended = (p: Play) =>
        p.recommendationId === rec.recommendationId || rec.items.some((i) => i.songId === p.songId);
      const plays = segmentPlays(following, Math.min(now, windowEnd)).filter(
        (p) => p.start <= windowEnd && recommended(p),
      );
      for (const play of plays) {
        // A song still playing is decided when it ends, or with what it had when the window closes.
        if (rec.decided.includes(play.songId) || (play.end === null && now < windowEnd)) continue;
        emit(user, rec, {
          songId: play.songId,
          rank: rec.items.find((i) => i.songId === play.songId)?.rank ?? null,
          outcome: play.dwellMs >= rules.listenedMs ? 'LISTENED' : 'SKIPPED',
          dwellMs: play.dwellMs,
          delayMs: Math.max(0, play.start - rec.generatedAt),
          outcomeEventId: following.find((e) => e.t === play.start && e.type === 'PLAY')?.eventId ?? null,
          decidedAt: play.end ?? windowEnd,
        });
      }
      // The list as a whole: only what happened before any recommended song was played.
      const before = plays[0]?.start ?? windowEnd + 1;
      if (!rec.decided.includes('')) {
        const leaving = following.find(
          (e) => e.t <= windowEnd && e.t < before && (e.type === 'SEARCH' || e.type === 'EXIT'),
        );
        if (leaving) {
          const outcome = leaving.type === 'SEARCH' ? 'SEARCHED' : 'EXITED';
          emit(user, rec, listOutcome(outcome, leaving.t - rec.generatedAt, leaving));
        } else if (now >= windowEnd && plays.length === 0) {
          emit(
            user,
            rec,
            listOutcome('IGNORED', windowEnd - rec.generatedAt, { t: windowEnd, eventId: null }),
          );
        }
      }
      const open = plays.some((p) => !rec.decided.includes(p.songId));
      return now >= windowEnd && !open;
    };

    const update = (user: string, pending: Pending, now: number) => {
      const recommendations = pending.recommendations.filter(
        (rec) => !settle(user, rec, pending.events, now),
      );
      const latest = pending.events.at(-1)?.t ?? now;
      const oldestNeeded = Math.min(latest - 2 * rules.windowMs, ...recommendations.map((r) => r.eventTime));
      const events = pending.events.filter((e) => e.t >= oldestNeeded);
      const idle = latest < now - 2 * rules.windowMs;
      if (recommendations.length === 0 && (events.length === 0 || idle)) store.delete(user);
      else store.put(user, { recommendations, events });
    };

    return {
      init(ctx) {
        context = ctx;
        store = ctx.getStateStore<KeyValueStore<Pending>>(FEEDBACK_STORE);
        ctx.schedule(CHECK_INTERVAL_MS, 'stream-time', (now) => {
          for (const [user, pending] of [...store.entries()]) {
            const idle = (pending.events.at(-1)?.t ?? now) < now - 2 * rules.windowMs;
            if (pending.recommendations.length > 0 || idle) update(user, cloned(pending), now);
          }
        });
      },
      process(record: StreamRecord<string, FeedbackInput>) {
        const pending = cloned(store.get(record.key) ?? { recommendations: [], events: [] });
        const input = record.value;
        if (input.kind === 'event') {
          insertByTime(pending.events, { ...timelineEvent(input.event), eventId: input.event.eventId });
        } else {
          const rec = input.recommendation;
          if (pending.recommendations.some((r) => r.recommendationId === rec.recommendationId)) return;
          pending.recommendations.push({
            recommendationId: rec.recommendationId,
            eventTime: rec.eventTime,
            generatedAt: rec.generatedAt,
            items: rec.items.map((i) => ({ songId: i.songId, rank: i.rank })),
            decided: [],
          });
        }
        update(record.key, pending, context.streamTime());
      },
    };
  };
}

function listOutcome(
  outcome: FeedbackOutcome,
  delayMs: number,
  at: { t: number; eventId: string | null },
): Omit<RecommendationFeedback, 'feedbackId' | 'recommendationId' | 'userId'> {
  return {
    songId: null,
    rank: null,
    outcome,
    dwellMs: null,
    delayMs: Math.max(0, delayMs),
    outcomeEventId: at.eventId,
    decidedAt: at.t,
  };
}

/** Stores hold the previous value (and the changelog may not have serialized it yet): never mutate it. */
function cloned(pending: Pending): Pending {
  return {
    recommendations: pending.recommendations.map((r) => ({ ...r, decided: [...r.decided] })),
    events: [...pending.events],
  };
}
