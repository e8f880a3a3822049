-- Analyst views over the sink tables: each reads its tables with FINAL, so replayed rows count once.
-- docs/ANALYTICS.md explains them and gives the queries analysts start from; a test runs every one.

-- Engagement per day: sessions, listeners, session length, skip rate, listening time, exits.
CREATE VIEW IF NOT EXISTS daily_engagement AS
SELECT
  session_date AS day,
  count() AS sessions,
  uniqExact(user_id) AS listeners,
  round(avg(duration_s) / 60, 2) AS avg_session_minutes,
  round(quantileExact(0.5)(duration_s) / 60, 2) AS median_session_minutes,
  round(quantileExact(0.9)(duration_s) / 60, 2) AS p90_session_minutes,
  sum(plays) AS total_plays,
  sum(skips) AS total_skips,
  round(sum(skips) / greatest(sum(plays), 1), 4) AS skip_rate,
  sum(skip_bursts) AS total_skip_bursts,
  round(sum(listened_ms) / count() / 60000, 2) AS listened_minutes_per_session,
  round(avg(exited), 4) AS exit_share
FROM sessions FINAL
GROUP BY day
ORDER BY day;

-- Disengagement labels per day: how often each reason ends listening (the models' base rates).
CREATE VIEW IF NOT EXISTS label_balance AS
SELECT
  event_date AS day,
  count() AS scoring_points,
  sum(label) AS positives,
  round(avg(label), 4) AS positive_share,
  countIf(reason = 'EXIT') AS exits,
  countIf(reason = 'SEARCH') AS searches,
  countIf(reason = 'SKIP_BURST') AS skip_bursts,
  countIf(reason = 'SILENCE') AS silences
FROM disengagement_labels FINAL
GROUP BY day
ORDER BY day;

-- Trigger precision: the share of disengagement-triggered recommendations whose trigger event was
-- followed by disengagement within the horizon (labelled ones only; labels come after the horizon).
CREATE VIEW IF NOT EXISTS trigger_precision AS
SELECT
  day,
  count() AS triggers,
  sum(labelled) AS labelled_triggers,
  sum(label) AS followed_by_disengagement,
  round(sum(label) / greatest(sum(labelled), 1), 4) AS precision
FROM (
  SELECT event_date AS day, ifNull(trigger_event_id, '') AS event_id
  FROM recommendations FINAL
  WHERE trigger = 'DISENGAGEMENT'
) AS triggers ANY LEFT JOIN (
  SELECT event_id, label, toUInt8(1) AS labelled FROM disengagement_labels FINAL
) AS labels USING event_id
GROUP BY day
ORDER BY day;

-- Recommendation acceptance: a list is accepted when one of its songs was listened to (30 s or more).
CREATE VIEW IF NOT EXISTS recommendation_acceptance AS
SELECT
  day,
  path,
  count() AS recommendations,
  sum(accepted) AS accepted_recommendations,
  round(sum(accepted) / count(), 4) AS acceptance_rate,
  round(sumIf(listened_ms, accepted = 1) / greatest(sum(accepted), 1) / 1000, 1) AS dwell_s_after_accepted,
  countIf(outcomes = 0) AS awaiting_feedback
FROM (
  SELECT event_date AS day, path, recommendation_id FROM recommendations FINAL
) AS recommended ANY LEFT JOIN (
  SELECT
    recommendation_id,
    count() AS outcomes,
    toUInt8(countIf(outcome = 'LISTENED') > 0) AS accepted,
    sumIf(ifNull(dwell_ms, 0), outcome = 'LISTENED') AS listened_ms
  FROM recommendation_feedback FINAL
  GROUP BY recommendation_id
) AS outcomes USING recommendation_id
GROUP BY day, path
ORDER BY day, path;

-- Outcomes after recommendations: how often each, with dwell and delay.
CREATE VIEW IF NOT EXISTS feedback_outcomes AS
SELECT
  decided_date AS day,
  outcome,
  count() AS outcomes,
  round(avg(ifNull(dwell_ms, 0)) / 1000, 1) AS avg_dwell_s,
  round(quantileExact(0.5)(delay_ms) / 1000, 1) AS median_delay_s
FROM recommendation_feedback FINAL
GROUP BY day, outcome
ORDER BY day, outcome;

-- The models' score distribution per version and role (champion, challenger), with the trigger rate.
CREATE VIEW IF NOT EXISTS score_distribution AS
SELECT
  event_date AS day,
  model,
  model_version,
  role,
  count() AS scores,
  round(avg(score), 4) AS mean_score,
  quantilesExact(0.1, 0.5, 0.9, 0.99)(score) AS score_p10_p50_p90_p99,
  round(avg(triggered), 4) AS trigger_rate
FROM model_scores FINAL
GROUP BY day, model, model_version, role
ORDER BY day, model, model_version, role;

-- Model inference latency percentiles per version.
CREATE VIEW IF NOT EXISTS model_latency AS
SELECT
  event_date AS day,
  model,
  model_version,
  role,
  count() AS scores,
  quantileExact(0.5)(latency_us) AS p50_us,
  quantileExact(0.99)(latency_us) AS p99_us,
  max(latency_us) AS max_us
FROM model_scores FINAL
GROUP BY day, model, model_version, role
ORDER BY day, model, model_version, role;

-- From the triggering event to the recommendation being generated, per serving path.
CREATE VIEW IF NOT EXISTS recommendation_latency AS
SELECT
  event_date AS day,
  path,
  count() AS recommendations,
  quantileExact(0.5)(latency_ms) AS p50_ms,
  quantileExact(0.99)(latency_ms) AS p99_ms
FROM recommendations FINAL
GROUP BY day, path
ORDER BY day, path
