/**
 * The feature spec and the one function that computes it: the session tracker's state at a listening
 * event, as the disengagement predictor reads it and as training learns it (training reads these values
 * from ClickHouse or an exported dataset, never recomputing them). The spec is written to
 * schemas/feature-spec.json (`node topology/listening/features.ts`); training copies it, with normalisation
 * and vocabularies, into each model's metadata.json, and serving checks that copy against this one.
 */
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type avro from 'avsc';
import { Contracts } from '../../schemas/contracts.ts';
import type { ListeningSession, SessionFeatures } from '../../schemas/types.generated.ts';
import type { SessionState } from './session.ts';
import {
  type BurstRule,
  isHighIntent,
  isMediumIntent,
  type Play,
  segmentPlays,
  skipBursts,
} from './timeline.ts';

const NUMERIC = [
  ['session_events', 'events so far in the session, this one included'],
  ['session_minutes', 'minutes since the session began'],
  ['plays', 'songs started in the session'],
  ['skips', 'SKIP events in the session'],
  ['skip_rate', 'skips / plays'],
  ['consecutive_skips', 'plays skipped in a row, up to the current one'],
  ['skips_last_2min', 'skips within the burst window (default 2 min) before this event'],
  ['skip_bursts', 'skip bursts so far in the session'],
  ['pauses', 'PAUSE events in the session'],
  ['paused_minutes', 'time spent paused'],
  ['seeks', 'SEEK events in the session'],
  ['searches', 'SEARCH events in the session'],
  ['mean_dwell_s', 'mean listened time of the finished plays'],
  ['last_dwell_s', 'listened time of the last finished play'],
  ['listened_through', 'plays that ended without a skip after 30 s or more'],
  ['replays', 'plays of the same song as the play before'],
  ['seconds_since_previous_event', 'time since the previous event of the session'],
  ['minutes_since_high_intent', 'since the last song listened through or replayed (session length if none)'],
  ['hour_sin', 'sine of the local hour of day'],
  ['hour_cos', 'cosine of the local hour of day'],
  ['weekend', '1 on a local Saturday or Sunday'],
  ['account_age_days', "days since the listener's account was created (0 without a profile)"],
  ['has_profile', '1 when the user-profile table had the listener'],
  ['premium', '1 for a paid subscription (premium, family, student)'],
] as const;

export type NumericFeature = (typeof NUMERIC)[number][0];

/** How many of the session's last plays the sequence features hold. */
export const SEQUENCE_LENGTH = 32;
/** How many high- and medium-intent songs a scoring point names. */
const INTENT_SONGS = 5;
const PAID = new Set(['PREMIUM', 'FAMILY', 'STUDENT']);

function symbolsOf(record: avro.Type, field: string): string[] {
  const type = (record as avro.types.RecordType).field(field)!.type as avro.types.EnumType;
  return [...type.symbols];
}

const specBody = {
  numeric: NUMERIC.map(([name, description]) => ({ name, description })),
  categorical: [
    { name: 'device', values: symbolsOf(Contracts.listeningEvent.type, 'device') },
    { name: 'event_type', values: symbolsOf(Contracts.listeningEvent.type, 'type') },
    { name: 'subscription', values: symbolsOf(Contracts.userProfile.type, 'subscription') },
  ],
  sequence: {
    length: SEQUENCE_LENGTH,
    fields: ['seq_song_ids', 'seq_skipped', 'seq_dwell_s', 'seq_gap_s'],
    order: 'oldest first, the current play last',
  },
};

/** The version changes whenever the spec does, so a model can never read features it was not trained on. */
export const FEATURE_SPEC = {
  version: `session-${createHash('sha256').update(JSON.stringify(specBody)).digest('hex').slice(0, 12)}`,
  ...specBody,
};

export const featureSpecFile = fileURLToPath(new URL('../../schemas/feature-spec.json', import.meta.url));

export function featureSpecJson(): string {
  return `${JSON.stringify(FEATURE_SPEC, null, 2)}\n`;
}

export interface FeatureRules extends BurstRule {
  listenedMs: number;
}

const MINUTE = 60_000;

/**
 * The scoring point at the event added last: features over the session's events up to it (events that
 * arrived earlier but happened later are not "known" at that point and are left out).
 */
export function scoringPoint(
  userId: string,
  start: number,
  state: SessionState,
  rules: FeatureRules,
): SessionFeatures {
  const latest = state.latest!;
  const known = state.events.slice(0, latest.index + 1);
  const event = known.at(-1)!;
  const t = event.t;
  const plays = segmentPlays(known, t);
  const finished = plays.filter((p) => p.end !== null);
  const count = (type: string) => known.filter((e) => e.type === type).length;
  const skipTimes = known.filter((e) => e.type === 'SKIP').map((e) => e.t);
  const skips = skipTimes.length;
  const highIntent = plays.filter((p) => isHighIntent(p, rules.listenedMs));
  const sessionMinutes = (t - start) / MINUTE;
  const local = t + latest.timezoneOffsetMinutes * MINUTE;
  const hour = (((local % 86_400_000) + 86_400_000) % 86_400_000) / 3_600_000;
  const weekday = new Date(local).getUTCDay();
  const profile = state.profile;
  let consecutiveSkips = 0;
  for (let i = finished.length - 1; i >= 0 && finished[i]!.skipped; i -= 1) consecutiveSkips += 1;

  const values: Record<NumericFeature, number> = {
    session_events: known.length + state.droppedEvents,
    session_minutes: sessionMinutes,
    plays: plays.length,
    skips,
    skip_rate: skips / Math.max(1, plays.length),
    consecutive_skips: consecutiveSkips,
    skips_last_2min: skipTimes.filter((s) => s >= t - rules.burstWindowMs).length,
    skip_bursts: skipBursts(skipTimes, rules).length,
    pauses: count('PAUSE'),
    paused_minutes: pausedMs(known, t) / MINUTE,
    seeks: count('SEEK'),
    searches: count('SEARCH'),
    mean_dwell_s:
      finished.length === 0 ? 0 : finished.reduce((sum, p) => sum + p.dwellMs, 0) / finished.length / 1000,
    last_dwell_s: (finished.at(-1)?.dwellMs ?? 0) / 1000,
    listened_through: finished.filter((p) => !p.skipped && p.dwellMs >= rules.listenedMs).length,
    replays: plays.filter((p) => p.replay).length,
    seconds_since_previous_event: known.length > 1 ? (t - known.at(-2)!.t) / 1000 : 0,
    minutes_since_high_intent:
      highIntent.length === 0 ? sessionMinutes : (t - highIntent.at(-1)!.start) / MINUTE,
    hour_sin: Math.sin((2 * Math.PI * hour) / 24),
    hour_cos: Math.cos((2 * Math.PI * hour) / 24),
    weekend: weekday === 0 || weekday === 6 ? 1 : 0,
    account_age_days: profile ? Math.max(0, (t - profile.createdAt) / 86_400_000) : 0,
    has_profile: profile ? 1 : 0,
    premium: profile && PAID.has(profile.subscription) ? 1 : 0,
  };
  const sequence = plays.slice(-SEQUENCE_LENGTH);
  return {
    eventId: latest.eventId,
    userId,
    sessionId: sessionId(userId, start),
    timestamp: t,
    eventType: event.type,
    songId: event.songId,
    device: latest.device,
    subscription: profile?.subscription ?? 'UNKNOWN',
    featureSpec: FEATURE_SPEC.version,
    features: NUMERIC.map(([name]) => values[name]),
    seqSongIds: sequence.map((p) => p.songId),
    seqSkipped: sequence.map((p) => p.skipped),
    seqDwellSeconds: sequence.map((p) => p.dwellMs / 1000),
    seqGapSeconds: sequence.map((p, i) => (i === 0 ? 0 : (p.start - sequence[i - 1]!.start) / 1000)),
    highIntentSongIds: newestDistinct(highIntent),
    mediumIntentSongIds: newestDistinct(plays.filter((p) => isMediumIntent(p, rules.listenedMs))),
  };
}

/** A closed session's summary. */
export function closedSession(
  userId: string,
  start: number,
  end: number,
  state: SessionState,
  rules: FeatureRules,
): ListeningSession {
  const plays = segmentPlays(state.events, end);
  const count = (type: string) => state.events.filter((e) => e.type === type).length;
  const skipTimes = state.events.filter((e) => e.type === 'SKIP').map((e) => e.t);
  return {
    sessionId: sessionId(userId, start),
    userId,
    start,
    end,
    events: state.events.length + state.droppedEvents,
    plays: plays.length,
    skips: skipTimes.length,
    skipBursts: skipBursts(skipTimes, rules).length,
    pauses: count('PAUSE'),
    pausedMs: pausedMs(state.events, end),
    seeks: count('SEEK'),
    searches: count('SEARCH'),
    listenedMs: plays.reduce((sum, p) => sum + p.dwellMs, 0),
    exited: state.events.at(-1)?.type === 'EXIT',
    device: state.latest?.device ?? 'UNKNOWN',
    songIds: plays.map((p) => p.songId),
  };
}

export function sessionId(userId: string, start: number): string {
  return `${userId}/${start}`;
}

function pausedMs(events: readonly { t: number; type: string }[], asOf: number): number {
  let total = 0;
  let since: number | null = null;
  for (const e of events) {
    if (e.type === 'PAUSE' && since === null) since = e.t;
    else if ((e.type === 'RESUME' || e.type === 'PLAY' || e.type === 'EXIT') && since !== null) {
      total += e.t - since;
      since = null;
    }
  }
  return since === null ? total : total + (asOf - since);
}

function newestDistinct(plays: readonly Play[]): string[] {
  const songs: string[] = [];
  for (let i = plays.length - 1; i >= 0 && songs.length < INTENT_SONGS; i -= 1) {
    if (!songs.includes(plays[i]!.songId)) songs.push(plays[i]!.songId);
  }
  return songs;
}

if (import.meta.main) {
  writeFileSync(featureSpecFile, featureSpecJson());
  console.log(`wrote ${featureSpecFile} (${FEATURE_SPEC.version})`);
}
