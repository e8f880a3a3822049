/**
 * The session window's aggregate: the session's events in time order (the newest MAX_SESSION_EVENTS), the
 * listener's profile as joined, and which event was added last, so the scoring point can be computed as of
 * that event even when it arrived late and landed in the middle of the session.
 */
import type { Device, ListeningEvent, UserProfile } from '../../schemas/types.generated.ts';
import { insertByTime, mergeByTime, type TimelineEvent, timelineEvent } from './timeline.ts';

/**
 * Sessions longer than this keep only their newest events: hours of continuous listening would otherwise
 * grow the state (and its changelog records) without bound. Features then describe the recent events.
 */
export const MAX_SESSION_EVENTS = 256;

export interface ProfileSnapshot {
  createdAt: number;
  subscription: string;
}

export interface LatestEvent {
  eventId: string;
  /** Its position in `events`. */
  index: number;
  device: Device;
  timezoneOffsetMinutes: number;
}

export interface SessionState {
  events: TimelineEvent[];
  /** Events that fell out of `events` (the session outgrew MAX_SESSION_EVENTS). */
  droppedEvents: number;
  latest: LatestEvent | null;
  profile: ProfileSnapshot | null;
}

export interface EventWithProfile {
  event: ListeningEvent;
  profile: UserProfile | null;
}

export function withProfile(event: ListeningEvent, profile: UserProfile | null): EventWithProfile {
  return { event, profile };
}

export function emptySession(): SessionState {
  return { events: [], droppedEvents: 0, latest: null, profile: null };
}

/** The aggregator: a new state (stores hold the old one until it is replaced). */
export function addEvent(
  _user: string,
  { event, profile }: EventWithProfile,
  state: SessionState,
): SessionState {
  const events = [...state.events];
  let index = insertByTime(events, timelineEvent(event));
  let droppedEvents = state.droppedEvents;
  if (events.length > MAX_SESSION_EVENTS) {
    const excess = events.length - MAX_SESSION_EVENTS;
    events.splice(0, excess);
    droppedEvents += excess;
    index = Math.max(0, index - excess);
  }
  return {
    events,
    droppedEvents,
    latest: {
      eventId: event.eventId,
      index,
      device: event.device,
      timezoneOffsetMinutes: event.context.timezoneOffsetMinutes,
    },
    profile: profile ? { createdAt: profile.createdAt, subscription: profile.subscription } : state.profile,
  };
}

/** The merger: a late event bridged two sessions. */
export function mergeSessions(_user: string, a: SessionState, b: SessionState): SessionState {
  const events = mergeByTime(a.events, b.events);
  const excess = Math.max(0, events.length - MAX_SESSION_EVENTS);
  return {
    events: events.slice(excess),
    droppedEvents: a.droppedEvents + b.droppedEvents + excess,
    latest: null,
    profile: b.profile ?? a.profile,
  };
}
