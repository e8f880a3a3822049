/**
 * A listener's events in time order, and what they mean: plays with their dwell, skips, skip bursts. The
 * session tracker, the labeler and the feedback collector all read listening through these functions, so
 * "a skip", "dwell" and "a burst" mean the same thing everywhere (and in training, which learns from their
 * output).
 */
import type { EventType, ListeningEvent } from '../../schemas/types.generated.ts';

/** What the listening modules keep of an event. */
export interface TimelineEvent {
  t: number;
  type: EventType;
  songId: string | null;
  /** The recommendation the song was started from (feedback attribution). */
  recommendationId: string | null;
}

export function timelineEvent(event: ListeningEvent): TimelineEvent {
  return {
    t: event.timestamp,
    type: event.type,
    songId: event.songId,
    recommendationId: event.context.recommendationId,
  };
}

/**
 * Inserts in time order; an event with the same timestamp as others goes after them (arrival order), so a
 * prefix "up to the event just added" never contains events that arrived after it. Returns its index.
 */
export function insertByTime<E extends TimelineEvent>(events: E[], event: E): number {
  let index = events.length;
  while (index > 0 && events[index - 1]!.t > event.t) index -= 1;
  events.splice(index, 0, event);
  return index;
}

/**
 * Sort order by time; the sort is stable, so events with the same timestamp keep the order given (arrival
 * order). For arrays of one's own, such as a list store's `get`: sorting in place copies nothing.
 */
export const earliestFirst = (a: TimelineEvent, b: TimelineEvent) => a.t - b.t;

export function mergeByTime(a: readonly TimelineEvent[], b: readonly TimelineEvent[]): TimelineEvent[] {
  return [...a, ...b].sort(earliestFirst);
}

export interface Play {
  songId: string;
  start: number;
  /** When it ended; null while it still plays (as of the last event considered). */
  end: number | null;
  /** Time listened, pauses excluded; for a play still going, up to the time asked about. */
  dwellMs: number;
  /** Ended by a SKIP. */
  skipped: boolean;
  /** The same song as the play before it. */
  replay: boolean;
  /** The event that ended it. */
  endedBy: EventType | null;
  /** The recommendation it was started from, if any. */
  recommendationId: string | null;
}

/**
 * Cuts time-ordered events into plays. A PLAY starts a song and ends the one before (it finished, or the
 * listener picked another); SKIP and EXIT end the current song; PAUSE..RESUME time is not dwell; SEEK and
 * SEARCH leave the song playing. A play still going at the last event has its dwell counted up to `asOf`.
 */
export function segmentPlays(events: readonly TimelineEvent[], asOf: number): Play[] {
  const plays: Play[] = [];
  let current: Play | undefined;
  let pausedMs = 0;
  let pausedSince: number | null = null;
  const close = (t: number, endedBy: EventType) => {
    if (!current) return;
    const pausing = pausedSince === null ? 0 : t - pausedSince;
    current.end = t;
    current.dwellMs = Math.max(0, t - current.start - pausedMs - pausing);
    current.skipped = endedBy === 'SKIP';
    current.endedBy = endedBy;
    current = undefined;
  };
  for (const event of events) {
    switch (event.type) {
      case 'PLAY': {
        close(event.t, 'PLAY');
        const previous = plays.at(-1);
        current = {
          songId: event.songId ?? '',
          start: event.t,
          end: null,
          dwellMs: 0,
          skipped: false,
          replay: previous?.songId === event.songId,
          endedBy: null,
          recommendationId: event.recommendationId,
        };
        plays.push(current);
        pausedMs = 0;
        pausedSince = null;
        break;
      }
      case 'SKIP':
      case 'EXIT':
        close(event.t, event.type);
        break;
      case 'PAUSE':
        if (current && pausedSince === null) pausedSince = event.t;
        break;
      case 'RESUME':
        if (pausedSince !== null) pausedMs += event.t - pausedSince;
        pausedSince = null;
        break;
      default:
        break;
    }
  }
  if (current) {
    const pausing = pausedSince === null ? 0 : asOf - pausedSince;
    current.dwellMs = Math.max(0, asOf - current.start - pausedMs - pausing);
  }
  return plays;
}

/** Listened through (ended by the next song, not a skip) or replayed: the listener wanted this song. */
export function isHighIntent(play: Play, listenedMs: number): boolean {
  return play.replay || (play.end !== null && !play.skipped && play.dwellMs >= listenedMs);
}

/** Played long enough to count, then skipped. */
export function isMediumIntent(play: Play, listenedMs: number): boolean {
  return play.skipped && play.dwellMs >= listenedMs;
}

export interface BurstRule {
  burstSkips: number;
  burstWindowMs: number;
}

/**
 * Times at which skip bursts complete: `burstSkips` skips within `burstWindowMs`. Skips counted in one
 * burst do not start another, so a run of 6 quick skips is 2 bursts, not 4.
 */
export function skipBursts(skipTimes: readonly number[], rule: BurstRule): number[] {
  const completed: number[] = [];
  let first = 0;
  for (let i = 0; i < skipTimes.length; i += 1) {
    while (skipTimes[i]! - skipTimes[first]! > rule.burstWindowMs) first += 1;
    if (i - first + 1 >= rule.burstSkips) {
      completed.push(skipTimes[i]!);
      first = i + 1;
    }
  }
  return completed;
}
