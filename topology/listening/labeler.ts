/**
 * Disengagement labels, computed in the stream. Every scoring point (every listening event but EXIT) waits
 * in the `label-points` store, with the listener's events from the oldest waiting point on in
 * `label-timeline`, until stream time passes its horizon plus the grace period; then what the listener did
 * within the horizon decides its label, which is emitted once and the point forgotten (under exactly-once,
 * both in one transaction). Deciding only after the grace period means events arriving late, but in time to
 * count, are part of the decision. Both are list stores: each event adds one small changelog record rather
 * than rewriting the listener's whole horizon.
 *
 * Positive: within the horizon the listener exited, searched, completed a skip burst (counted from skips
 * after the point only) or went silent (no event at all). Negative (CONTINUED): listening went on.
 */

import type { DisengagementLabel, DisengagementReason, EventType } from '../../schemas/types.generated.ts';
import type { Processor, ProcessorContext, StreamRecord } from '../streams/api.ts';
import type { SessionUpdate } from '../streams/operators.ts';
import type { ListStore } from '../streams/stores.ts';
import { sessionId } from './features.ts';
import type { SessionState } from './session.ts';
import { type BurstRule, earliestFirst, segmentPlays, skipBursts, type TimelineEvent } from './timeline.ts';

export const LABEL_POINTS_STORE = 'label-points';
export const LABEL_TIMELINE_STORE = 'label-timeline';

export interface LabelRules extends BurstRule {
  horizonMs: number;
  graceMs: number;
  listenedMs: number;
}

interface ScoringPoint {
  eventId: string;
  sessionId: string;
  t: number;
  type: EventType;
}

/** How often, in stream time, waiting points are checked. */
const CHECK_INTERVAL_MS = 60_000;

export type LabelDecision = Pick<
  DisengagementLabel,
  'disengaged' | 'reason' | 'outcomeAfterMs' | 'nextSongId'
>;

/**
 * The label of a point (an event of `type` at time `t`) from the listener's events around it, in time
 * order. The next song is the first one started after the point (a SKIP's next song may start in the same
 * millisecond; a PLAY's own song is not its next) and listened to for `listenedMs`.
 */
export function decideLabel(
  point: { t: number; type: EventType },
  timeline: readonly TimelineEvent[],
  rules: LabelRules,
): LabelDecision {
  const { t } = point;
  const end = t + rules.horizonMs;
  const after = timeline.filter((e) => e.t > t && e.t <= end);
  const firstOf = (type: string) => after.find((e) => e.type === type)?.t;
  const burst = skipBursts(
    after.filter((e) => e.type === 'SKIP').map((e) => e.t),
    rules,
  )[0];
  const outcomes: [DisengagementReason, number | undefined][] = [
    ['EXIT', firstOf('EXIT')],
    ['SEARCH', firstOf('SEARCH')],
    ['SKIP_BURST', burst],
  ];
  const first = outcomes
    .filter((o): o is [DisengagementReason, number] => o[1] !== undefined)
    .sort((a, b) => a[1] - b[1])[0];
  const next = segmentPlays(
    timeline.filter((e) => e.t <= end),
    end,
  ).find((p) => (p.start > t || (p.start === t && point.type !== 'PLAY')) && p.dwellMs >= rules.listenedMs);
  const nextSongId = next?.songId ?? null;
  if (first) return { disengaged: true, reason: first[0], outcomeAfterMs: first[1] - t, nextSongId };
  if (after.length === 0) return { disengaged: true, reason: 'SILENCE', outcomeAfterMs: null, nextSongId };
  return { disengaged: false, reason: 'CONTINUED', outcomeAfterMs: null, nextSongId };
}

/**
 * The labeler processor: reads the session aggregation's updates (each carries the event just added) and
 * forwards DisengagementLabels.
 */
export function labeler(
  rules: LabelRules,
): () => Processor<string, SessionUpdate<SessionState>, string, DisengagementLabel> {
  return () => {
    let points: ListStore<ScoringPoint>;
    let timelines: ListStore<TimelineEvent>;
    let context: ProcessorContext<string, DisengagementLabel>;
    const decideDue = (now: number) => {
      for (const user of points.keys()) {
        const due: ScoringPoint[] = [];
        const left: ScoringPoint[] = [];
        for (const p of points.get(user)) (p.t + rules.horizonMs + rules.graceMs <= now ? due : left).push(p);
        if (due.length === 0) continue;
        const timeline = timelines.get(user).sort(earliestFirst);
        for (const point of due) {
          const label: DisengagementLabel = {
            eventId: point.eventId,
            userId: user,
            sessionId: point.sessionId,
            timestamp: point.t,
            ...decideLabel(point, timeline, rules),
            horizonMs: rules.horizonMs,
          };
          context.forward({ key: user, value: label, timestamp: point.t, headers: {} });
        }
        for (const point of due) points.remove(user, point.eventId);
        const oldest = Math.min(...left.map((p) => p.t));
        timelines.removeWhere(user, (e) => left.length === 0 || e.t < oldest);
      }
    };
    return {
      init(ctx) {
        context = ctx;
        points = ctx.getStateStore<ListStore<ScoringPoint>>(LABEL_POINTS_STORE);
        timelines = ctx.getStateStore<ListStore<TimelineEvent>>(LABEL_TIMELINE_STORE);
        ctx.schedule(Math.min(CHECK_INTERVAL_MS, rules.horizonMs), 'stream-time', decideDue);
      },
      process(record: StreamRecord<string, SessionUpdate<SessionState>>) {
        const { start, value: state } = record.value;
        if (!state?.latest) return;
        const event = state.events[state.latest.index]!;
        const { eventId } = state.latest;
        if (event.type !== 'EXIT')
          points.put(record.key, eventId, {
            eventId,
            sessionId: sessionId(record.key, start),
            t: event.t,
            type: event.type,
          });
        // Events matter only while a point waits: an EXIT with nothing waiting is not kept.
        if (points.count(record.key) > 0) timelines.put(record.key, eventId, event);
      },
    };
  };
}
