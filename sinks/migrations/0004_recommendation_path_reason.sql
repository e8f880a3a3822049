-- Why a recommendation took a fallback path (no-user-tower, no-song-index, new-user, over-latency-budget,
-- inference-failed); NULL when the models served it.
ALTER TABLE recommendations ADD COLUMN path_reason Nullable(String) AFTER path;
