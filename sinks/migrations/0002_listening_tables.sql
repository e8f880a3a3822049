-- What the listening topology produces, one table per topic, written by the ClickHouse connector
-- (sinks/connector.ts). Every table is a ReplacingMergeTree whose sorting key ends in the row's
-- deterministic id: a replay after a crash inserts the same rows again and they fold into one. Read with
-- FINAL (or through the analyst views) for exact counts before background merges have happened.
-- Portable between ClickHouse 18.16 and current releases: epoch milliseconds in Int64 (no DateTime64),
-- no LowCardinality, no settings.

-- A scoring point: the session tracker's features at one listening event (what the models read).
CREATE TABLE IF NOT EXISTS session_features (
  event_id String,
  user_id String,
  session_id String,
  timestamp_ms Int64,
  event_date Date,
  event_type String,
  song_id Nullable(String),
  device String,
  subscription String,
  feature_spec String,
  features Array(Float64),
  seq_song_ids Array(String),
  seq_skipped Array(UInt8),
  seq_dwell_s Array(Float32),
  seq_gap_s Array(Float32),
  high_intent_song_ids Array(String),
  medium_intent_song_ids Array(String)
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(event_date)
ORDER BY (user_id, timestamp_ms, event_id);

-- What happened within the horizon after each scoring point; joins session_features on event_id.
CREATE TABLE IF NOT EXISTS disengagement_labels (
  event_id String,
  user_id String,
  session_id String,
  timestamp_ms Int64,
  event_date Date,
  label UInt8,
  reason String,
  outcome_after_ms Nullable(Int64),
  next_song_id Nullable(String),
  horizon_ms Int64
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(event_date)
ORDER BY (user_id, timestamp_ms, event_id);

-- Closed listening sessions.
CREATE TABLE IF NOT EXISTS sessions (
  session_id String,
  user_id String,
  start_ms Int64,
  end_ms Int64,
  session_date Date,
  duration_s Float64,
  events UInt32,
  plays UInt32,
  skips UInt32,
  skip_bursts UInt32,
  pauses UInt32,
  paused_ms Int64,
  seeks UInt32,
  searches UInt32,
  listened_ms Int64,
  exited UInt8,
  device String,
  song_ids Array(String)
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(session_date)
ORDER BY (user_id, start_ms, session_id);

-- Recommendations pushed to listeners, one row per list (items as parallel arrays, in rank order).
CREATE TABLE IF NOT EXISTS recommendations (
  recommendation_id String,
  user_id String,
  trigger String,
  trigger_event_id Nullable(String),
  request_id Nullable(String),
  score Nullable(Float64),
  threshold Nullable(Float64),
  path String,
  disengagement_model Nullable(String),
  user_tower_model Nullable(String),
  ranker_model Nullable(String),
  item_song_ids Array(String),
  item_scores Array(Float64),
  item_reasons Array(String),
  event_time_ms Int64,
  generated_at_ms Int64,
  latency_ms Int64,
  event_date Date
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(event_date)
ORDER BY (user_id, event_time_ms, recommendation_id);

-- What listeners did after each recommendation.
CREATE TABLE IF NOT EXISTS recommendation_feedback (
  feedback_id String,
  recommendation_id String,
  user_id String,
  song_id Nullable(String),
  rank Nullable(Int32),
  outcome String,
  dwell_ms Nullable(Int64),
  delay_ms Int64,
  outcome_event_id Nullable(String),
  decided_at_ms Int64,
  decided_date Date
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(decided_date)
ORDER BY (user_id, decided_at_ms, feedback_id);

-- Every model inference, for score-distribution and latency monitoring and champion/challenger comparison.
CREATE TABLE IF NOT EXISTS model_scores (
  event_id String,
  user_id String,
  model String,
  model_version String,
  role String,
  score Float64,
  threshold Nullable(Float64),
  triggered UInt8,
  latency_us Int64,
  timestamp_ms Int64,
  event_date Date,
  scored_at_ms Int64
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(event_date)
ORDER BY (model, model_version, role, user_id, timestamp_ms, event_id);

-- The song catalog as the songs topic holds it (latest version per song: the highest Kafka offset).
CREATE TABLE IF NOT EXISTS songs (
  song_id String,
  title String,
  artist_id String,
  artist_name String,
  album_id Nullable(String),
  genre String,
  language Nullable(String),
  popularity Float64,
  explicit UInt8,
  release_date Date,
  added_at_ms Int64,
  duration_ms Int64,
  audio_features Array(Float32),
  kafka_offset Int64
) ENGINE = ReplacingMergeTree(kafka_offset)
ORDER BY song_id;

-- The job's own counters and gauges (records per operator, lag, sink buffer...), sampled periodically.
CREATE TABLE IF NOT EXISTS operator_metrics (
  collected_ms Int64,
  collected_date Date,
  application String,
  instance String,
  metric String,
  labels String,
  value Float64
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(collected_date)
ORDER BY (metric, instance, collected_ms, labels)
