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
 * first: the listener's recent events (`feedback-events`) are kept as well as the open recommendations
 * (`feedback-recommendations`), and every arrival re-reads both. Both are list stores: an event adds one
 * small changelog record, not a rewrite of everything the listener has pending. Each (recommendation, song,
 * outcome) is emitted once, with a deterministic id.
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
import type { ListStore } from '../streams/stores.ts';
import { earliestFirst, type Play, segmentPlays, type TimelineEvent, timelineEvent } from './timeline.ts';

export const FEEDBACK_RECOMMENDATIONS_STORE = 'feedback-recommendations';
export const FEEDBACK_EVENTS_STORE = 'feedback-events';

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

type PendingEvent = TimelineEvent & { eventId: string };

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
    let recommendations: ListStore<OpenRecommendation>;
    let events: ListStore<PendingEvent>;
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
      events: readonly PendingEvent[],
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

    /** Decides what the listener's events now decide, and forgets what no open recommendation needs. */
    const update = (user: string, now: number) => {
      const pending = events.get(user).sort(earliestFirst);
      const open: OpenRecommendation[] = [];
      // Stored values are never mutated (the changelog may not have serialized them yet): settle a copy.
      for (const stored of recommendations.get(user)) {
        const rec = { ...stored, decided: [...stored.decided] };
        if (settle(user, rec, pending, now)) recommendations.remove(user, rec.recommendationId);
        else {
          open.push(rec);
          if (rec.decided.length > stored.decided.length)
            recommendations.put(user, rec.recommendationId, rec);
        }
      }
      const latest = latestOf(pending, now);
      const idle = latest < now - 2 * rules.windowMs;
      if (open.length === 0 && idle) {
        events.delete(user);
        return;
      }
      const oldestNeeded = Math.min(latest - 2 * rules.windowMs, ...open.map((r) => r.eventTime));
      events.removeWhere(user, (e) => e.t < oldestNeeded);
    };

    return {
      init(ctx) {
        context = ctx;
        recommendations = ctx.getStateStore<ListStore<OpenRecommendation>>(FEEDBACK_RECOMMENDATIONS_STORE);
        events = ctx.getStateStore<ListStore<PendingEvent>>(FEEDBACK_EVENTS_STORE);
        ctx.schedule(CHECK_INTERVAL_MS, 'stream-time', (now) => {
          for (const user of new Set([...recommendations.keys(), ...events.keys()])) {
            const idle = latestOf(events.get(user), now) < now - 2 * rules.windowMs;
            if (recommendations.count(user) > 0 || idle) update(user, now);
          }
        });
      },
      process(record: StreamRecord<string, FeedbackInput>) {
        const input = record.value;
        if (input.kind === 'event') {
          const { event } = input;
          events.put(record.key, event.eventId, { ...timelineEvent(event), eventId: event.eventId });
        } else {
          const rec = input.recommendation;
          if (recommendations.has(record.key, rec.recommendationId)) return;
          recommendations.put(record.key, rec.recommendationId, {
            recommendationId: rec.recommendationId,
            eventTime: rec.eventTime,
            generatedAt: rec.generatedAt,
            items: rec.items.map((i) => ({ songId: i.songId, rank: i.rank })),
            decided: [],
          });
        }
        update(record.key, context.streamTime());
      },
    };
  };
}

/** The time of the listener's latest event (`none` without events). */
function latestOf(events: readonly PendingEvent[], none: number): number {
  let latest = Number.NEGATIVE_INFINITY;
  for (const event of events) latest = Math.max(latest, event.t);
  return events.length > 0 ? latest : none;
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
