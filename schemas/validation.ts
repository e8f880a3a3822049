/**
 * Checks a decoded value's meaning, after Avro has checked its shape: values that decode fine but cannot
 * be true (a negative position, an event from the far future) are rejected as INVALID_VALUE and go to the
 * dead-letter topic rather than into sessions, labels and models.
 */
import { DeserializationError } from '../core/errors.ts';
import type { ListeningEvent } from './types.generated.ts';

/** Device clocks drift; an event more than this far ahead of the job's clock is not believed. */
export const MAX_CLOCK_SKEW_MS = 24 * 60 * 60 * 1000;
/** No recording is a day long: a playhead (or a seek target) past this is a broken client, not a song. */
export const MAX_POSITION_MS = 24 * 60 * 60 * 1000;
/** Nothing in Encore predates the first streaming services. */
const EARLIEST_PLAUSIBLE_MS = Date.UTC(2000, 0, 1);
const PLAYBACK_EVENTS = new Set(['PLAY', 'SKIP', 'PAUSE', 'RESUME', 'SEEK']);

export function validateListeningEvent(event: ListeningEvent, now = Date.now()): ListeningEvent {
  const problems: string[] = [];
  if (event.eventId.trim() === '') problems.push('eventId is empty');
  if (event.userId.trim() === '') problems.push('userId is empty');
  if (event.type === 'UNKNOWN') problems.push('type is UNKNOWN');
  if (event.timestamp < EARLIEST_PLAUSIBLE_MS) problems.push(`timestamp ${event.timestamp} is before 2000`);
  if (event.timestamp > now + MAX_CLOCK_SKEW_MS) {
    problems.push(`timestamp ${new Date(event.timestamp).toISOString()} is more than a day in the future`);
  }
  for (const [field, value] of [
    ['positionMs', event.positionMs],
    ['seekToMs', event.seekToMs],
  ] as const) {
    if (value !== null && value < 0) problems.push(`${field} ${value} is negative`);
    if (value !== null && value > MAX_POSITION_MS) problems.push(`${field} ${value} is more than a day`);
  }
  if (PLAYBACK_EVENTS.has(event.type) && !event.songId) problems.push(`${event.type} without songId`);
  if (event.type === 'SEEK' && event.seekToMs === null) problems.push('SEEK without seekToMs');
  if (Math.abs(event.context.timezoneOffsetMinutes) > 14 * 60) {
    problems.push(`timezoneOffsetMinutes ${event.context.timezoneOffsetMinutes} is outside ±14 h`);
  }
  if (problems.length > 0) throw new DeserializationError('INVALID_VALUE', problems.join('; '));
  return event;
}
