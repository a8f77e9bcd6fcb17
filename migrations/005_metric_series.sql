-- Metric series stored as chunks: one row per (job, metric, 64-step chunk) holding the points in
-- the series codec (server/storage/series_codec.h), and beside them summaries of every chunk (count, min,
-- max, sum, flagged) that downsampled reads of long curves use without touching the points.
-- This replaces metric_points (a row per step: about 65 bytes a point) and curve_blocks; the
-- coordinator moves their rows into the new tables at start (server/storage/series_store.cpp) and drops
-- them, because the codec cannot be written in SQL.
CREATE TABLE metric_names (
  id   INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE
);
-- The fixed fields of every training step; named metrics get the ids after these.
INSERT INTO metric_names(id, name) VALUES (1, 'train_loss'), (2, 'lr'), (3, 'grad_norm'), (4, 'tokens'), (5, 'elapsed_s');

CREATE TABLE series_chunks (
  job_id INTEGER NOT NULL,
  metric INTEGER NOT NULL,       -- metric_names.id
  chunk  INTEGER NOT NULL,       -- floor(step / 64)
  points BLOB NOT NULL,          -- series codec, version in its first byte
  PRIMARY KEY (job_id, metric, chunk)
) WITHOUT ROWID;

-- What downsampled reads need of 16 consecutive chunks (count, min, max, sum, flagged for each),
-- packed in one blob (series codec), so a 100k-step curve is about a hundred rows to read.
CREATE TABLE series_summaries (
  job_id    INTEGER NOT NULL,
  metric    INTEGER NOT NULL,
  block     INTEGER NOT NULL,    -- chunk / 16
  summaries BLOB NOT NULL,
  PRIMARY KEY (job_id, metric, block)
) WITHOUT ROWID;
