/**
 * Which topic goes into which ClickHouse table, and how a record becomes a row. Column names and types are
 * those of sinks/migrations; the trainer reads the same columns (from ClickHouse, or from files the dataset
 * command writes with these very functions).
 */
import type { Config } from '../core/config.ts';
import { type TopicDefinition, topics } from '../schemas/topics.ts';
import type {
  DisengagementLabel,
  ListeningEvent,
  ListeningSession,
  ModelScore,
  Recommendation,
  RecommendationFeedback,
  SessionFeatures,
  Song,
} from '../schemas/types.generated.ts';
import { validateListeningEvent } from '../schemas/validation.ts';

export type Row = Record<string, unknown>;

/** Where a record was read: tables that keep it (events, songs) or version by it. */
export interface RecordSource {
  partition: number;
  offset: number;
}

export interface TableSink<V> {
  table: string;
  topic: TopicDefinition<V>;
  toRow(value: V, source: RecordSource): Row;
  /** Checks beyond Avro (the topology dead-letters what fails; the sink skips it). */
  validate?: (value: V) => V;
}

const day = (ms: number) => new Date(ms).toISOString().slice(0, 10);
const flag = (value: boolean) => (value ? 1 : 0);

export function eventRow(event: ListeningEvent, source: RecordSource): Row {
  return {
    event_id: event.eventId,
    user_id: event.userId,
    type: event.type,
    timestamp_ms: event.timestamp,
    event_time: Math.floor(event.timestamp / 1000),
    event_date: day(event.timestamp),
    song_id: event.songId,
    position_ms: event.positionMs,
    seek_to_ms: event.seekToMs,
    search_query: event.searchQuery,
    device: event.device,
    app_version: event.context.appVersion,
    os: event.context.os,
    country: event.context.country,
    source: event.context.source,
    source_id: event.context.sourceId,
    recommendation_id: event.context.recommendationId,
    shuffle: flag(event.context.shuffle),
    timezone_offset_minutes: event.context.timezoneOffsetMinutes,
    kafka_partition: source.partition,
    kafka_offset: source.offset,
    // Not part of the sorting key: a replayed row still folds into the first one.
    ingested_at: Math.floor(Date.now() / 1000),
  };
}

export function sessionFeaturesRow(f: SessionFeatures): Row {
  return {
    event_id: f.eventId,
    user_id: f.userId,
    session_id: f.sessionId,
    timestamp_ms: f.timestamp,
    event_date: day(f.timestamp),
    event_type: f.eventType,
    song_id: f.songId,
    device: f.device,
    subscription: f.subscription,
    feature_spec: f.featureSpec,
    features: f.features,
    seq_song_ids: f.seqSongIds,
    seq_skipped: f.seqSkipped.map(flag),
    seq_dwell_s: f.seqDwellSeconds,
    seq_gap_s: f.seqGapSeconds,
    high_intent_song_ids: f.highIntentSongIds,
    medium_intent_song_ids: f.mediumIntentSongIds,
  };
}

export function labelRow(l: DisengagementLabel): Row {
  return {
    event_id: l.eventId,
    user_id: l.userId,
    session_id: l.sessionId,
    timestamp_ms: l.timestamp,
    event_date: day(l.timestamp),
    label: flag(l.disengaged),
    reason: l.reason,
    outcome_after_ms: l.outcomeAfterMs,
    next_song_id: l.nextSongId,
    horizon_ms: l.horizonMs,
  };
}

export function sessionRow(s: ListeningSession): Row {
  return {
    session_id: s.sessionId,
    user_id: s.userId,
    start_ms: s.start,
    end_ms: s.end,
    session_date: day(s.start),
    duration_s: (s.end - s.start) / 1000,
    events: s.events,
    plays: s.plays,
    skips: s.skips,
    skip_bursts: s.skipBursts,
    pauses: s.pauses,
    paused_ms: s.pausedMs,
    seeks: s.seeks,
    searches: s.searches,
    listened_ms: s.listenedMs,
    exited: flag(s.exited),
    device: s.device,
    song_ids: s.songIds,
  };
}

export function recommendationRow(r: Recommendation): Row {
  return {
    recommendation_id: r.recommendationId,
    user_id: r.userId,
    trigger: r.trigger,
    trigger_event_id: r.triggerEventId,
    request_id: r.requestId,
    score: r.score,
    threshold: r.threshold,
    path: r.path,
    path_reason: r.pathReason,
    disengagement_model: r.modelVersions.disengagement,
    user_tower_model: r.modelVersions.userTower,
    ranker_model: r.modelVersions.ranker,
    item_song_ids: r.items.map((i) => i.songId),
    item_scores: r.items.map((i) => i.score),
    item_reasons: r.items.map((i) => i.reasons.join(',')),
    event_time_ms: r.eventTime,
    generated_at_ms: r.generatedAt,
    latency_ms: r.generatedAt - r.eventTime,
    event_date: day(r.eventTime),
  };
}

export function feedbackRow(f: RecommendationFeedback): Row {
  return {
    feedback_id: f.feedbackId,
    recommendation_id: f.recommendationId,
    user_id: f.userId,
    song_id: f.songId,
    rank: f.rank,
    outcome: f.outcome,
    dwell_ms: f.dwellMs,
    delay_ms: f.delayMs,
    outcome_event_id: f.outcomeEventId,
    decided_at_ms: f.decidedAt,
    decided_date: day(f.decidedAt),
  };
}

export function modelScoreRow(s: ModelScore): Row {
  return {
    event_id: s.eventId,
    user_id: s.userId,
    model: s.model,
    model_version: s.modelVersion,
    role: s.role,
    score: s.score,
    threshold: s.threshold,
    triggered: flag(s.triggered),
    latency_us: s.latencyMicros,
    timestamp_ms: s.timestamp,
    event_date: day(s.timestamp),
    scored_at_ms: s.scoredAt,
  };
}

export function songRow(s: Song, source: RecordSource): Row {
  return {
    song_id: s.songId,
    title: s.title,
    artist_id: s.artistId,
    artist_name: s.artistName,
    album_id: s.albumId,
    genre: s.genre,
    language: s.language,
    popularity: s.popularity,
    explicit: flag(s.explicit),
    release_date: day(s.releaseDate * 86_400_000),
    added_at_ms: s.addedAt,
    duration_ms: s.durationMs,
    audio_features: s.audioFeatures,
    kafka_offset: source.offset,
  };
}

/** Type-checks one table's parts against each other, then forgets the value type (the connector needn't know it). */
const sink = <V>(table: TableSink<V>) => table as unknown as TableSink<unknown>;

/** Every table the connector fills, with its topic. */
export function tableSinks(config: Config): TableSink<unknown>[] {
  const t = topics(config);
  return [
    sink({ table: 'events', topic: t.listeningEvents, toRow: eventRow, validate: validateListeningEvent }),
    sink({ table: 'session_features', topic: t.sessionFeatures, toRow: sessionFeaturesRow }),
    sink({ table: 'disengagement_labels', topic: t.disengagementLabels, toRow: labelRow }),
    sink({ table: 'sessions', topic: t.sessions, toRow: sessionRow }),
    sink({ table: 'recommendations', topic: t.recommendations, toRow: recommendationRow }),
    sink({ table: 'recommendation_feedback', topic: t.recommendationFeedback, toRow: feedbackRow }),
    sink({ table: 'model_scores', topic: t.modelScores, toRow: modelScoreRow }),
    sink({ table: 'songs', topic: t.songs, toRow: songRow }),
  ];
}
