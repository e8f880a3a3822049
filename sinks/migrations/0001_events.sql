-- Listening events, one row per event. Replays insert the same event_id again; ReplacingMergeTree keeps one
-- row per sorting key, so read with FINAL (or GROUP BY event_id) for exact counts before merges happen.
-- Time is kept as epoch milliseconds plus a DateTime for analysts: DateTime64 does not exist in ClickHouse 18.16.
CREATE TABLE IF NOT EXISTS events (
  event_id String,
  user_id String,
  type String,
  timestamp_ms Int64,
  event_time DateTime,
  event_date Date,
  song_id Nullable(String),
  position_ms Nullable(Int32),
  seek_to_ms Nullable(Int32),
  search_query Nullable(String),
  device String,
  app_version String,
  os Nullable(String),
  country Nullable(String),
  source String,
  source_id Nullable(String),
  recommendation_id Nullable(String),
  shuffle UInt8,
  timezone_offset_minutes Int16,
  kafka_partition Int32,
  kafka_offset Int64,
  ingested_at DateTime
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(event_date)
ORDER BY (user_id, timestamp_ms, event_id)
